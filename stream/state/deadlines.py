"""Open items filed by rule and day of their deadline: judged at a scrape without walking each.

Open work's gauges (``stream.state.timeliness``) were evaluated by walking every open
item at every scrape, five times over: with a national year's open items that held the
event loop for seconds. Most open items are long overdue, and an overdue item's state,
breach and age change only when it turns stale. So open items are filed by partition,
rule and UTC day of their deadline (``int(deadline // DAY)``), and each day keeps a
summary of its items (items per team, breaches per rule version and month, earliest
start), made again only after the day's items change.

A scrape then takes a day whole when the clock places every deadline in it on one side:
all at or before the stale cutoff (stale), or all after the cutoff and at or before now
(overdue). Only the days straddling the cutoff or now, and the days still to come, have
their items judged one by one (``OpenWork.state``): those are the work in hand, bounded
by a few weeks' inflow rather than by the year held. The counts are exactly the walk's:
tests/unit/state/test_deadlines.py compares them on random states and clocks.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Collection, Hashable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from stream.state.timeliness import BreachKey, Item, StateKey

Part = Hashable
DAY = 86_400.0  # seconds a deadline day spans (UTC days: only a filing, never a label)


class Summary(NamedTuple):
    """What a day's items contribute when the day is taken whole."""

    teams: Counter[str]
    breaches: Counter[BreachKey]
    first_start: float


@dataclass
class _Day:
    items: dict[str, Item] = field(default_factory=dict)  # filed key -> item (``_filed``)
    summary: Summary | None = None  # None: to be made again (the items changed)


@dataclass
class Judged:
    """Open work at one instant: what ``OpenWork``'s gauges read."""

    states: Counter[StateKey] = field(default_factory=Counter)
    breaches: Counter[BreachKey] = field(default_factory=Counter)  # open and overdue only
    stale: Counter[str] = field(default_factory=Counter)
    first_live: dict[str, float] = field(default_factory=dict)  # rule -> earliest start
    first_stale: dict[str, float] = field(default_factory=dict)

    def take(self, rule: str, s: Summary, stale: bool) -> None:
        """Count a whole day: stale, or open and overdue."""
        if stale:
            self.stale[rule] += sum(s.teams.values())
        else:
            for team, n in s.teams.items():
                self.states[(rule, team, "overdue")] += n
        self.started(rule, s.first_start, stale)
        self.breaches.update(s.breaches)

    def started(self, rule: str, start: float, stale: bool) -> None:
        """Note an open item's start: the earliest per rule, stale or live."""
        first = self.first_stale if stale else self.first_live
        first[rule] = min(first.get(rule, start), start)


def _filed(key: str, n: int) -> str:
    """Where a key's ``n``-th open item is filed: a record may hold several items of one rule
    (``partner_response``: one per agency asked), so all but the first get their position."""
    return key if n == 0 else f"{key}#{n}"


class DeadlineIndex:
    """The open items of each partition, by rule and deadline day."""

    def __init__(self, breach: Callable[[Item], BreachKey]) -> None:
        self._breach = breach
        self._parts: dict[Part, dict[str, dict[int, _Day]]] = {}

    def add(self, part: Part, key: str, items: Iterable[Item]) -> None:
        """File a key's open items; ``remove`` takes the same tuple to unfile them."""
        rules = self._parts.setdefault(part, {})
        for n, item in enumerate(items):
            day = rules.setdefault(item.rule, {}).setdefault(int(item.deadline_ts // DAY), _Day())
            day.items[_filed(key, n)] = item
            day.summary = None

    def remove(self, part: Part, key: str, items: Iterable[Item]) -> None:
        rules = self._parts.get(part, {})
        for n, item in enumerate(items):
            days = rules[item.rule]
            number = int(item.deadline_ts // DAY)
            day = days[number]
            del day.items[_filed(key, n)]
            day.summary = None
            if not day.items:
                del days[number]

    def drop(self, part: Part) -> None:
        self._parts.pop(part, None)

    def judge(self, now: float, cutoff: float, owned: Collection[Part],
              state: Callable[[Item], str]) -> Judged:
        """Open work of the owned partitions at ``now``; ``cutoff``: the latest stale deadline.

        ``state`` is the state of one item at ``now`` (for the days judged item by item).
        """
        out = Judged()
        for part in owned:
            for rule, days in self._parts.get(part, {}).items():
                for number, day in days.items():
                    lo, hi = number * DAY, (number + 1) * DAY  # deadlines in [lo, hi)
                    if hi <= cutoff or (lo > cutoff and hi <= now):
                        out.take(rule, self._summary(day), stale=hi <= cutoff)
                    else:
                        self._one_by_one(out, day, now, cutoff, state)
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

    def _summary(self, day: _Day) -> Summary:
        if day.summary is None:
            items = day.items.values()
            day.summary = Summary(Counter(i.team for i in items),
                                  Counter(self._breach(i) for i in items),
                                  min((i.start_ts for i in items), default=math.inf))
        return day.summary
