"""Tests for stream.state.timeliness; deadlines and warning times worked out by hand in comments.

Office hours 09:00-17:00 Europe/London, warn_working_hours 4 unless said otherwise.
"""

from __future__ import annotations

import pickle
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stream.state import records
from stream.state.rules import Rule, RuleError, load_rules
from stream.state.timeliness import (
    STATES,
    Item,
    OpenWork,
    endpoint,
    items_of,
    watched_rules,
)
from stream.state.working_days import WorkingCalendar
from stream.worker.live_gauges import TimelinessCollector

ROOT = Path(__file__).resolve().parents[3]
RULES = load_rules(ROOT / "config" / "rules.toml")
LONDON = ZoneInfo("Europe/London")
CAL = WorkingCalendar()
KEY, KEY2 = "a1" * 16, "b2" * 16
P = ("contacts", 0)


def lon(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> float:
    """POSIX seconds of a London wall-clock time."""
    return datetime(y, m, d, hh, mm, tzinfo=LONDON).timestamp()


def contact(p: int = 0, **slots: list[object]) -> records.Record:
    return {"k": "contact", "p": p, **slots}


def rcv(ts: float, eid: str = "ev-rcv-1") -> list[object]:
    return [ts, eid, "phone", "6", "rfs"]


def dec(ts: float, outcome: str = "level_1", eid: str = "ev-dec-1") -> list[object]:
    return [ts, eid, outcome, "information"]


def only(record: records.Record, rule: str, rules: dict[str, Rule] | None = None) -> Item:
    found = [i for i in items_of(record, rules or dict(RULES), CAL) if i.rule == rule]
    assert len(found) == 1
    return found[0]


def states_of(work: OpenWork, now: float) -> dict[tuple[str, str, str], int]:
    return {k: n for k, n in work.states(now, [P]).items() if n}


# -- mapping rules to record slots --------------------------------------------------------


def test_endpoints_map_event_types_to_slots() -> None:
    assert endpoint("contact.received") == ("contact", "rcv", None, None)
    kind, slot, narrows, code = endpoint("contact.decided:lado")
    assert (kind, slot, code) == ("contact", "dec", "lado")
    # the code narrows the decision's outcome: read by name, not by where it is stored
    stored = [1.6e9, "event-1", "lado", "information"]  # a decision slot as records keeps it
    assert narrows is not None and narrows(stored) == "lado"
    assert endpoint("contact.progressed:early_help") == ("contact", "prog:early_help", None, None)
    assert endpoint("early_help.allocated") == ("contact", "alloc", None, None)
    assert endpoint("map_enquiry.opened") == ("map", "open", None, None)
    kind, slot, narrows, code = endpoint("map_enquiry.completed")
    assert (kind, slot, code) == ("map", "done", None) and narrows is not None
    assert endpoint("email.resolved") == ("email", "res", None, None)
    for bad in ("no_such.event", "contact.progressed", "contact.received:phone"):
        with pytest.raises(RuleError):
            endpoint(bad)


def test_watched_rules_leave_out_retrospective_progressions() -> None:
    assert set(watched_rules(RULES)) == {
        "contact_decision", "map_enquiry", "early_help_allocation", "lado_referral",
        "complaint_stage1", "partner_response"}
    mixed = Rule("x", 1, "rfs", "contact.received", "map_enquiry.completed", "hours", 4, 1)
    with pytest.raises(RuleError):
        watched_rules({"x": mixed})


def test_lado_narrowing_on_the_decision_outcome() -> None:
    t = lon(2026, 3, 2, 10)
    assert not [i for i in items_of(contact(rcv=rcv(t), dec=dec(t + 60)), RULES, CAL)
                if i.rule == "lado_referral"]
    item = only(contact(rcv=rcv(t), dec=dec(t + 60, "lado")), "lado_referral")
    assert (item.start_ts, item.closed_ts, item.team) == (t + 60, None, "rfs")
    closed = contact(dec=dec(t, "lado"), **{"prog:childrens_social_care": [t + 3600, "e"]})
    assert only(closed, "lado_referral").closed_ts == t + 3600


def test_map_record_items() -> None:
    t = lon(2026, 3, 2, 10)
    rec = {"k": "map", "p": 0, "open": [t, "e1"], "done": [t + 60, "e2", [], "level_1", None]}
    [item] = items_of(rec, RULES, CAL)
    assert (item.rule, item.kind, item.team, item.closed_ts) == ("map_enquiry", "map", "map",
                                                                 t + 60)
    assert items_of({"k": "call", "p": 0, "q": [t, "e", "rfs"]}, RULES, CAL) == []


# -- deadlines and warning times ----------------------------------------------------------


def test_weekend() -> None:
    # Fri 6 Mar 2026 14:00 + 1 working day = Mon 9 Mar 14:00. Office hours left at the
    # start: Fri 14-17 (3) + Mon 9-14 (5) = 8, so 4 remain from Fri 3 h + Mon 1 h = Mon 10:00.
    item = only(contact(rcv=rcv(lon(2026, 3, 6, 14))), "contact_decision")
    assert item.deadline_ts == lon(2026, 3, 9, 14)
    assert item.warn_ts == lon(2026, 3, 9, 10)


def test_warning_overnight_starts_at_the_next_office_opening() -> None:
    # Mon 2 Mar 13:00 -> Tue 3 Mar 13:00; 4 h remain from Mon 17:00 until Tue 09:00, and
    # fewer than 4 only from Tue 09:00.
    item = only(contact(rcv=rcv(lon(2026, 3, 2, 13))), "contact_decision")
    assert (item.deadline_ts, item.warn_ts) == (lon(2026, 3, 3, 13), lon(2026, 3, 3, 9))


def test_christmas_2026() -> None:
    # Thu 24 Dec 15:00; Fri 25 Christmas, Sat 26 Boxing Day (substitute Mon 28), Sun 27:
    # deadline Tue 29 Dec 15:00. Hours: Thu 15-17 (2) + Tue 9-15 (6) = 8; warn after
    # 4 h = Thu 2 h + Tue 2 h = Tue 11:00.
    item = only(contact(rcv=rcv(lon(2026, 12, 24, 15))), "contact_decision")
    assert (item.deadline_ts, item.warn_ts) == (lon(2026, 12, 29, 15), lon(2026, 12, 29, 11))
    # Early help allocation, 2 working days from Wed 23 Dec 10:00: Thu 24, then Tue 29.
    eh = only(contact(**{"prog:early_help": [lon(2026, 12, 23, 10), "e"]}),
              "early_help_allocation")
    assert eh.deadline_ts == lon(2026, 12, 29, 10)


def test_easter_2024_and_bst_start() -> None:
    # Thu 28 Mar 2024 16:00 GMT; Good Friday 29 Mar, BST from Sun 31 Mar, Easter Monday
    # 1 Apr: deadline Tue 2 Apr 16:00 BST = 15:00 UTC, 4 days 23 h of real time.
    # Hours: Thu 16-17 (1) + Tue 9-16 (7) = 8; warn after 4 h = Thu 1 h + Tue 3 h = 12:00.
    start = lon(2024, 3, 28, 16)
    rec = {"k": "map", "p": 0, "open": [start, "e1"]}
    item = only(rec, "map_enquiry")
    assert item.deadline_ts == datetime(2024, 4, 2, 15, tzinfo=ZoneInfo("UTC")).timestamp()
    assert item.deadline_ts - start == 4 * 86400 + 23 * 3600
    assert item.warn_ts == lon(2024, 4, 2, 12)


def test_bst_end_october_2026() -> None:
    # Fri 23 Oct 12:00 BST; clocks go back Sun 25 Oct: deadline Mon 26 Oct 12:00 GMT,
    # 3 days and 1 hour later. Hours: Fri 12-17 (5) + Mon 9-12 (3) = 8; warn Fri 16:00 BST.
    start = lon(2026, 10, 23, 12)
    item = only(contact(rcv=rcv(start)), "contact_decision")
    assert item.deadline_ts == lon(2026, 10, 26, 12) == start + 3 * 86400 + 3600
    assert item.warn_ts == lon(2026, 10, 23, 16)
    work = OpenWork(RULES, CAL)
    work.update(P, "contact:" + KEY, contact(rcv=rcv(start)))
    # At risk all weekend: fewer than 4 office hours are left whatever the clocks do.
    assert work.state(item, lon(2026, 10, 25, 12)) == "at_risk"


def test_late_may_bank_holiday_2019() -> None:
    # Fri 24 May 2019 14:00 BST; Mon 27 May is the late May bank holiday (the last
    # Monday of May): deadline Tue 28 May 14:00. Hours: Fri 14-17 (3) + Tue 9-14 (5) = 8;
    # warn after 4 h = Fri 3 h + Tue 1 h = Tue 10:00.
    item = only(contact(rcv=rcv(lon(2019, 5, 24, 14))), "contact_decision")
    assert (item.deadline_ts, item.warn_ts) == (lon(2019, 5, 28, 14), lon(2019, 5, 28, 10))


def test_late_may_bank_holiday_2026() -> None:
    # Fri 22 May 2026 09:00; Mon 25 May (31 May is a Sunday, so the last Monday is the
    # 25th): deadline Tue 26 May 09:00. Hours: Fri 9-17 (8); warn after 4 h = Fri 13:00.
    item = only(contact(rcv=rcv(lon(2026, 5, 22, 9))), "contact_decision")
    assert (item.deadline_ts, item.warn_ts) == (lon(2026, 5, 26, 9), lon(2026, 5, 22, 13))


def test_summer_bank_holiday_2019() -> None:
    # Map enquiry opened Fri 23 Aug 2019 16:00; Mon 26 Aug is the summer bank holiday
    # (the last Monday of August): deadline Tue 27 Aug 16:00. Hours: Fri 16-17 (1) +
    # Tue 9-16 (7) = 8; warn after 4 h = Fri 1 h + Tue 3 h = Tue 12:00.
    item = only({"k": "map", "p": 0, "open": [lon(2019, 8, 23, 16), "e1"]}, "map_enquiry")
    assert (item.deadline_ts, item.warn_ts) == (lon(2019, 8, 27, 16), lon(2019, 8, 27, 12))


def test_summer_bank_holiday_2026() -> None:
    # Fri 28 Aug 2026 11:00; Mon 31 Aug is the summer bank holiday: deadline Tue 1 Sep
    # 11:00. Hours: Fri 11-17 (6) + Tue 9-11 (2) = 8; warn after 4 h = Fri 15:00.
    item = only(contact(rcv=rcv(lon(2026, 8, 28, 11))), "contact_decision")
    assert (item.deadline_ts, item.warn_ts) == (lon(2026, 9, 1, 11), lon(2026, 8, 28, 15))
    # Early help allocation, 2 working days from Thu 27 Aug 10:00: the rest of Thursday
    # (14 h of 24), all of Friday, then Tue 1 Sep until 10:00.
    eh = only(contact(**{"prog:early_help": [lon(2026, 8, 27, 10), "e"]}),
              "early_help_allocation")
    assert eh.deadline_ts == lon(2026, 9, 1, 10)


def test_working_hours_and_plain_hours_clocks() -> None:
    red = Rule("police_red", 1, "rfs", "contact.received", "contact.decided",
               "working_hours", 4, 1)
    green = Rule("police_green", 1, "rfs", "contact.received", "contact.decided", "hours", 72, 4)
    rules = {"police_red": red, "police_green": green}
    # Fri 6 Mar 15:00 + 4 working hours = Fri 15-17 (2) + Mon 9-11 (2) = Mon 11:00; warn
    # 1 h before = Mon 10:00.
    rec = contact(rcv=rcv(lon(2026, 3, 6, 15)))
    item = only(rec, "police_red", rules)
    assert (item.deadline_ts, item.warn_ts) == (lon(2026, 3, 9, 11), lon(2026, 3, 9, 10))
    # 72 plain hours: Mon 9 Mar 15:00. Office hours in between: Fri 2 + Mon 6 = 8, so
    # 4 remain from Mon 11:00.
    item = only(rec, "police_green", rules)
    assert (item.deadline_ts, item.warn_ts) == (lon(2026, 3, 9, 15), lon(2026, 3, 9, 11))


def test_warning_clamped_to_the_start() -> None:
    # Fri 6 Mar 16:30 + 1 working hour = Fri 0.5 h + Mon 0.5 h = Mon 09:30. Only 1 office
    # hour ever remains, fewer than the 4 of the warning: at risk from the start.
    rule = Rule("short", 1, "rfs", "contact.received", "contact.decided", "working_hours", 1, 4)
    item = only(contact(rcv=rcv(lon(2026, 3, 6, 16, 30))), "short", {"short": rule})
    assert item.warn_ts == item.start_ts and item.deadline_ts == lon(2026, 3, 9, 9, 30)


# -- states move with the clock -----------------------------------------------------------


def test_states_across_a_weekend_without_new_records() -> None:
    work = OpenWork(RULES, CAL)
    work.update(P, "contact:" + KEY, contact(rcv=rcv(lon(2026, 3, 6, 14))))
    expected = [
        (lon(2026, 3, 6, 15), "on_time"),      # Friday
        (lon(2026, 3, 8, 23, 59), "on_time"),  # Sunday night
        (lon(2026, 3, 9, 0), "due_today"),     # Monday, deadline 14:00
        (lon(2026, 3, 9, 9, 59), "due_today"),
        (lon(2026, 3, 9, 10), "at_risk"),      # 4 office hours left
        (lon(2026, 3, 9, 13, 59), "at_risk"),
        (lon(2026, 3, 9, 14), "overdue"),
        (lon(2026, 3, 20, 9), "overdue"),
    ]
    for now, state in expected:
        assert states_of(work, now) == {("contact_decision", "rfs", state): 1}, now


def test_christmas_states_and_oldest() -> None:
    work = OpenWork(RULES, CAL)
    work.update(P, KEY, contact(rcv=rcv(lon(2026, 12, 24, 15))))
    for now, state in [(lon(2026, 12, 24, 16), "on_time"), (lon(2026, 12, 28, 12), "on_time"),
                       (lon(2026, 12, 29, 8), "due_today"), (lon(2026, 12, 29, 11), "at_risk"),
                       (lon(2026, 12, 29, 15), "overdue")]:
        assert states_of(work, now) == {("contact_decision", "rfs", state): 1}, now
    assert work.oldest(lon(2026, 12, 28, 12), [P]) == {"contact_decision": pytest.approx(
        (24 - 15) / 24)}  # the rest of Thursday; no working day since
    assert work.oldest(lon(2026, 12, 29, 15), [P]) == {"contact_decision": pytest.approx(1.0)}
    assert work.oldest(lon(2026, 12, 29, 15), [("contacts", 1)]) == {}


def test_saturday_contact_is_due_on_monday() -> None:
    # Sat 7 Mar 11:00: the clock stands until Monday, deadline the end of Monday (Tue 00:00);
    # that deadline belongs to Monday, so Monday is its due day. Warn: Mon 13:00.
    work = OpenWork(RULES, CAL)
    work.update(P, KEY, contact(rcv=rcv(lon(2026, 3, 7, 11))))
    [item] = work._open[P][KEY]
    assert (item.deadline_ts, item.warn_ts) == (lon(2026, 3, 10), lon(2026, 3, 9, 13))
    assert [work.state(item, lon(2026, 3, 9, h)) for h in (8, 13)] == ["due_today", "at_risk"]
    assert work.state(item, lon(2026, 3, 10)) == "overdue"


def test_every_rule_and_state_present() -> None:
    work = OpenWork(RULES, CAL)
    states = work.states(lon(2026, 3, 2), [P])
    assert set(states) == {(r.name, r.team, s) for r in work.rules.values() for s in STATES}
    assert set(states.values()) == {0}


# -- closing, breaches --------------------------------------------------------------------


def test_closing_on_time_and_late() -> None:
    work = OpenWork(RULES, CAL)
    start = lon(2026, 3, 6, 14)  # deadline Mon 9 Mar 14:00
    work.update(P, KEY, contact(rcv=rcv(start)))
    assert work.breaches(lon(2026, 3, 9, 13), [P]) == {}
    assert work.breaches(lon(2026, 3, 9, 15), [P]) == {("contact_decision", 1, "2026-03"): 1}
    work.update(P, KEY, contact(rcv=rcv(start), dec=dec(lon(2026, 3, 9, 16))))
    assert states_of(work, lon(2026, 3, 9, 16)) == {}  # no longer open...
    assert work.breaches(lon(2026, 3, 9, 16), [P]) == {("contact_decision", 1, "2026-03"): 1}
    assert work.breaches(lon(2026, 3, 9, 16), [("contacts", 9)]) == {}
    # ...and a correction to an earlier decision time withdraws the breach.
    work.update(P, KEY, contact(rcv=rcv(start), dec=dec(lon(2026, 3, 9, 11))))
    assert work.breaches(lon(2026, 3, 9, 16), [P]) == {}
    assert work.due_list(lon(2026, 3, 9, 16), [P], 10) == []


def test_breach_month_of_a_midnight_deadline() -> None:
    # Received Thu 31 Dec 2026 00:00: one working day later is the end of that Thursday,
    # Fri 1 Jan 2027 00:00. The deadline ends December, so its breach month is 2026-12.
    work = OpenWork(RULES, CAL)
    work.update(P, KEY, contact(rcv=rcv(lon(2026, 12, 31))))
    [item] = work._open[P][KEY]
    assert item.deadline_ts == lon(2027, 1, 1)
    assert work.breaches(lon(2027, 1, 5), [P]) == {("contact_decision", 1, "2026-12"): 1}


def test_due_list() -> None:
    work = OpenWork(RULES, CAL)
    work.update(P, "contact:" + KEY, contact(rcv=rcv(lon(2026, 3, 2, 10))))  # due Tue 10:00
    work.update(P, "contact:" + KEY2, contact(rcv=rcv(lon(2026, 3, 2, 12))))  # due Tue 12:00
    work.update(("maps", 0), "map:" + KEY, {"k": "map", "p": 0, "open": [lon(2026, 3, 2), "e"]})
    rows = work.due_list(lon(2026, 3, 3, 11), [P], 5)
    assert rows == [
        {"rule": "contact_decision", "team": "rfs", "key": KEY,
         "start": "2026-03-02T10:00:00+00:00", "deadline": "2026-03-03T10:00:00+00:00",
         "state": "overdue", "working_hours_left": -1.0},
        {"rule": "contact_decision", "team": "rfs", "key": KEY2,
         "start": "2026-03-02T12:00:00+00:00", "deadline": "2026-03-03T12:00:00+00:00",
         "state": "at_risk", "working_hours_left": 1.0},
    ]
    assert len(work.due_list(lon(2026, 3, 3, 11), [P, ("maps", 0)], 1)) == 1
    summer = OpenWork(RULES, CAL)
    summer.update(P, KEY, contact(rcv=rcv(lon(2026, 7, 1, 10))))
    assert summer.due_list(lon(2026, 7, 1, 10), [P], 1)[0]["deadline"] == \
        "2026-07-02T10:00:00+01:00"


def test_drop_partition() -> None:
    work = OpenWork(RULES, CAL)
    work.update(P, KEY, contact(rcv=rcv(lon(2026, 3, 2, 10)), dec=dec(lon(2026, 3, 4, 10))))
    work.update(P, KEY2, contact(rcv=rcv(lon(2026, 3, 2, 10))))
    work.drop_partition(P)
    assert states_of(work, lon(2026, 3, 9)) == {} and work.breaches(lon(2026, 3, 9), [P]) == {}
    work.update(P, KEY2, None)  # a tombstone for an unknown key is harmless


# -- rebuild equals incremental updates, in any order -------------------------------------

_BASE = lon(2026, 12, 21, 9)  # the week before Christmas 2026 and the holidays after it
_SLOTS = ["rcv", "dec", "dec_lado", "alloc", "prog:early_help", "prog:childrens_social_care",
          "open", "done"]

event_st = st.tuples(
    st.sampled_from([KEY, KEY2, "c3" * 16]), st.sampled_from(_SLOTS),
    st.integers(0, 12 * 86400), st.integers(0, 9))


def _event(key: str, slot: str, offset: int, n: int) -> tuple[str, str, str, list[object]]:
    ts, eid = _BASE + offset, f"ev-{slot}-{n}"
    if slot in ("open", "done"):
        value: list[object] = [ts, eid] if slot == "open" else [ts, eid, ["police"], "level_2",
                                                                None]
        return "map", key, slot, value
    if slot.startswith("dec"):
        return "contact", key, "dec", dec(ts, "lado" if slot == "dec_lado" else "level_1", eid)
    return "contact", key, slot, rcv(ts, eid) if slot == "rcv" else [ts, eid]


def _replay(events: list[tuple[str, str, str, list[object]]]) -> tuple[OpenWork, dict[str, object]]:
    work, table = OpenWork(RULES, CAL), {}
    for kind, key, slot, value in events:
        tkey = records.table_key(kind, key)
        new = records.fold(table.get(tkey), kind, slot, value, hash(key) % 2)
        if new is not None:
            table[tkey] = new
            work.update(("t", new["p"]), tkey, new)
    return work, table


def _view(work: OpenWork) -> object:
    owned = [("t", 0), ("t", 1)]
    return [(work.states(now, owned), work.breaches(now, owned), work.oldest(now, owned),
             work.due_list(now, owned, 100))
            for now in (_BASE + h * 3600 for h in range(0, 400, 7))]


@settings(max_examples=60, deadline=None)
@given(st.lists(event_st, min_size=1, max_size=14), st.randoms(use_true_random=False))
def test_any_update_order_gives_the_rebuilt_state(raw: list, rnd) -> None:
    events = [_event(*e) for e in raw]
    work, table = _replay(events)
    shuffled = events[:]
    rnd.shuffle(shuffled)
    other, _ = _replay(shuffled)
    rebuilt = OpenWork(RULES, CAL)
    for part in (0, 1):
        rebuilt.rebuild(("t", part), [(k, r) for k, r in table.items() if r["p"] == part])
    assert _view(work) == _view(other) == _view(rebuilt)


# -- the collector ------------------------------------------------------------------------


def test_collector_exports_only_closed_label_sets() -> None:
    work = OpenWork(RULES, CAL)
    work.update(P, "contact:" + KEY, contact(rcv=rcv(lon(2026, 3, 2, 10))))
    work.update(P, "contact:" + "c3" * 16, contact(rcv=rcv(lon(2026, 3, 2, 10)),
                                                  dec=dec(lon(2026, 3, 4, 10), "lado")))
    work.update(("maps", 3), "map:" + KEY2, {"k": "map", "p": 3, "open": [lon(2026, 3, 2), "e"]})
    now = lon(2026, 3, 4, 12)
    calls: list[str] = []

    def owned() -> set[object]:
        calls.append("owned")
        return {P}

    registry = CollectorRegistry()
    registry.register(TimelinessCollector(work, lambda: now, owned))
    assert calls == []  # registering does not evaluate anything
    text = generate_latest(registry).decode()
    assert KEY not in text and KEY2 not in text and "c3" * 16 not in text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    closed = {"rule": set(work.rules), "team": {"rfs", "map", "ehh"}, "state": set(STATES),
              "rule_version": {"1"}}
    for family in families.values():
        for sample in family.samples:
            for label, value in sample.labels.items():
                if label == "month":
                    assert re.fullmatch(r"20\d\d-(0[1-9]|1[0-2])", value)
                else:
                    assert value in closed[label], (sample.name, label, value)
    open_items = {(s.labels["rule"], s.labels["state"]): s.value
                  for s in families["cspa_open_items"].samples}
    assert len(open_items) == 6 * 4
    assert open_items[("contact_decision", "overdue")] == 1  # due Tue 3 Mar 10:00
    assert open_items[("lado_referral", "on_time")] == 1  # decided Wed 10:00, due Thu 10:00
    assert open_items[("map_enquiry", "overdue")] == 0  # partition not owned
    oldest = {s.labels["rule"]: s.value
              for s in families["cspa_open_item_oldest_workdays"].samples}
    assert oldest == {"contact_decision": pytest.approx(2.0 + 2 / 24), "map_enquiry": 0.0,
                      "early_help_allocation": 0.0, "lado_referral": pytest.approx(2 / 24),
                      "complaint_stage1": 0.0, "partner_response": 0.0}
    # one open and overdue, one decided late (Wed 10:00 for a Tue 10:00 deadline)
    [breach] = families["cspa_breaches"].samples
    assert breach.labels == {"rule": "contact_decision", "rule_version": "1", "month": "2026-03"}
    assert breach.value == 2
    [evaluated] = families["cspa_timeliness_evaluated_timestamp_seconds"].samples
    assert evaluated.value == now


def test_rules_file_timescales_are_what_the_alerts_say() -> None:
    # The alert texts in grafana/prometheus/rules/timeliness.yml quote these timescales.
    assert {n: (r.clock, r.timescale, r.warn_working_hours, r.team)
            for n, r in watched_rules(RULES).items()} == {
        "contact_decision": ("working_days", 1, 4, "rfs"),
        "map_enquiry": ("working_days", 1, 4, "map"),
        "early_help_allocation": ("working_days", 2, 4, "ehh"),
        "lado_referral": ("working_days", 1, 4, "rfs"),
        "complaint_stage1": ("working_days", 10, 16, "rfs"),
        "partner_response": ("working_hours", 4, 1, "map"),
    }
    complaint = watched_rules(RULES)["complaint_stage1"].latest
    assert (complaint.extended_by, complaint.extended_timescale) == ("complaint.extended", 20)


CLOCK_RULES = [
    Rule("wd1", 1, "rfs", "contact.received", "contact.decided", "working_days", 1, 4),
    Rule("wd2", 1, "rfs", "contact.received", "contact.decided", "working_days", 2, 4),
    Rule("wh4", 1, "rfs", "contact.received", "contact.decided", "working_hours", 4, 1),
    Rule("h72", 1, "rfs", "contact.received", "contact.decided", "hours", 72, 4),
    Rule("h2", 1, "rfs", "contact.received", "contact.decided", "hours", 2, 1),
]


@settings(max_examples=300, deadline=None)
@given(start=st.integers(min_value=int(lon(2019, 1, 1)), max_value=int(lon(2027, 12, 31))),
       rule=st.sampled_from(CLOCK_RULES))
def test_no_deadline_falls_before_the_earliest_bound(start: int, rule: Rule) -> None:
    # OpenWork skips working out deadlines of work closed sooner than this bound; the
    # bound must hold across weekends, bank holidays, after-hours starts and BST changes.
    from stream.state.timeliness import earliest_deadline

    item = only(contact(rcv=rcv(float(start))), rule.name, {rule.name: rule})
    assert item.deadline_ts - item.start_ts >= earliest_deadline(rule)


@settings(max_examples=200, deadline=None)
@given(start=st.integers(min_value=int(lon(2024, 1, 1)), max_value=int(lon(2026, 12, 31))),
       took=st.integers(min_value=0, max_value=6 * 86_400))
def test_open_work_counts_as_if_every_deadline_were_worked_out(start: int, took: int) -> None:
    rules = {r.name: r for r in CLOCK_RULES}
    work = OpenWork(rules, CAL)
    rec = contact(rcv=rcv(float(start)), dec=dec(float(start + took)))
    work.update(P, KEY, rec)
    late = [i for i in items_of(rec, rules, CAL) if i.closed_ts and i.closed_ts > i.deadline_ts]
    assert sum(work.breaches(float(start), [P]).values()) == len(late)


def _reference_schedule(rule: Rule, start_ts: float, cal: WorkingCalendar) -> tuple[float, float]:
    """Deadline and warning worked out through the calendar's datetime API, step by step
    as the definitions read (the worker's own path works on POSIX seconds)."""
    from datetime import timedelta

    start = datetime.fromtimestamp(start_ts, ZoneInfo(cal.tz))
    if rule.clock == "working_days":
        deadline = cal.add_working_days(start, rule.timescale)
    elif rule.clock == "working_hours":
        deadline = cal.add_working_hours(start, rule.timescale)
    else:
        deadline = start + timedelta(hours=rule.timescale)
    hours = rule.warn_working_hours
    if hours <= 0:
        return deadline.timestamp(), deadline.timestamp()
    total = cal.working_hours_between(start, deadline)
    if total <= hours:
        return deadline.timestamp(), start.timestamp()
    warn = cal.add_working_hours(start, total - hours)
    close = datetime.combine(warn.date(), cal.office_hours.end, warn.tzinfo)
    if cal.is_working_day(warn.date()) and abs((warn - close).total_seconds()) < 1e-3:
        warn = datetime.combine(cal.next_working_day(warn.date()), cal.office_hours.start,
                                warn.tzinfo)
    return deadline.timestamp(), min(max(warn, start), deadline).timestamp()


ROLLING = WorkingCalendar(roll_after_hours=True)
RULES_AND_CLOCKS = CLOCK_RULES + [
    Rule("wd05", 1, "rfs", "contact.received", "contact.decided", "working_days", 0.5, 2),
    Rule("wh0", 1, "rfs", "contact.received", "contact.decided", "working_hours", 6, 0),
    *RULES.values(),
]


@settings(max_examples=600, deadline=None)
@given(start=st.integers(min_value=int(lon(2019, 1, 1)), max_value=int(lon(2027, 12, 31))),
       micros=st.sampled_from([0, 1, 499_999, 500_000, 999_999]),
       rule=st.sampled_from(RULES_AND_CLOCKS), rolling=st.booleans())
def test_schedule_equals_the_datetime_definitions(start: int, micros: int, rule: Rule,
                                                  rolling: bool) -> None:
    # Every new contact's deadline and warning come from _schedule, on POSIX seconds:
    # they must be the very instants the datetime API gives, to the microsecond.
    from stream.state.timeliness import _schedule

    cal = ROLLING if rolling else CAL
    ts = start + micros / 1e6
    assert _schedule(rule, ts, cal) == _reference_schedule(rule, ts, cal)


#: England and Wales bank holidays 2019-2027 on weekdays, written out from gov.uk's list
#: (substitute days included; 2020's VE Day, 2022's jubilee and state funeral, 2023's
#: coronation): the reference below never asks the ``holidays`` library the calendar uses.
BANK_HOLIDAYS = frozenset(date.fromisoformat(d) for d in """
2019-01-01 2019-04-19 2019-04-22 2019-05-06 2019-05-27 2019-08-26 2019-12-25 2019-12-26
2020-01-01 2020-04-10 2020-04-13 2020-05-08 2020-05-25 2020-08-31 2020-12-25 2020-12-28
2021-01-01 2021-04-02 2021-04-05 2021-05-03 2021-05-31 2021-08-30 2021-12-27 2021-12-28
2022-01-03 2022-04-15 2022-04-18 2022-05-02 2022-06-02 2022-06-03 2022-08-29 2022-09-19
2022-12-26 2022-12-27
2023-01-02 2023-04-07 2023-04-10 2023-05-01 2023-05-08 2023-05-29 2023-08-28 2023-12-25
2023-12-26
2024-01-01 2024-03-29 2024-04-01 2024-05-06 2024-05-27 2024-08-26 2024-12-25 2024-12-26
2025-01-01 2025-04-18 2025-04-21 2025-05-05 2025-05-26 2025-08-25 2025-12-25 2025-12-26
2026-01-01 2026-04-03 2026-04-06 2026-05-04 2026-05-25 2026-08-31 2026-12-25 2026-12-28
2027-01-01 2027-03-26 2027-03-29 2027-05-03 2027-05-31 2027-08-30 2027-12-27 2027-12-28
""".split())


def _local(d: date, hour: int = 0) -> float:
    return datetime(d.year, d.month, d.day, hour, tzinfo=LONDON).timestamp()


def _counted_deadline(clock: str, amount: float, start_ts: float) -> float:
    """The deadline counted one local day at a time from ``BANK_HOLIDAYS``.

    A working day is Monday to Friday and not a bank holiday. ``working_days``: each
    one counts 1 from midnight to midnight (its real length, 23 or 25 h too) and time
    inside it counts pro rata; ``working_hours``: its 09:00-17:00 counts hour by hour.
    """
    d, left = datetime.fromtimestamp(start_ts, LONDON).date(), amount
    while True:
        if d.weekday() < 5 and d not in BANK_HOLIDAYS:
            if clock == "working_days":
                lo, hi, unit = _local(d), _local(d + timedelta(days=1)), None
            else:
                lo, hi, unit = _local(d, 9), _local(d, 17), 3600.0
            frm = max(start_ts, lo)
            if frm < hi:
                per = unit or (hi - lo)  # seconds a unit of ``amount`` takes on this day
                if left * per <= hi - frm:
                    return frm + left * per
                left -= (hi - frm) / per
        d += timedelta(days=1)


@settings(max_examples=500, deadline=None)
@given(start=st.integers(min_value=int(lon(2019, 1, 1)), max_value=int(lon(2027, 12, 1))),
       rule=st.sampled_from([r for r in RULES_AND_CLOCKS if r.clock != "hours"]))
def test_deadline_equals_working_days_counted_day_by_day(start: int, rule: Rule) -> None:
    # An independent reference: no calendar code, its own list of bank holidays.
    from stream.state.timeliness import _schedule

    deadline, _ = _schedule(rule, float(start), CAL)
    assert deadline == pytest.approx(_counted_deadline(rule.clock, rule.timescale, start),
                                     abs=1e-5)


@pytest.mark.parametrize("day", sorted(BANK_HOLIDAYS), ids=str)
def test_every_bank_holiday_stops_the_clock(day: date) -> None:
    # Received at noon the working day before: one working day later skips the holiday.
    before = day - timedelta(days=1)
    while before.weekday() >= 5 or before in BANK_HOLIDAYS:
        before -= timedelta(days=1)
    item = only(contact(rcv=rcv(_local(before, 12))), "contact_decision")
    assert item.deadline_ts == _counted_deadline("working_days", 1, _local(before, 12))
    assert item.deadline_ts > _local(day + timedelta(days=1))


@pytest.mark.parametrize("when", [
    (2026, 12, 24, 13, 0), (2026, 10, 23, 9, 30), (2026, 3, 27, 16, 59), (2024, 3, 28, 12, 0),
    (2026, 12, 24, 17, 0), (2026, 6, 12, 9, 0), (2026, 6, 13, 11, 0)])
@pytest.mark.parametrize("rule", RULES_AND_CLOCKS, ids=lambda r: r.name)
def test_schedule_on_the_hard_days(when: tuple[int, ...], rule: Rule) -> None:
    # Christmas, both BST changes, Easter, office ends and a Saturday, for every rule.
    from stream.state.timeliness import _schedule

    for cal in (CAL, ROLLING):
        ts = lon(*when)
        assert _schedule(rule, ts, cal) == _reference_schedule(rule, ts, cal)


@settings(max_examples=400, deadline=None)
@given(day=st.dates(min_value=datetime(2019, 1, 1).date(), max_value=datetime(2027, 12, 31).date()),
       seconds=st.sampled_from([0, 1, 3599, 3600, 82_800, 86_399]) | st.integers(0, 86_399),
       micros=st.sampled_from([0, 1, 999, 1000, 999_999]))
def test_breach_month_memo_equals_the_local_month(day, seconds: int, micros: int) -> None:
    # Deadlines at and near local midnight, in GMT and in BST: a deadline at midnight
    # ends the month before; the memo is per clock hour.
    work = OpenWork({}, CAL)
    midnight = datetime(day.year, day.month, day.day, tzinfo=LONDON).timestamp()
    for deadline in (midnight + seconds + micros / 1e6, midnight - seconds - micros / 1e6):
        want = datetime.fromtimestamp(deadline - 1e-3, LONDON).strftime("%Y-%m")
        late = Item("r", 1, "rfs", "contact", deadline - 86_400, deadline, deadline, None)
        assert work._breach(late)[2] == want
        assert work._breach(late)[2] == want  # from the memo


def test_late_records_share_one_value_each_also_after_a_checkpoint() -> None:
    """A national year holds about a million late records and a few hundred distinct
    (rule, version, month) values: each is kept once, not once a record."""
    work = OpenWork(RULES, CAL)
    start = lon(2026, 3, 6, 14)  # deadline Mon 9 Mar 14:00: decided late at 16:00
    keys = [f"{i:032x}" for i in range(5)]
    for key in keys:
        work.update(P, key, contact(rcv=rcv(start), dec=dec(lon(2026, 3, 9, 16))))
    late = work.export(P)[1]
    assert late[keys[0]] == (("contact_decision", 1, "2026-03"),)
    assert all(late[k] is late[keys[0]] for k in keys)
    # restored from a checkpoint whose values are not shared (written before): shared again,
    # and with what later updates make
    copied = pickle.loads(pickle.dumps(work.export(P)))
    copied = (copied[0], {k: tuple(list(v)) for k, v in copied[1].items()}, *copied[2:])
    again = OpenWork(RULES, CAL)
    again.restore(P, copied)
    again.update(P, "f" * 32, contact(rcv=rcv(start), dec=dec(lon(2026, 3, 9, 16))))
    restored = again.export(P)[1]
    assert all(restored[k] is restored["f" * 32] for k in keys)
    assert again.breaches(lon(2026, 3, 10), [P]) == {("contact_decision", 1, "2026-03"): 6}
