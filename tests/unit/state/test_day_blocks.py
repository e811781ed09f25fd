"""A run of deadline days keeps the sum of its days' summaries, however it was moved."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable

import pytest

from stream.state.day_blocks import LOW, Block, Budget, Summary, never


class _Day:
    """A day whose items are (team, breach, start) triples; its summary made afresh."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, float]] = []
        self.made = 0

    def summary(self) -> Summary[str]:
        self.made += 1
        return Summary(Counter(t for t, _, _ in self.items), Counter(b for _, b, _ in self.items),
                       min((s for _, _, s in self.items), default=math.inf))


def _expected(days: dict[int, _Day], lo: int, hi: int) -> tuple[dict, dict, float]:
    """The run's sums worked out from its days, item by item."""
    inside = [i for n, d in days.items() if lo <= n < hi for i in d.items]
    return (dict(Counter(t for t, _, _ in inside)), dict(Counter(b for _, b, _ in inside)),
            min((s for _, _, s in inside), default=math.inf))


def _spent_after(calls: int) -> Callable[[], bool]:
    asked = iter(range(calls, -1, -1))
    return lambda: next(asked, 0) == 0


def _change(rng: random.Random, days: dict[int, _Day], block: Block[str]) -> None:
    """Add an item to a day (maybe a new one), or take one away (maybe emptying it), as
    ``DeadlineIndex`` does: the block told first when the day is in its range."""
    number = rng.randrange(-5, 25)
    day = days.get(number)
    if block.holds(number):
        block.changing(number, day)
    if day is not None and day.items and rng.random() < 0.5:
        day.items.pop(rng.randrange(len(day.items)))
        if not day.items:
            del days[number]
        return
    if day is None:
        day = days[number] = _Day()
    day.items.append((rng.choice("ab"), rng.choice("xyz"), rng.uniform(0, 100)))


@pytest.mark.parametrize("seed", range(30))
def test_a_run_equals_its_days_summed_after_any_moves(seed: int) -> None:
    # Days change, appear and empty; the range moves on, back, away and over again,
    # to "below every day" too; moves stop part way at random, with changes between.
    # After each move run to its end, the sums equal the days in range summed afresh.
    rng = random.Random(seed)
    days: dict[int, _Day] = {}
    block: Block[str] = Block()
    for _ in range(300):
        for _ in range(rng.randrange(4)):
            _change(rng, days, block)
        lo = LOW if rng.random() < 0.3 else rng.randrange(-8, 28)
        hi = rng.randrange(-8, 28)
        if rng.random() < 0.5:
            block.move(days, lo, hi, _spent_after(rng.randrange(5)))
            continue
        assert block.move(days, lo, hi, never)
        teams, breaches, first = _expected(days, lo, hi)
        assert (dict(block.teams), dict(block.breaches), block.first_start(days)) == \
            (teams, breaches, first)
        assert block.count() == sum(teams.values())
        assert not block.pending


def test_a_run_moved_on_by_a_day_sums_only_the_days_crossing_its_edges() -> None:
    # The point of a run: the clock moving on by a day costs the days that cross an
    # edge, not the year held. 400 days of items, the range moved on by one day.
    days = {n: _Day() for n in range(400)}
    for n, day in days.items():
        day.items.append(("a", "x", float(n)))
    block: Block[str] = Block()
    assert block.move(days, LOW, 300, never)
    assert sum(d.made for d in days.values()) == 300
    made = {n: d.made for n, d in days.items()}
    assert block.move(days, LOW, 301, never)
    assert {n for n, d in days.items() if d.made != made[n]} == {300}
    assert block.count() == 301 and block.first_start(days) == 0.0


def test_a_spent_budget_stops_a_move_that_goes_on_where_it_stopped() -> None:
    days = {n: _Day() for n in range(100)}
    for day in days.values():
        day.items.append(("a", "x", 1.0))
    block: Block[str] = Block()
    assert not block.move(days, 0, 100, _spent_after(10))
    assert block.count() == 10 and (block.lo, block.hi) == (0, 10)
    assert block.move(days, 0, 100, Budget(60.0))
    assert block.count() == 100
    assert sum(d.made for d in days.values()) == 100  # no day summed twice


def test_a_budget_of_no_time_still_gets_a_day_done_each_time() -> None:
    days = {n: _Day() for n in range(5)}
    for day in days.values():
        day.items.append(("a", "x", 1.0))
    block: Block[str] = Block()
    for done in range(1, 5):
        assert not block.move(days, 0, 5, Budget(0.0))
        assert block.count() == done
    assert block.move(days, 0, 5, Budget(0.0))
    assert block.count() == 5
