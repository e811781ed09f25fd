"""Open work against the timescale rules: what is due, at risk, overdue or breached.

A rule's ``opens``/``closes`` event types map to slots of one case record. An *item* exists
when the opening slot is present (and matches the rule's ``:code``); it is *open* while the
closing slot is absent. A rule with an extension (``Rule.extended_by``) judges an item by
its longer timescale when the record holds the extending event in time (``schedule``).
Items are a pure function of a record, so this state is rebuilt exactly from the records
table, whatever order the events came in.

States move with the clock alone: ``on_time`` -> ``due_today`` (deadline on today's local
date) -> ``at_risk`` (fewer than ``warn_working_hours`` office hours left) -> ``overdue``.
A *breach* is an item closed after its deadline, or open past it, counted by rule version
and local month of the deadline. An open item whose deadline passed more than the horizon
ago (working days, ``CSPA_OPEN_WORK_HORIZON``) is *stale*: after a backfill, work whose
closing event the data never held. Stale items leave the states, the oldest-item age and
the due list, and are counted apart (``stale``); breaches count them as before. The horizon
is applied when open work is read, so it is not a fold input. Metric labels are rule,
team, state, rule version and month; case keys (pseudonymous) appear only in ``due_list``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime, time, timedelta
from functools import lru_cache
from heapq import nsmallest
from typing import Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo

from stream.state.deadlines import DeadlineIndex, Judged
from stream.state.records import (
    SLOTS,
    Endpoint,
    Progression,
    Record,
    occurred,
    occurred_keyed,
)
from stream.state.rules import Rule, RuleError, Versions, versioned
from stream.state.working_days import WorkingCalendar, local_month, us_rounded

STATES = ("on_time", "due_today", "at_risk", "overdue")
#: real seconds a working day spans at least (a 23-hour day at the start of BST): a
#: deadline fewer than ``horizon`` times this ago cannot be ``horizon`` working days past
_SHORTEST_DAY = 23 * 3600
Part = Hashable  # a partition: (topic, partition) in the worker
StateKey = tuple[str, str, str]  # (rule, team, state)
BreachKey = tuple[str, int, str]  # (rule, version, month of the deadline)

class Item(NamedTuple):
    """One piece of work judged by one rule version. Times are POSIX seconds.

    A named tuple, not a frozen dataclass: one is made per rule for every changed
    case record, and a frozen dataclass's ``__init__`` sets each field through
    ``object.__setattr__`` (2.6 % of the worker's samples).
    """

    rule: str
    version: int
    team: str
    kind: str
    start_ts: float
    deadline_ts: float
    warn_ts: float
    closed_ts: float | None
    #: the key of a keyed slot's item (the agency asked, ``partner_response``); "" else
    what: str = ""




@lru_cache(maxsize=256)
def endpoint(spec: str) -> Endpoint:
    """(kind, slot key, narrowed field, code) of an ``opens``/``closes`` spec (``records.SLOTS``);
    RuleError if unknown."""
    event, _, code = spec.partition(":")
    if event not in SLOTS:
        raise RuleError(f"no record slot for event type {event!r}")
    slot, narrows = SLOTS[event]
    if slot is Progression:  # the destination code names the slot
        if not code:
            raise RuleError(f"{event} needs a destination code")
        return slot.KIND, Progression.key(code), None, None
    if code and narrows is None:
        raise RuleError(f"{event} cannot be narrowed by a code")
    return slot.KIND, slot.KEY, narrows, code or None


def watched_rules(rules: Mapping[str, Rule | Versions]) -> dict[str, Versions]:
    """The rules tracked as open work; RuleError on a rule no record can judge.

    Left out: rules opened by ``contact.received`` and closed by a progression. Every
    contact opens one, yet few ever progress, so as open work they would be overdue for
    ever. They are measured when the progression happens (``cspa_progressions``).
    """
    for name, rule in versioned(rules).items():
        kind = endpoint(rule.opens)[0]
        if endpoint(rule.closes)[0] != kind:
            raise RuleError(f"rule {name}: opens and closes must be on one case record")
        if _keyed(rule.opens) != _keyed(rule.closes):
            raise RuleError(f"rule {name}: a keyed slot (one item per agency) must open "
                            "and close it alike")
        for version in rule.versions:
            if version.extended_by and endpoint(version.extended_by)[0] != kind:
                raise RuleError(f"rule {name}: extended_by {version.extended_by} must be on "
                                "the case record the rule opens and closes on")
    return {name: rule for name, rule in versioned(rules).items() if not (
        rule.opens == "contact.received" and rule.closes.startswith("contact.progressed:"))}


def _keyed(spec: str) -> bool:
    """Whether a spec names a keyed slot family (``asked:<agency>``): one item per key."""
    return endpoint(spec)[1].endswith(":")


def _deadline(rule: Rule, start: float, calendar: WorkingCalendar) -> float:
    if rule.clock == "working_days":
        return us_rounded(calendar.add_working_days_ts(start, rule.timescale))
    if rule.clock == "working_hours":
        return us_rounded(calendar.add_working_hours_ts(start, rule.timescale))
    # Calendar hours are wall-clock hours (an aware datetime adds to its wall time).
    local = datetime.fromtimestamp(start, ZoneInfo(calendar.tz))
    return (local + timedelta(hours=rule.timescale)).timestamp()


def _warn(start: float, deadline: float, hours: float, cal: WorkingCalendar) -> float:
    """The instant from which fewer than ``hours`` office hours remain (within the item)."""
    if hours <= 0:
        return deadline
    total = cal.working_hours_between_ts(start, deadline)
    if total <= hours:
        return start
    t = us_rounded(cal.add_working_hours_ts(start, total - hours))  # earliest with ``hours`` left
    # Exactly ``hours`` left at an office end: fewer only once the next office day starts.
    t = cal.past_close_ts(t)
    return min(max(t, start), deadline)


@lru_cache(maxsize=131_072)
def _schedule(rule: Rule, start_ts: float, calendar: WorkingCalendar) -> tuple[float, float]:
    """(deadline, warn) POSIX times of an item; memoised: every event of a case asks again.

    On POSIX seconds throughout (this runs for every new contact, and datetimes made
    it a tenth of the worker's time), rounded to the microsecond where the datetime
    forms round, so the instants are the ones ``WorkingCalendar``'s datetime API gives.
    """
    start = us_rounded(start_ts)
    deadline = _deadline(rule, start, calendar)
    return deadline, _warn(start, deadline, rule.warn_working_hours, calendar)


@lru_cache(maxsize=64)
def _extended(rule: Rule) -> Rule:
    """The rule judging an extended item: its ``extended_timescale``, on the same clock."""
    return replace(rule, timescale=rule.extended_timescale or rule.timescale,
                   extended_by="", extended_timescale=None)


def schedule(record: Record, rule: Rule, start_ts: float, closed_ts: float | None,
             calendar: WorkingCalendar) -> tuple[float, float]:
    """(deadline, warn) POSIX times of the item a record holds under one rule version.

    An item is extended (judged by ``extended_timescale``) when the record holds the
    rule's ``extended_by`` event, occurred no later than the unextended deadline and, if
    the item is closed, no later than its closing. A later extension changes nothing: it
    cannot turn a breach already incurred, or work already done, into work on time.
    Open work, its deadline index, the due list and the facts all ask here.
    """
    deadline_ts, warn_ts = _schedule(rule, start_ts, calendar)
    if rule.extended_by:
        extended_ts = occurred(record, endpoint(rule.extended_by))
        if extended_ts is not None and extended_ts <= deadline_ts and (
                closed_ts is None or extended_ts <= closed_ts):
            return _schedule(_extended(rule), start_ts, calendar)
    return deadline_ts, warn_ts


def earliest_deadline(rule: Rule) -> float:
    """Seconds after the start before which the rule's deadline cannot fall.

    An extension only lengthens the timescale, so the bound holds for extended items.
    A whole working day is at least 23 hours (a BST change), office hours pass no
    faster than real hours, and calendar hours are wall-clock (a BST change again):
    so work closed sooner than this is neither open nor late, and its deadline need
    not be worked out. 0 where no such bound is known (a fraction of a working day).
    """
    if rule.clock == "working_days":
        whole = rule.timescale >= 1 and float(rule.timescale).is_integer()
        return rule.timescale * 86_400 - 3_600 if whole else 0.0
    return max(0.0, rule.timescale * 3_600 - 3_600)


#: A rule's versions with their endpoints resolved, and how soon work may close without
#: being judged at all (``earliest_deadline`` of every version; -inf: every item is judged)
Watch = tuple[Versions, Endpoint, Endpoint, float]


def watch(rules: Mapping[str, Rule | Versions], skip_closed_in_time: bool) -> list[Watch]:
    """The rules ready for ``judge``, resolved once rather than per record."""
    return [(rule, endpoint(rule.opens), endpoint(rule.closes),
             min(earliest_deadline(r) for r in rule.versions) if skip_closed_in_time
             else -math.inf)
            for rule in versioned(rules).values()]


def judge(record: Record, watching: Iterable[Watch], calendar: WorkingCalendar) -> list[Item]:
    """The items the record holds, less those closed sooner than their rule's bound.

    Each is judged by the rule's version in force when its clock started, after the
    out-of-hours roll-over (``WorkingCalendar.clock_start_ts``). A rule opened by a keyed
    slot (``asked:<agency>``) holds one item per key (``records.occurred_keyed``), closed
    by the closing slot of the same key, whichever arrived first.
    """
    items: list[Item] = []
    for versions, opens, closes, bound in watching:
        if opens[1][-1] == ":":
            for what, asked, answered in occurred_keyed(record, opens, closes):
                _add(items, record, versions, asked, answered, bound, calendar, what)
            continue
        start_ts = occurred(record, opens)
        if start_ts is None:
            continue  # the hot path, kept inline: most rules open on other records
        _add(items, record, versions, start_ts, occurred(record, closes), bound, calendar)
    return items


def _add(items: list[Item], record: Record, versions: Versions, start_ts: float,
         closed_ts: float | None, bound: float, calendar: WorkingCalendar,
         what: str = "") -> None:
    """Append the item of one (start, closed) pair, unless there is none to judge."""
    if closed_ts is not None and closed_ts - start_ts < bound:
        return  # closed before any deadline could fall: neither open nor a breach
    rule = versions.single  # the hot path: one version, in force since always
    if rule is None:
        rule = versions.at(calendar.clock_start_ts(start_ts))
        if rule is None:
            return  # received before the rule's first version was in force
    deadline_ts, warn_ts = schedule(record, rule, start_ts, closed_ts, calendar)
    items.append(Item(rule.name, rule.version, rule.team, record["k"], start_ts,
                      deadline_ts, warn_ts, closed_ts, what))


def items_of(record: Record, rules: Mapping[str, Rule | Versions],
             calendar: WorkingCalendar) -> list[Item]:
    """Every item the record holds under the rules (open or closed)."""
    return judge(record, watch(rules, skip_closed_in_time=False), calendar)


class RecordListener(Protocol):
    """State derived from the same records as open work (``stream.state.calls_waiting``)."""

    def update(self, partition: Part, key: str, record: Record | None) -> None: ...
    def drop_partition(self, partition: Part) -> None: ...
    def drop_topic(self, topic: str, keep: Collection[Part] = ()) -> None: ...
    def export(self, partition: Part) -> Any: ...
    def restore(self, partition: Part, state: Any) -> None: ...


class OpenWork:
    """Open items and closed-late breaches per partition, derived from the records.

    ``listeners`` see every record update and drop too, so whatever else is derived
    from the records is rebuilt and kept exactly as open work is.
    """

    def __init__(self, rules: Mapping[str, Rule | Versions], calendar: WorkingCalendar,
                 horizon: float = math.inf) -> None:
        self.rules = watched_rules(rules)
        self.calendar = calendar
        #: working days past its deadline after which an open item is stale (inf: never)
        self.horizon = horizon
        self._cutoff: tuple[float, float] = (math.nan, -math.inf)  # (now, its stale_cutoff)
        self._zone = ZoneInfo(calendar.tz)
        #: breach months per clock hour (``local_month``): deadlines are nearly all
        #: distinct instants, so a cache keyed by the instant missed for every late one
        self._breach_months: dict[int, str] = {}
        self._open: dict[Part, dict[str, tuple[Item, ...]]] = {}
        self._late: dict[Part, dict[str, tuple[BreachKey, ...]]] = {}
        self._late_counts: dict[Part, Counter[BreachKey]] = {}
        #: each distinct ``_late`` value once: a national year holds about a million late
        #: records and a few hundred distinct values (rule, version, month), so one shared
        #: tuple for each saved about 110 MB (BENCHMARKS.md, step 44)
        self._lates: dict[tuple[BreachKey, ...], tuple[BreachKey, ...]] = {}
        self.listeners: list[RecordListener] = []
        #: the open items again, by rule and deadline day: what a scrape counts from
        self._index = DeadlineIndex(self._breach)
        #: open work judged at the last (now, owned), and the changes it saw (``_changes``)
        self._judged: tuple[tuple[float, frozenset[Part], int], Judged] | None = None
        self._changes = 0
        #: record kinds some rule opens on: no other record ever holds an item
        self._kinds = {endpoint(rule.opens)[0] for rule in self.rules.values()}
        self._watch = watch(self.rules, skip_closed_in_time=True)

    def update(self, partition: Part, key: str, record: Record | None) -> None:
        """Replace what the key contributes (None: the record is gone).

        ``key`` is the records-table key (``kind:case``) or the case key itself; ``due_list``
        shows only the pseudonymous case key.
        """
        if record is None or record.get("k") in self._kinds:
            self._replace(partition, key, record)
        for listener in self.listeners:
            listener.update(partition, key, record)

    def _replace(self, partition: Part, key: str, record: Record | None) -> None:
        items = judge(record, self._watch, self.calendar) if record is not None else []
        opened = tuple(i for i in items if i.closed_ts is None)
        late = tuple(self._breach(i) for i in items
                     if i.closed_ts is not None and i.closed_ts > i.deadline_ts)
        open_part = self._open.get(partition)
        if open_part is None:  # (setdefault would build a Counter for every update)
            open_part = self._open[partition] = {}
            self._late[partition], self._late_counts[partition] = {}, Counter()
        gone = open_part.pop(key, ())
        if gone or opened:
            self._index.remove(partition, key, gone)
            self._index.add(partition, key, opened)
            self._changes += 1
        if opened:
            open_part[key] = opened
        late_part = self._late[partition]
        counts = self._late_counts[partition]
        before = late_part.pop(key, ())
        if before:
            counts.subtract(before)
        if late:
            late_part[key] = self._lates.setdefault(late, late)
            counts.update(late)
        for k in before:  # only a key just subtracted can have fallen to zero
            if counts.get(k, 1) <= 0:
                del counts[k]

    def _breach(self, item: Item) -> BreachKey:
        """(rule, version, local month); a deadline at midnight ends the month before."""
        month = local_month(item.deadline_ts - 1e-3, self._zone, self._breach_months)
        return item.rule, item.version, month

    def drop_partition(self, partition: Part) -> None:
        for table in (self._open, self._late, self._late_counts):
            table.pop(partition, None)
        self._index.drop(partition)
        self._changes += 1
        for listener in self.listeners:
            listener.drop_partition(partition)

    def drop_topic(self, topic: str, keep: Collection[Part] = ()) -> None:
        """Forget every ``(topic, partition)`` of one topic but ``keep`` (before a rebuild)."""
        for table in (self._open, self._late, self._late_counts):
            for part in [p for p in table
                         if isinstance(p, tuple) and p[0] == topic and p not in keep]:
                del table[part]
                self._index.drop(part)
        self._changes += 1
        for listener in self.listeners:
            listener.drop_topic(topic, keep)

    def export(self, partition: Part) -> Any:
        """What a checkpoint keeps of one partition, listeners' part included."""
        return (self._open.get(partition), self._late.get(partition),
                self._late_counts.get(partition),
                [listener.export(partition) for listener in self.listeners])

    def restore(self, partition: Part, state: Any) -> None:
        """Take one partition's state from a checkpoint (``export``'s value)."""
        open_part, late_part, counts, theirs = state
        if open_part is not None:
            lates = self._lates
            for key, late in late_part.items():  # (an older checkpoint's are not shared)
                late_part[key] = lates.setdefault(late, late)
            self._open[partition], self._late[partition] = open_part, late_part
            self._late_counts[partition] = counts
            self._index.drop(partition)
            for key, items in open_part.items():
                self._index.add(partition, key, items)
            self._changes += 1
        for listener, their in zip(self.listeners, theirs, strict=True):
            listener.restore(partition, their)

    def rebuild(self, partition: Part, items: Iterable[tuple[str, Record]]) -> None:
        """Recompute a partition from its ``(key, record)`` pairs."""
        self.drop_partition(partition)
        for key, record in items:
            self.update(partition, key, record)

    def stale(self, item: Item, now_ts: float) -> bool:
        """Open past its deadline by more than the horizon (working days), at ``now_ts``."""
        return item.deadline_ts <= self.stale_cutoff(now_ts)

    def stale_cutoff(self, now_ts: float) -> float:
        """The latest deadline that is stale at ``now_ts`` (-inf: none is).

        Working days from a deadline to now never grow as the deadline moves later, so
        the stale deadlines are those up to one instant, found here by bisection once per
        ``now_ts`` rather than by counting working days for every open item at every scrape.
        """
        if self._cutoff[0] != now_ts:
            self._cutoff = (now_ts, self._bisect(now_ts))
        return self._cutoff[1]

    def _bisect(self, now_ts: float) -> float:
        if math.isinf(self.horizon):
            return -math.inf
        def late(deadline: float) -> bool:
            return self.calendar.working_days_between_ts(deadline, now_ts) > self.horizon
        fresh = now_ts - self.horizon * _SHORTEST_DAY  # not stale: H days last >= 23 h each
        step = 86_400.0 * (self.horizon + 1)
        while not late(fresh - step):
            step *= 2
        stale = fresh - step
        while (mid := stale + (fresh - stale) / 2) not in (stale, fresh):
            stale, fresh = (mid, fresh) if late(mid) else (stale, mid)
        return stale

    def _today(self, now_ts: float) -> tuple[float, float]:
        today = datetime.fromtimestamp(now_ts, self._zone).date()
        return (datetime.combine(today, time(0), self._zone).timestamp(),
                datetime.combine(today + timedelta(days=1), time(0), self._zone).timestamp())

    def state(self, item: Item, now_ts: float, today: tuple[float, float] | None = None) -> str:
        """The item's state at ``now_ts`` (a deadline at midnight is due the day before)."""
        if now_ts >= item.deadline_ts:
            return "overdue"
        if now_ts >= item.warn_ts:
            return "at_risk"
        start, end = today or self._today(now_ts)
        return "due_today" if start < item.deadline_ts <= end else "on_time"

    def prepare(self, now_ts: float, owned: Collection[Part],
                spent: Callable[[], bool]) -> bool:
        """Do the heavy part of judging open work at about ``now_ts`` until ``spent`` says
        stop (``DeadlineIndex.prepare``); True when nothing is left for ``judged``."""
        return self._index.prepare(now_ts, self.stale_cutoff(now_ts), owned, spent)

    def judged(self, now_ts: float, owned: Collection[Part]) -> Judged:
        """Open work of the owned partitions at ``now_ts`` (``stream.state.deadlines``).

        Kept until the clock, the partitions or an open item changes: a scrape reads
        it four times.
        """
        key = (now_ts, frozenset(owned), self._changes)
        if self._judged is None or self._judged[0] != key:
            today = self._today(now_ts)
            self._judged = (key, self._index.judge(
                now_ts, self.stale_cutoff(now_ts), owned,
                lambda item: self.state(item, now_ts, today)))
        return self._judged[1]

    def states(self, now_ts: float, owned: Collection[Part]) -> dict[StateKey, int]:
        """Open items by (rule, team, state), stale ones left out; every rule and state."""
        counts: dict[StateKey, int] = {(r.name, r.team, s): 0
                                       for r in self.rules.values() for s in STATES}
        counts.update(self.judged(now_ts, owned).states)
        return counts

    def oldest(self, now_ts: float, owned: Collection[Part],
               stale: bool = False) -> dict[str, float]:
        """Age in working days of the oldest open item, per rule with open items.

        Stale items are left out; with ``stale``, only they are looked at.
        """
        judged = self.judged(now_ts, owned)
        first = judged.first_stale if stale else judged.first_live
        now = datetime.fromtimestamp(now_ts, self._zone)
        return {rule: self.calendar.working_days_between(
                    datetime.fromtimestamp(min(ts, now_ts), self._zone), now)
                for rule, ts in first.items()}

    def stale_counts(self, now_ts: float, owned: Collection[Part]) -> dict[str, int]:
        """Stale open items per watched rule (0 where none)."""
        counts = dict.fromkeys(self.rules, 0)
        counts.update(self.judged(now_ts, owned).stale)
        return counts

    def breaches(self, now_ts: float, owned: Collection[Part]) -> dict[BreachKey, int]:
        """Closed late, plus open and overdue (stale too), by (rule, version, deadline month)."""
        counts: Counter[BreachKey] = Counter()
        for part in owned:
            counts.update(self._late_counts.get(part, Counter()))
        counts.update(self.judged(now_ts, owned).breaches)
        return dict(counts)

    def due_list(self, now_ts: float, owned: Collection[Part], limit: int,
                 stale: bool = False) -> list[dict[str, Any]]:
        """The ``limit`` open items due soonest: what a manager works through next.

        Stale items are left out; with ``stale``, only they are listed (oldest deadline
        first), for data-quality follow-up.
        """
        cal, zone, today = self.calendar, self._zone, self._today(now_ts)
        now = datetime.fromtimestamp(now_ts, zone)
        out: list[dict[str, Any]] = []
        chosen = self._index.soonest(owned, limit, self.stale_cutoff(now_ts), stale)
        for key, item in nsmallest(limit, chosen,
                                   key=lambda ki: (ki[1].deadline_ts, ki[1].rule, ki[0])):
            deadline = datetime.fromtimestamp(item.deadline_ts, zone)
            left = (cal.working_hours_between(now, deadline) if now < deadline
                    else -cal.working_hours_between(deadline, now))
            row = {"rule": item.rule, "team": item.team, "key": key.rpartition(":")[2],
                   "start": datetime.fromtimestamp(item.start_ts, zone).isoformat(),
                   "deadline": deadline.isoformat(), "state": self.state(item, now_ts, today),
                   "working_hours_left": round(left, 2)}
            if item.what:  # the agency of a partner request: whom to chase (a closed set)
                row["agency"] = item.what
            out.append(row)
        return out
