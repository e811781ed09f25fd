"""Stale open work (``CSPA_OPEN_WORK_HORIZON``): the boundary worked out by hand in comments.

An open item is stale once its deadline passed more than the horizon (working days of
England and Wales) ago. Contact decisions: one working day; office hours 09:00-17:00.
November 2026 has no bank holiday; Christmas 2026: Fri 25 Dec, Mon 28 Dec (Boxing Day's
substitute) and Fri 1 Jan 2027 are bank holidays.
"""

from __future__ import annotations

import math
import subprocess
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stream.settings import Settings as CspaSettings
from stream.state import records
from stream.state.rules import load_rules
from stream.state.timeliness import Item, OpenWork
from stream.state.working_days import WorkingCalendar
from stream.worker.live_gauges import TimelinessCollector
from tests.tools import require

ROOT = Path(__file__).resolve().parents[3]
RULES = load_rules(ROOT / "config" / "rules.toml")
LONDON = ZoneInfo("Europe/London")
CAL = WorkingCalendar()
P = ("contacts", 0)
OLD, NEW = "a1" * 16, "b2" * 16


def lon(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> float:
    return datetime(y, m, d, hh, mm, ss, tzinfo=LONDON).timestamp()


def received(ts: float) -> records.Record:
    return {"k": "contact", "p": 0, "rcv": [ts, "ev-1", "phone", "6", "rfs"]}


def work_with(*starts: tuple[str, float], horizon: float = 20) -> OpenWork:
    work = OpenWork(RULES, CAL, horizon)
    for key, ts in starts:
        work.update(P, "contact:" + key, received(ts))
    return work


def test_the_default_horizon_is_twenty_working_days() -> None:
    assert CspaSettings().open_work_horizon == 20
    assert OpenWork(RULES, CAL).horizon == math.inf  # tests and tools: nothing is stale


def test_stale_only_after_more_than_the_horizon() -> None:
    # Received Mon 2 Nov 2026 10:00, deadline Tue 3 Nov 10:00. Twenty working days on:
    # Tue 10, 17, 24 Nov and Tue 1 Dec 10:00 (five a week, no bank holiday).
    work = work_with((OLD, lon(2026, 11, 2, 10)))
    [item] = work._open[P]["contact:" + OLD]
    assert item.deadline_ts == lon(2026, 11, 3, 10)
    assert not work.stale(item, lon(2026, 12, 1, 10))  # exactly 20: not more
    assert work.stale(item, lon(2026, 12, 1, 10, 1))
    assert not work.stale(item, lon(2026, 11, 30, 17))  # 19 and 7/24


def test_christmas_and_new_year_do_not_count() -> None:
    # Deadline Tue 15 Dec 2026 10:00. Working days after it: 16-18 Dec (3), 21-24 (7),
    # 29-31 (10), 4-8 Jan (15), 11-15 Jan (20): stale after Fri 15 Jan 2027 10:00.
    work = work_with((OLD, lon(2026, 12, 14, 10)))
    [item] = work._open[P]["contact:" + OLD]
    assert not work.stale(item, lon(2027, 1, 15, 10))
    assert work.stale(item, lon(2027, 1, 15, 10, 0, 1))


def test_a_fraction_of_a_working_day_and_a_weekend() -> None:
    # Received Thu 5 Nov 2026 14:00, deadline Fri 6 Nov 14:00. Half a working day is half
    # of the whole day (the working-day clock runs midnight to midnight): Fri 6 Nov 14:00
    # + 0.5 = Sat 7 Nov 02:00, but Friday ends at midnight after 10 hours (0.4167 of a day)
    # and the clock stands still over the weekend: Mon 9 Nov 02:00 (0.0833 more).
    work = work_with((OLD, lon(2026, 11, 5, 14)), horizon=0.5)
    [item] = work._open[P]["contact:" + OLD]
    assert not work.stale(item, lon(2026, 11, 8, 23, 59))
    assert not work.stale(item, lon(2026, 11, 9, 2))
    assert work.stale(item, lon(2026, 11, 9, 2, 0, 1))


def test_stale_items_leave_the_states_the_oldest_and_the_due_list() -> None:
    # OLD: received Mon 2 Nov 2026 10:00 (deadline Tue 3 Nov 10:00); NEW: received Tue
    # 1 Dec 10:00 (deadline Wed 2 Dec 10:00). Now: Wed 2 Dec 12:00, OLD's deadline 21 and
    # 1/12 working days ago, NEW's two hours ago.
    work = work_with((OLD, lon(2026, 11, 2, 10)), (NEW, lon(2026, 12, 1, 10)))
    now = lon(2026, 12, 2, 12)
    states = {k: n for k, n in work.states(now, [P]).items() if n}
    assert states == {("contact_decision", "rfs", "overdue"): 1}
    assert work.oldest(now, [P]) == {"contact_decision": pytest.approx(1 + 2 / 24)}
    # OLD started Mon 2 Nov 10:00: 22 working days to Wed 2 Dec 10:00, plus 2 hours.
    assert work.oldest(now, [P], stale=True) == {"contact_decision": pytest.approx(22 + 2 / 24)}
    assert [r["key"] for r in work.due_list(now, [P], 10)] == [NEW]
    [row] = work.due_list(now, [P], 10, stale=True)
    assert (row["key"], row["deadline"]) == (OLD, "2026-11-03T10:00:00+00:00")
    assert work.stale_counts(now, [P]) == {"contact_decision": 1, "map_enquiry": 0,
                                           "early_help_allocation": 0, "lado_referral": 0,
                                           "complaint_stage1": 0, "partner_response": 0}
    assert work.stale_counts(now, [("contacts", 1)])["contact_decision"] == 0


def test_breaches_do_not_change() -> None:
    now = lon(2026, 12, 2, 12)
    starts = ((OLD, lon(2026, 11, 2, 10)), (NEW, lon(2026, 12, 1, 10)))
    with_horizon = work_with(*starts).breaches(now, [P])
    assert with_horizon == work_with(*starts, horizon=math.inf).breaches(now, [P]) == {
        ("contact_decision", 1, "2026-11"): 1, ("contact_decision", 1, "2026-12"): 1}


def exposition(work: OpenWork, now: float) -> str:
    registry = CollectorRegistry()
    registry.register(TimelinessCollector(work, lambda: now, lambda: {P}))
    return generate_latest(registry).decode()


def test_the_stale_gauges() -> None:
    work = work_with((OLD, lon(2026, 11, 2, 10)), (NEW, lon(2026, 12, 1, 10)))
    text = exposition(work, lon(2026, 12, 2, 12))
    assert OLD not in text and NEW not in text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    stale = {s.labels["rule"]: s.value for s in families["cspa_open_items_stale"].samples}
    assert stale == {"contact_decision": 1, "map_enquiry": 0, "early_help_allocation": 0,
                     "lado_referral": 0, "complaint_stage1": 0, "partner_response": 0}
    ages = {s.labels["rule"]: s.value
            for s in families["cspa_open_item_stale_oldest_workdays"].samples}
    assert ages == {"contact_decision": pytest.approx(22 + 2 / 24), "map_enquiry": 0.0,
                    "early_help_allocation": 0.0, "lado_referral": 0.0,
                    "complaint_stage1": 0.0, "partner_response": 0.0}
    open_items = sum(s.value for s in families["cspa_open_items"].samples)
    assert open_items == 1  # NEW only


def test_promtool_accepts_the_stale_gauges() -> None:
    promtool = require("promtool")
    work = work_with((OLD, lon(2026, 11, 2, 10)), (NEW, lon(2026, 12, 1, 10)))
    result = subprocess.run([promtool, "check", "metrics"],
                            input=exposition(work, lon(2026, 12, 2, 12)).encode(),
                            capture_output=True, timeout=30)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


@settings(max_examples=200, deadline=None)
@given(deadline=st.integers(int(lon(2018, 12, 1)), int(lon(2027, 1, 31))),
       after=st.integers(0, 400 * 86_400), horizon=st.sampled_from([0.5, 1, 5, 20, 20.25]))
def test_the_cutoff_agrees_with_counting_working_days(deadline: int, after: int,
                                                      horizon: float) -> None:
    # The bisected cutoff against the definition, item by item: more than ``horizon``
    # working days from the deadline to now.
    work = OpenWork(RULES, CAL, horizon)
    start = float(deadline) - 86_400  # any start: only the deadline matters
    item = Item("contact_decision", 1, "rfs", "contact", start, float(deadline),
                float(deadline), None)
    now = float(deadline + after)
    assert work.stale(item, now) == (
        CAL.working_days_between_ts(float(deadline), now) > horizon)
