"""Open work counted by deadline day equals a walk over every item, whatever happened."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from stream.state.records import Record
from stream.state.rules import load_rules
from stream.state.timeliness import STATES, OpenWork, items_of
from stream.state.working_days import WorkingCalendar, local_month

ROOT = Path(__file__).resolve().parents[3]
RULES = load_rules(ROOT / "config" / "rules.toml")
LONDON = ZoneInfo("Europe/London")
CAL = WorkingCalendar()
#: Friday 23 Oct 2026, 16:00: the steps cross warn times, 17:00, midnight, weekends and
#: the end of British Summer Time (25 Oct)
START = datetime(2026, 10, 23, 16, tzinfo=LONDON).timestamp()
PARTS = [("contacts", p) for p in range(3)]


def _record(rng: random.Random, now: float) -> Record:
    if rng.random() < 0.3:
        return _partners(rng, now)
    received = now - rng.choice([0, 1, 3, 10, 40, 120]) * 86_400 + rng.uniform(-9, 9) * 3600
    record: Record = {"k": "contact", "p": 0, "rcv": [received, "e1", "phone", "6", "rfs"]}
    if rng.random() < 0.6:  # decided: closing one item, opening a LADO one for "lado"
        decided = received + rng.choice([0.5, 20, 30, 200]) * 3600
        record["dec"] = [decided, "e2", rng.choice(["lado", "map", "lado"]), None]
    return record


def _partners(rng: random.Random, now: float) -> Record:
    """A MAP record asking 1-4 agencies (several items of rule partner_response under one
    key), some answered, in time or late, some answers before their requests."""
    record: Record = {"k": "map", "p": 0}
    for agency in rng.sample(["police", "gp", "camhs", "education", "housing"],
                             rng.randint(1, 4)):
        asked = now - rng.choice([0, 0.2, 1, 3, 30]) * 86_400 + rng.uniform(-9, 9) * 3600
        record["asked:" + agency] = [asked, "a-" + agency]
        if rng.random() < 0.5:
            answered = asked + rng.choice([-1, 0.5, 3, 30, 90]) * 3600
            record["answered:" + agency] = [answered, "r-" + agency]
    return record


def walked(work: OpenWork, records: dict[tuple, dict[str, Record]], now: float,
           owned: set) -> tuple[dict, dict, dict, dict, dict]:
    """states, oldest (live and stale), stale counts and breaches, item by item."""
    states: Counter = Counter({(r.name, r.team, s): 0 for r in work.rules.values()
                               for s in STATES})
    stale, breaches = Counter(dict.fromkeys(work.rules, 0)), Counter()
    first: tuple[dict, dict] = ({}, {})
    cutoff = work.stale_cutoff(now)
    for part in owned:
        for record in records.get(part, {}).values():
            for item in items_of(record, work.rules, CAL):
                late = now >= item.deadline_ts if item.closed_ts is None else \
                    item.closed_ts > item.deadline_ts
                if late:
                    month = local_month(item.deadline_ts - 1e-3, LONDON, {})
                    breaches[(item.rule, item.version, month)] += 1
                if item.closed_ts is not None:
                    continue
                is_stale = item.deadline_ts <= cutoff
                if is_stale:
                    stale[item.rule] += 1
                else:
                    states[(item.rule, item.team, work.state(item, now))] += 1
                kept = first[is_stale]
                kept[item.rule] = min(kept.get(item.rule, item.start_ts), item.start_ts)
    at = datetime.fromtimestamp(now, LONDON)
    ages = [{rule: CAL.working_days_between(datetime.fromtimestamp(min(ts, now), LONDON), at)
             for rule, ts in f.items()} for f in first]
    return dict(states), ages[0], ages[1], dict(stale), dict(breaches)


def walked_due(work: OpenWork, records: dict[tuple, dict[str, Record]], now: float,
               owned: set, limit: int, stale: bool) -> list[tuple]:
    """The due list by a walk: every open item, live or stale, sorted, the first ``limit``."""
    cutoff = work.stale_cutoff(now)
    every = [(item.deadline_ts, item.rule, key, item)
             for part in owned for key, record in records.get(part, {}).items()
             for item in items_of(record, work.rules, CAL)
             if item.closed_ts is None and (item.deadline_ts <= cutoff) == stale]
    every.sort(key=lambda row: row[:3])  # stable: one record's items stay in their order
    return [_due_row(item.rule, key.rpartition(":")[2], item.start_ts, item.deadline_ts,
                     item.what) for _, _, key, item in every[:max(limit, 0)]]


def _due_row(rule: str, key: str, start: float, deadline: float, agency: str) -> tuple:
    return rule, key, datetime.fromtimestamp(start, LONDON).isoformat(), \
        datetime.fromtimestamp(deadline, LONDON).isoformat(), agency


def listed(work: OpenWork, now: float, owned: set, limit: int, stale: bool) -> list[tuple]:
    return [(row["rule"], row["key"], row["start"], row["deadline"], row.get("agency", ""))
            for row in work.due_list(now, owned, limit, stale)]


def judged(work: OpenWork, now: float, owned: set) -> tuple[dict, dict, dict, dict, dict]:
    return (work.states(now, owned), work.oldest(now, owned), work.oldest(now, owned, True),
            work.stale_counts(now, owned), work.breaches(now, owned))


def _spent_after(calls: int) -> Callable[[], bool]:
    """A budget spent at its ``calls``-th question: a prepare stopped part way."""
    asked = iter(range(calls, -1, -1))
    return lambda: next(asked, 0) == 0


#: the clock's steps (s): mostly on, sometimes back (a clock file set back, a test)
FORWARD = [60, 1800, 3600, 4 * 3600, 86_400, 3 * 86_400]
BOTH_WAYS = FORWARD + [-3600, -86_400, -5 * 86_400, 40 * 86_400]


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("horizon", [2.0, 20.0, math.inf])
@pytest.mark.parametrize("prepared", [False, True])
def test_counted_by_day_equals_the_walk(seed: int, horizon: float, prepared: bool) -> None:
    # Records added, changed and removed, partitions dropped, rebuilt, restored from
    # a checkpoint and moved, and the clock moved across warn times, deadlines,
    # midnight and the stale cutoff: after every step the gauges equal the walk's.
    # Prepared: the clock also goes back, and before each judgement the runs are moved
    # part way (a budget spent after a few days) at a clock near it, with changes
    # between: what a sliced scrape does.
    rng = random.Random(seed)
    work, now, owned = OpenWork(RULES, CAL, horizon), START, set(PARTS)
    records: dict[tuple, dict[str, Record]] = {}
    for step in range(40):
        if prepared and rng.random() < 0.7:
            near = now + rng.choice([0, 0, 60, -3600, 86_400])
            work.prepare(near, owned, _spent_after(rng.randrange(6)))
        for _ in range(rng.randrange(12)):
            part, key = rng.choice(PARTS), f"contact:{rng.randrange(30):02d}"
            record = _record(rng, now) if rng.random() < 0.85 else None
            work.update(part, key, record)
            if record is None:
                records.get(part, {}).pop(key, None)
            else:
                records.setdefault(part, {})[key] = record
        pick = rng.random()
        part = rng.choice(PARTS)
        if pick < 0.05:
            work.drop_partition(part)
            records.pop(part, None)
        elif pick < 0.1:  # a checkpoint restored into a fresh process
            fresh = OpenWork(RULES, CAL, horizon)
            for p in PARTS:
                fresh.restore(p, work.export(p))
            work = fresh
        elif pick < 0.15:
            work.rebuild(part, records.get(part, {}).items())
        if rng.random() < 0.2:  # a rebalance
            owned = {p for p in PARTS if rng.random() < 0.7}
        if step and rng.random() < 0.6:
            now += rng.choice(BOTH_WAYS if prepared else FORWARD)
        if prepared and rng.random() < 0.5:
            work.prepare(now, owned, _spent_after(rng.randrange(4)))
        assert judged(work, now, owned) == walked(work, records, now, owned), step
        limit, stale = rng.choice([0, 1, 3, 10, 500]), rng.random() < 0.3
        assert listed(work, now, owned, limit, stale) == walked_due(
            work, records, now, owned, limit, stale), (step, limit, stale)
