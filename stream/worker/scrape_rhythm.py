"""When Prometheus scrapes ``/metrics``, so that a checkpoint can fork just after a scrape.

A checkpoint's child shares the worker's pages copy-on-write while it writes (11 s with a
national year on a slow 2-core machine). Until it exits, the first write the worker
makes to each shared page costs a fault that splits a 2 MiB mapping and copies 4 KiB,
and reading a Python object writes its reference count. A scrape reads objects spread
over thousands of pages: with a child alive, a probe holding 1,000,000 contacts scraped
in 43-57 ms (8,000-8,800 faults) against 13-19 ms without one, and 16-29 ms (about 750
faults) once the child had exited (BENCHMARKS.md, step 53). The national run's two
scrape stalls over 50 ms both fell inside a checkpoint's write.

Scrapes come at a steady interval (Prometheus' ``scrape_interval``, 15 s here). Forking
right after one gives the child that whole interval to finish before the next scrape
reads the state. ``ScrapeRhythm`` records when each scrape ends; ``after_scrape`` waits
for the next one, but never longer than the interval seen plus a margin, and not at all
when no steady scraping is seen (nothing scrapes, or scrapes stopped): a checkpoint is
late by at most one interval, never skipped.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable

#: the longest scrape interval worth waiting for, seconds: a checkpoint waits at most
#: this (plus ``MARGIN``) for a scrape; rarer scrapes are not aligned with
LONGEST = 60.0
#: seconds beyond the interval seen that a checkpoint waits for a late scrape
MARGIN = 2.0
#: scrape ends kept: the interval is the shortest gap between them (two Prometheus
#: servers of a pair scrape at phases of their own: the shorter gap is the one to fit)
KEPT = 4


class ScrapeRhythm:
    """The ends of recent ``/metrics`` scrapes, and a wait for the next one."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._ends: deque[float] = deque(maxlen=KEPT)  # monotonic seconds
        self._next = asyncio.Event()

    def scraped(self) -> None:
        """A scrape has just been answered (call after its text is rendered)."""
        self._ends.append(self._clock())
        self._next.set()
        self._next = asyncio.Event()

    def interval(self) -> float | None:
        """The steady interval between scrapes, seconds; None when none is seen: fewer
        than two scrapes, the shortest gap over ``LONGEST``, or the last scrape over
        two intervals ago (scraping stopped)."""
        ends = self._ends
        if len(ends) < 2:
            return None
        gap = min(b - a for a, b in itertools.pairwise(ends))
        if gap > LONGEST or self._clock() - ends[-1] > 2 * gap:
            return None
        return gap

    async def after_scrape(self) -> float:
        """Return as soon as the next scrape has ended, or at once when scrapes are not
        steady; at most the interval plus ``MARGIN``. The seconds waited."""
        interval, started = self.interval(), self._clock()
        if interval is None:
            return 0.0
        try:
            await asyncio.wait_for(self._next.wait(), interval + MARGIN)
        except TimeoutError:
            pass  # the scrape is late: the checkpoint goes ahead without it
        return self._clock() - started
