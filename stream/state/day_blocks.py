"""Runs of deadline days whose summaries are kept summed, so a scrape reads a sum, not a year.

``stream.state.deadlines`` files open items by partition, rule and deadline day, and a
scrape takes every day wholly stale, and every day wholly overdue, from the day's
summary. It added those summaries up afresh at every scrape: a year of days for every
partition and rule, about 70 ms of the event loop at a scrape in the full bench
(BENCHMARKS.md, step 49), and after a bulk load every summary was made again in that
same scrape (166 ms with a national year).

A ``Block`` is one such run: the days numbered ``lo`` to ``hi - 1`` (a half-open range
of UTC day numbers), counted in one running sum. Invariant: a day of the range is
either counted (its summary is in the sum) or ``pending`` (its items changed since: it
is counted again when the block is settled), never both, never neither. As the clock
moves on, the stale run grows by a day and the overdue run shifts by one: only the days
crossing an edge are added or taken away. Every move goes one day at a time, so a move
interrupted by its time budget leaves a block that is still exact for its range.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Hashable, Mapping
from typing import Generic, NamedTuple, Protocol, TypeVar

#: a day number below every real one: the stale run starts here (-2**62 days: no deadline)
LOW = -(2**62)

K = TypeVar("K", bound=Hashable)
H = TypeVar("H", bound=Hashable)


class Summary(NamedTuple, Generic[K]):
    """What a day's items contribute when the day is taken whole."""

    teams: Counter[str]
    breaches: Counter[K]
    first_start: float


class Day(Protocol[K]):
    """A deadline day as ``Block`` reads it: its summary, made when asked for."""

    def summary(self) -> Summary[K]: ...


Days = Mapping[int, "Day[K]"]


class Block(Generic[K]):
    """The summed summaries of the days ``lo`` to ``hi - 1`` (see the module's invariant)."""

    def __init__(self) -> None:
        self.lo = self.hi = 0
        self.teams: Counter[str] = Counter()
        self.breaches: Counter[K] = Counter()
        self.pending: set[int] = set()
        self._first: float | None = math.inf  # None: to be found again (``first_start``)

    def holds(self, number: int) -> bool:
        return self.lo <= number < self.hi

    def count(self) -> int:
        return sum(self.teams.values())

    def changing(self, number: int, day: Day[K] | None) -> None:
        """A day of the range is about to change (``day`` None: it is new): take it out
        of the sum until it is settled again."""
        if number in self.pending:
            return
        if day is not None:
            self._take(day.summary(), -1)
        self.pending.add(number)

    def first_start(self, days: Days[K]) -> float:
        """The earliest start of the counted items (inf: none)."""
        if self._first is None:
            self._first = min((days[n].summary().first_start
                               for n in _numbers(days, self.lo, self.hi)
                               if n not in self.pending), default=math.inf)
        return self._first

    def move(self, days: Days[K], lo: int, hi: int, spent: Callable[[], bool]) -> bool:
        """Cover ``[lo, hi)`` (empty when ``hi <= lo``), then count the pending days; False
        when ``spent`` said stop first (the block is exact for the range it reached)."""
        hi = max(lo, hi)
        self._trim()
        if hi == lo or self.hi <= lo or hi <= self.lo or self.hi == self.lo:
            if not self._shrink_top(days, self.lo, spent):  # nothing kept in common
                return False
            self.lo = self.hi = lo
        return (self._shrink_bottom(days, lo, spent) and self._grow_bottom(days, lo, spent)
                and self._shrink_top(days, hi, spent) and self._grow_top(days, hi, spent)
                and self._settle(days, spent))

    def _grow_top(self, days: Days[K], hi: int, spent: Callable[[], bool]) -> bool:
        for n in _numbers(days, self.hi, hi):
            if spent():
                return False
            self._take(days[n].summary(), 1)
            self.hi = n + 1
        self.hi = max(self.hi, hi)
        return True

    def _shrink_top(self, days: Days[K], hi: int, spent: Callable[[], bool]) -> bool:
        for n in reversed(_numbers(days, hi, self.hi)):
            if spent():
                return False
            self._leave(days, n)
            self.hi = n
        self.hi = min(self.hi, hi)
        return True

    def _grow_bottom(self, days: Days[K], lo: int, spent: Callable[[], bool]) -> bool:
        for n in reversed(_numbers(days, lo, self.lo)):
            if spent():
                return False
            self._take(days[n].summary(), 1)
            self.lo = n
        self.lo = min(self.lo, lo)
        return True

    def _shrink_bottom(self, days: Days[K], lo: int, spent: Callable[[], bool]) -> bool:
        for n in _numbers(days, self.lo, lo):
            if spent():
                return False
            self._leave(days, n)
            self.lo = n + 1
        self.lo = max(self.lo, lo)
        return True

    def _trim(self) -> None:
        """Forget the pending days left outside the range: days emptied (and gone) while
        pending, which no edge's move visits. Else one made again there would be counted
        twice when the range came back over it. Only an interrupted move leaves any (a
        move run to its end settles every pending day)."""
        if self.pending:
            self.pending = {n for n in self.pending if self.lo <= n < self.hi}

    def _leave(self, days: Days[K], n: int) -> None:
        if n in self.pending:
            self.pending.discard(n)  # (not counted: nothing to take away)
        else:
            self._take(days[n].summary(), -1)

    def _settle(self, days: Days[K], spent: Callable[[], bool]) -> bool:
        for n in sorted(self.pending):
            if spent():
                return False
            self.pending.discard(n)
            if n in days:  # (a day emptied since is gone)
                self._take(days[n].summary(), 1)
        return True

    def _take(self, s: Summary[K], sign: int) -> None:
        _add(self.teams, s.teams, sign)
        _add(self.breaches, s.breaches, sign)
        if sign > 0:
            if self._first is not None:
                self._first = min(self._first, s.first_start)
        elif self._first is not None and s.first_start <= self._first:
            self._first = None  # the earliest may have gone: found again when read


def _add(total: Counter[H], part: Counter[H], sign: int) -> None:
    """``total += sign * part``, dropping keys that reach 0 (a sum never goes below 0)."""
    for key, n in part.items():
        left = total[key] + sign * n
        if left:
            total[key] = left
        else:
            del total[key]


def _numbers(days: Days[K], lo: int, hi: int) -> list[int]:
    """The day numbers in ``[lo, hi)`` that have items, ascending."""
    if hi <= lo:
        return []
    if hi - lo <= len(days):
        return [n for n in range(lo, hi) if n in days]
    return sorted(n for n in days if lo <= n < hi)


def never() -> bool:
    """A budget that is never spent."""
    return False


class Budget:
    """A budget spent ``seconds`` (monotonic) after it is made, never at its first
    question: each call given one does at least a day's work, so slices of any length
    get to the end."""

    __slots__ = ("_asked", "_ends")

    def __init__(self, seconds: float) -> None:
        self._ends, self._asked = time.monotonic() + seconds, False

    def __call__(self) -> bool:
        if not self._asked:
            self._asked = True
            return False
        return time.monotonic() >= self._ends
