"""Corrections that keep the business time (issue 14, part 4).

A contact received Monday 16 September 2019 09:30 is decided at 11:30 as
"Information"; on Thursday 19 September at 14:00 the case system re-records the
decision as "MAP Enquiry". Sent with ``recorded_at`` (Thursday) and the original
``occurred_at`` (Monday), the correction replaces the outcome and keeps the
two-hour duration, whatever the order of arrival and however often either is
delivered. The expected numbers are worked out by hand here, not by the worker.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import orjson
import pytest
from prometheus_client import CollectorRegistry

from stream.contract.decoder import Decoder
from stream.state import records
from stream.state.timeliness import items_of
from stream.worker.metrics import PipelineMetrics
from stream.worker.processor import CellState, FamilyProcessor
from tests.conftest import LONDON
from tests.factories import decided, key, received

NOW = datetime(2026, 11, 26, 12, tzinfo=LONDON).timestamp()
MONDAY_IN = datetime(2019, 9, 16, 9, 30, tzinfo=LONDON)
MONDAY_DECIDED = datetime(2019, 9, 16, 11, 30, tzinfo=LONDON)
THURSDAY = datetime(2019, 9, 19, 14, tzinfo=LONDON)
K = key("corrected-contact")
GROUP = "police"  # source code 6


def events():
    rcv = received(K, MONDAY_IN, source_code="6")
    original = decided(K, MONDAY_DECIDED, "level_1", "information")
    original["event_id"] = "zz-original"  # sorts after the correction's id: ids must not decide
    fix = decided(K, MONDAY_DECIDED, "map", "map_enquiry")
    fix["event_id"] = "aa-correction"
    fix["recorded_at"] = THURSDAY.isoformat()
    return rcv, original, fix


def run(taxonomy, ctx, messages):
    state, table = CellState(), {}
    proc = FamilyProcessor("t.contacts", Decoder("contacts", taxonomy), ctx, state,
                           PipelineMetrics(CollectorRegistry()))
    for m in messages:
        proc.process(K.encode(), orjson.dumps(m), 0, None, table, now=NOW)
    got = {k: (c.count, round(c.total, 4)) for k, c in state.part("t.contacts", 0).cells.items()
           if k[0].startswith(("contact_completion", "contacts_decided"))}
    return got, {k: records.loads(v) for k, v in table.items()}


def test_correction_changes_the_outcome_and_keeps_the_duration(taxonomy, ctx):
    rcv, original, fix = events()
    before, _ = run(taxonomy, ctx, [rcv, original])
    after, table = run(taxonomy, ctx, [rcv, original, fix])
    two_hours = round(2 / 24, 4)  # same working day: 2 h of a 24 h working-day clock
    hour = (str(int(MONDAY_DECIDED.timestamp() // 3600)),)  # live windows: business hour too
    assert before == {
        ("contacts_decided", ("2019-09", "level_1")): (1, 0),
        ("contacts_decided_hourly", hour): (1, 0),
        ("contact_completion_working_days", ("2019-09", GROUP, "information")): (1, two_hours),
        ("contact_completion_calendar_days", ("2019-09", GROUP, "information")): (1, two_hours)}
    assert after == {
        ("contacts_decided", ("2019-09", "map")): (1, 0),
        ("contacts_decided_hourly", hour): (1, 0),
        ("contact_completion_working_days", ("2019-09", GROUP, "map_enquiry")): (1, two_hours),
        ("contact_completion_calendar_days", ("2019-09", GROUP, "map_enquiry")): (1, two_hours)}
    slot = table["contact:" + K]["dec"]
    assert slot[0] == MONDAY_DECIDED.timestamp()  # business time kept
    assert slot[1] == [THURSDAY.timestamp(), "aa-correction"]


def test_a_correction_sent_the_old_way_moves_the_completion(taxonomy, ctx):
    # Without recorded_at a correction is a later event: its time is Thursday's, and
    # the contact takes 3 working days and 4.5 hours (the worked example in docs/contract.md).
    rcv, original, fix = events()
    fix.pop("recorded_at")
    fix["occurred_at"] = THURSDAY.isoformat()
    got, table = run(taxonomy, ctx, [rcv, original, fix])
    labels = ("2019-09", GROUP, "map_enquiry")
    assert got[("contact_completion_working_days", labels)] == (1, 3.1875)
    rule = {"contact_decision": ctx.rules["contact_decision"]}
    (item,) = items_of(table["contact:" + K], rule, ctx.calendar)
    assert item.closed_ts is not None and item.closed_ts > item.deadline_ts  # a false breach


def test_every_arrival_order_and_duplicate_gives_the_same_record(taxonomy, ctx):
    rcv, original, fix = events()
    outcomes = set()
    for order in itertools.permutations([rcv, original, fix, original, fix]):
        cells, table = run(taxonomy, ctx, order)
        outcomes.add((tuple(sorted(cells.items())),
                      orjson.dumps(table, option=orjson.OPT_SORT_KEYS)))
    assert len(outcomes) == 1


def test_the_decision_closes_its_timescale_at_business_time(taxonomy, ctx):
    rcv, original, fix = events()
    _, table = run(taxonomy, ctx, [fix, rcv, original])
    rule = {"contact_decision": ctx.rules["contact_decision"]}
    (item,) = items_of(table["contact:" + K], rule, ctx.calendar)
    assert item.closed_ts == MONDAY_DECIDED.timestamp()
    assert item.closed_ts <= item.deadline_ts  # on time: no breach from a correction


def _slot(at, eid, recorded=None):
    version = eid if recorded is None else [recorded.timestamp(), eid]
    return [at.timestamp(), version, "level_1", None]


def test_order_is_recorded_then_occurred_then_id():
    mon, tue = MONDAY_DECIDED, MONDAY_DECIDED + timedelta(days=1)
    assert records.order(_slot(mon, "b")) == (mon.timestamp(), mon.timestamp(), "b")
    ranked = [_slot(mon, "b"), _slot(mon, "c"), _slot(tue, "a"),
              _slot(mon, "a", recorded=tue + timedelta(hours=1)),
              _slot(tue, "a", recorded=tue + timedelta(hours=1))]
    assert sorted(ranked, key=records.order) == ranked


@pytest.mark.parametrize("recorded", [None, "same"])
def test_uncorrected_events_keep_the_old_slot_form(taxonomy, recorded):
    event = decided(K, MONDAY_DECIDED)
    if recorded:
        event["recorded_at"] = MONDAY_DECIDED.isoformat()
    decoded = Decoder("contacts", taxonomy).decode(K.encode(), orjson.dumps(event), NOW)
    _, _, slot = records.slot_of(decoded)  # type: ignore[arg-type]
    assert slot == [MONDAY_DECIDED.timestamp(), event["event_id"], "level_1", None]


def test_old_records_load_unchanged_and_take_corrections():
    old = b'{"k":"contact","p":2,"dec":[1568629800.0,"evt-1","level_1","information"]}'
    record = records.loads(old)
    assert records.dumps(record) == old
    fix = [1568629800.0, [1568898000.0, "evt-0"], "map", "map_enquiry"]
    merged = records.fold(record, "contact", "dec", fix, 2)
    assert merged is not None and merged["dec"] == fix
    assert records.fold(merged, "contact", "dec", record["dec"], 2) is None
    # A corrected slot costs only its recorded time and two brackets.
    assert len(records.dumps(merged)) - len(old) <= 24
