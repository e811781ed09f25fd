"""A checkpoint forks just after a scrape (stream.worker.scrape_rhythm)."""

from __future__ import annotations

import asyncio
import time

import pytest

from stream.worker import scrape_rhythm
from stream.worker.scrape_rhythm import ScrapeRhythm


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _scraped_at(rhythm: ScrapeRhythm, clock: _Clock, *ends: float) -> None:
    for end in ends:
        clock.now = end
        rhythm.scraped()


@pytest.mark.parametrize(("ends", "now", "interval"), [
    ((), 0.0, None),  # nothing scrapes
    ((0.0,), 1.0, None),  # one scrape: no interval yet
    ((0.0, 15.0, 30.0), 31.0, 15.0),
    ((0.0, 15.0, 30.0), 60.0, 15.0),  # the next is late, not yet two intervals
    ((0.0, 15.0, 30.0), 60.5, None),  # two intervals without one: scraping stopped
    ((0.0, 3.0, 15.0, 18.0), 19.0, 3.0),  # a pair of servers: the shorter gap
    ((0.0, 61.0), 62.0, None),  # rarer than LONGEST: not worth waiting for
    ((0.0, 1.0, 2.0, 3.0, 33.0, 63.0, 93.0), 94.0, 30.0),  # only the last KEPT ends count
])
def test_the_interval_is_the_shortest_recent_gap_while_scrapes_go_on(ends, now, interval):
    clock = _Clock()
    rhythm = ScrapeRhythm(clock)
    _scraped_at(rhythm, clock, *ends)
    clock.now = now
    assert rhythm.interval() == interval


@pytest.mark.asyncio
async def test_without_steady_scrapes_a_checkpoint_does_not_wait():
    clock = _Clock()
    rhythm = ScrapeRhythm(clock)
    _scraped_at(rhythm, clock, 0.0)
    assert await asyncio.wait_for(rhythm.after_scrape(), 0.5) == 0.0


@pytest.mark.asyncio
async def test_a_checkpoint_waits_for_the_next_scrape_to_end():
    clock = _Clock()
    rhythm = ScrapeRhythm(clock)
    _scraped_at(rhythm, clock, 0.0, 15.0)
    clock.now = 20.0
    waiting = asyncio.ensure_future(rhythm.after_scrape())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiting.done()
    clock.now = 29.5
    rhythm.scraped()
    assert await asyncio.wait_for(waiting, 0.5) == 9.5
    # The wait is for a scrape after the call, not the one just ended.
    again = asyncio.ensure_future(rhythm.after_scrape())
    await asyncio.sleep(0)
    assert not again.done()
    rhythm.scraped()
    await asyncio.wait_for(again, 0.5)


@pytest.mark.asyncio
async def test_a_late_scrape_is_waited_for_one_interval_and_the_margin_at_most(monkeypatch):
    monkeypatch.setattr(scrape_rhythm, "MARGIN", 0.2)
    rhythm = ScrapeRhythm()  # the real clock: the wait is timed by the event loop
    rhythm.scraped()
    await asyncio.sleep(0.1)
    rhythm.scraped()
    started = time.monotonic()
    waited = await rhythm.after_scrape()
    assert 0.28 <= time.monotonic() - started < 1.0
    assert waited == pytest.approx(time.monotonic() - started, abs=0.05)
