"""Open items filed by rule and day of their deadline: judged at a scrape without walking each.

Open work's gauges (``stream.state.timeliness``) were evaluated by walking every open
item at every scrape, five times over: with a national year's open items that held the
event loop for seconds. Most open items are long overdue, and an overdue item's state,
breach and age change only when it turns stale. So open items are filed by partition,
rule and UTC day of their deadline (``int(deadline // DAY)``), and each day keeps a
summary of its items (items per team, breaches per rule version and month, earliest
start), made again only after the day's items change.

A scrape takes a day whole when the clock places every deadline in it on one side:
all at or before the stale cutoff (stale), or all after the cutoff and at or before now
(overdue). Those days form two runs per partition and rule, each kept summed
(``stream.state.day_blocks``): a scrape moves a run's edges by the days the clock
crossed and counts again only the days whose items changed. Only the days straddling
the cutoff or now, and the days still to come, have their items judged one by one
(``OpenWork.state``): those are the work in hand, bounded by a few weeks' inflow rather
than by the year held. The counts are exactly the walk's:
tests/unit/state/test_deadlines.py compares them on random states and clocks.

``prepare`` does a judgement's heavy part (the runs' moves, the summaries made again)
within a time budget and keeps what it did: the worker calls it in slices before a
scrape renders, so the first scrape after a bulk load does not hold the loop for it.
The due list (``soonest``) reads the days from the earliest on, only until it holds
enough items: tests/unit/state/test_deadlines.py compares it with a sorted walk too.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Collection, Hashable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stream.state.day_blocks import LOW, Block, Summary, never

if TYPE_CHECKING:
    from stream.state.timeliness import BreachKey, Item, StateKey

Part = Hashable
DAY = 86_400.0  # seconds a deadline day spans (UTC days: only a filing, never a label)


class _Day:
    """One deadline day's items, and their summary once made."""

    __slots__ = ("_breach", "_summary", "items")

    def __init__(self, breach: Callable[[Item], BreachKey]) -> None:
        self.items: dict[str, Item] = {}  # filed key -> item (``_filed``)
        self._breach = breach
        self._summary: Summary[BreachKey] | None = None  # None: to be made again

    def changed(self) -> None:
        self._summary = None

    def summary(self) -> Summary[BreachKey]:
        if self._summary is None:
            items = self.items.values()
            self._summary = Summary(Counter(i.team for i in items),
                                    Counter(self._breach(i) for i in items),
                                    min((i.start_ts for i in items), default=math.inf))
        return self._summary


class _Rule:
    """One partition's open items of one rule: their days, and the stale and overdue runs."""

    __slots__ = ("days", "overdue", "stale")

    def __init__(self) -> None:
        self.days: dict[int, _Day] = {}
        self.stale: Block[BreachKey] = Block()
        self.overdue: Block[BreachKey] = Block()

    def changing(self, number: int) -> None:
        """A day's items are about to change: out of its run's sum until settled."""
        day = self.days.get(number)
        for block in (self.stale, self.overdue):
            if block.holds(number):
                block.changing(number, day)
        if day is not None:
            day.changed()

    def move(self, edges: tuple[int, int], spent: Callable[[], bool]) -> bool:
        """Both runs onto the clock's ``edges`` (``_edges``); False if ``spent`` stopped it."""
        stale_to, now_day = edges
        return (self.stale.move(self.days, LOW, stale_to, spent)
                and self.overdue.move(self.days, stale_to + 1, now_day, spent))


@dataclass
class Judged:
    """Open work at one instant: what ``OpenWork``'s gauges read."""

    states: Counter[StateKey] = field(default_factory=Counter)
    breaches: Counter[BreachKey] = field(default_factory=Counter)  # open and overdue only
    stale: Counter[str] = field(default_factory=Counter)
    first_live: dict[str, float] = field(default_factory=dict)  # rule -> earliest start
    first_stale: dict[str, float] = field(default_factory=dict)

    def take(self, rule: str, run: Block[BreachKey], days: dict[int, _Day],
             stale: bool) -> None:
        """Count a run of whole days: stale, or open and overdue."""
        n = run.count()
        if not n:
            return
        if stale:
            self.stale[rule] += n
        else:
            for team, k in run.teams.items():
                self.states[(rule, team, "overdue")] += k
        self.started(rule, run.first_start(days), stale)
        self.breaches.update(run.breaches)

    def started(self, rule: str, start: float, stale: bool) -> None:
        """Note an open item's start: the earliest per rule, stale or live."""
        first = self.first_stale if stale else self.first_live
        first[rule] = min(first.get(rule, start), start)


def _filed(key: str, n: int) -> str:
    """Where a key's ``n``-th open item is filed: a record may hold several items of one rule
    (``partner_response``: one per agency asked), so all but the first get their position."""
    return key if n == 0 else f"{key}#{n}"


def _day(ts: float) -> int:
    """The number of the UTC day holding ``ts``: ``n * DAY <= ts < (n + 1) * DAY``, exactly
    (day edges are whole multiples of 86,400 s, exact in a float)."""
    n = int(ts // DAY)
    while n * DAY > ts:
        n -= 1
    while (n + 1) * DAY <= ts:
        n += 1
    return n


def _listed(cutoff: float, stale: bool) -> tuple[float, float, Callable[[Item], bool]]:
    """(first day, last day, test of an item) of the live or the stale open items."""
    if cutoff == -math.inf:
        return LOW - 1, math.inf, lambda item: True
    edge = _day(cutoff)
    if stale:
        return LOW - 1, edge, lambda item: item.deadline_ts <= cutoff
    return edge, math.inf, lambda item: item.deadline_ts > cutoff


def _edges(now: float, cutoff: float) -> tuple[int, int]:
    """(the day holding the stale cutoff, the day holding now). The days before the first
    are wholly stale; those after it and before the second wholly overdue (a deadline in
    ``[lo, hi)`` is stale when ``hi <= cutoff``, overdue when ``lo > cutoff`` and
    ``hi <= now``). No cutoff (-inf): the first is below every day."""
    return (LOW - 1 if cutoff == -math.inf else _day(cutoff)), _day(now)


class DeadlineIndex:
    """The open items of each partition, by rule and deadline day."""

    def __init__(self, breach: Callable[[Item], BreachKey]) -> None:
        self._breach = breach
        self._parts: dict[Part, dict[str, _Rule]] = {}

    def add(self, part: Part, key: str, items: Iterable[Item]) -> None:
        """File a key's open items; ``remove`` takes the same tuple to unfile them."""
        rules = self._parts.setdefault(part, {})
        for n, item in enumerate(items):
            run = rules.get(item.rule)
            if run is None:
                run = rules[item.rule] = _Rule()
            number = int(item.deadline_ts // DAY)
            run.changing(number)
            day = run.days.get(number)
            if day is None:
                day = run.days[number] = _Day(self._breach)
            day.items[_filed(key, n)] = item

    def remove(self, part: Part, key: str, items: Iterable[Item]) -> None:
        rules = self._parts.get(part, {})
        for n, item in enumerate(items):
            run = rules[item.rule]
            number = int(item.deadline_ts // DAY)
            run.changing(number)
            day = run.days[number]
            del day.items[_filed(key, n)]
            if not day.items:
                del run.days[number]

    def drop(self, part: Part) -> None:
        self._parts.pop(part, None)

    def prepare(self, now: float, cutoff: float, owned: Collection[Part],
                spent: Callable[[], bool]) -> bool:
        """``judge``'s heavy part for ``now`` (the runs moved, changed days summed again),
        until ``spent`` says stop; True when all is done. What it did is kept, so a later
        call, or a ``judge`` at about the same clock, goes on from there."""
        edges = _edges(now, cutoff)
        return all(run.move(edges, spent)
                   for part in owned for run in self._parts.get(part, {}).values())

    def judge(self, now: float, cutoff: float, owned: Collection[Part],
              state: Callable[[Item], str]) -> Judged:
        """Open work of the owned partitions at ``now``; ``cutoff``: the latest stale deadline.

        ``state`` is the state of one item at ``now`` (for the days judged item by item).
        """
        edges = stale_day, now_day = _edges(now, cutoff)
        out = Judged()
        for part in owned:
            for rule, run in self._parts.get(part, {}).items():
                run.move(edges, never)
                out.take(rule, run.stale, run.days, stale=True)
                out.take(rule, run.overdue, run.days, stale=False)
                for number, day in run.days.items():  # the rest, one by one
                    if number >= stale_day and not stale_day < number < now_day:
                        self._one_by_one(out, day, now, cutoff, state)
        return out

    def soonest(self, owned: Collection[Part], limit: int, cutoff: float,
                stale: bool) -> list[tuple[str, Item]]:
        """``(record key, item)`` of open items the due list picks its ``limit`` from: live
        ones (deadline after the stale ``cutoff``) or, with ``stale``, stale ones.

        Taken day by day from the earliest deadline day until ``limit`` are held: a day's
        items all come before a later day's, so the ``limit`` earliest are among them. The
        list costs the days it looks at, not every open item of the year (with a national
        year, the walk held the event loop).
        """
        if stale and cutoff == -math.inf:  # no horizon: nothing is stale
            return []
        first, last, keep = _listed(cutoff, stale)
        runs = [run for part in owned for run in self._parts.get(part, {}).values()]
        numbers = sorted({n for run in runs for n in run.days if first <= n <= last})
        out: list[tuple[str, Item]] = []
        for number in numbers:
            if len(out) >= limit:
                break
            for run in runs:
                day = run.days.get(number)
                if day is not None:
                    out.extend((filed.partition("#")[0], item)
                               for filed, item in day.items.items() if keep(item))
        return out

    def _one_by_one(self, out: Judged, day: _Day, now: float, cutoff: float,
                    state: Callable[[Item], str]) -> None:
        for item in day.items.values():
            stale = item.deadline_ts <= cutoff
            if stale:
                out.stale[item.rule] += 1
            else:
                out.states[(item.rule, item.team, state(item))] += 1
            out.started(item.rule, item.start_ts, stale)
            if now >= item.deadline_ts:
                out.breaches[self._breach(item)] += 1
