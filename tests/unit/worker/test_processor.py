"""Folding events into records and figures, with a dict as the records table."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from stream.contract.decoder import Decoder, Rejection
from stream.state.aggregates import Aggregates
from stream.worker.metrics import PipelineMetrics
from stream.worker.processor import CellState, FamilyProcessor
from tests.conftest import LONDON
from tests.factories import abandoned, answered, decided, key, received

NOW = datetime(2026, 11, 26, 12, tzinfo=LONDON).timestamp()
T0 = datetime(2019, 8, 2, 10, tzinfo=LONDON)  # a Friday


@pytest.fixture
def make(taxonomy, ctx):
    def build(family="contacts"):
        state = CellState()
        metrics = PipelineMetrics(CollectorRegistry())
        proc = FamilyProcessor("t." + family, Decoder(family, taxonomy), ctx, state, metrics)
        return proc, state, {}
    return build


def feed(proc, table, events, partition=0):
    results = []
    for event in events:
        k = (event.get("contact_key") or event.get("call_key")).encode()
        results.append(proc.process(k, orjson.dumps(event), partition, None, table, now=NOW))
    return results


def cells(state, partition=0):
    return {k: (c.count, round(c.total, 4)) for k, c in state.part("t.contacts", partition)
            .cells.items()}


def test_received_then_decided_counts_once_with_duration(make):
    proc, state, table = make()
    k = key("c1")
    rcv, dec = received(k, T0), decided(k, T0 + timedelta(days=3), "level_4")
    feed(proc, table, [rcv, dec, rcv, dec])  # each delivered twice
    got = cells(state)
    assert got[("contacts_received", ("2019-08", "email", "police", "rfs"))] == (1, 0)
    assert got[("contacts_decided", ("2019-08", "level_4"))] == (1, 0)
    # Friday 10:00 -> Monday 10:00 is one working day, three calendar days.
    labels = ("2019-08", "police", "not_yet_recorded")
    assert got[("contact_completion_working_days", labels)] == (1, 1.0)
    assert got[("contact_completion_calendar_days", labels)] == (1, 3.0)


def test_completion_arriving_first_is_matched_later(make):
    proc, state, table = make()
    k = key("c2")
    dec = decided(k, T0 + timedelta(hours=2), "map", "map_enquiry")
    feed(proc, table, [dec])
    assert ("contact_completion_working_days", ("2019-08", "police", "map_enquiry")) \
        not in cells(state)
    feed(proc, table, [received(k, T0)])
    assert cells(state)[("contact_completion_working_days",
                         ("2019-08", "police", "map_enquiry"))] == (1, 0.0833)


def test_correction_replaces_and_month_follows_event_time(make):
    proc, state, table = make()
    k = key("c3")
    feed(proc, table, [received(k, T0), decided(k, T0 + timedelta(hours=1), "level_1")])
    later = decided(k, T0 + timedelta(days=30), "level_3")  # a correction in September
    feed(proc, table, [later])
    got = cells(state)
    assert ("contacts_decided", ("2019-08", "level_1")) not in got
    assert got[("contacts_decided", ("2019-09", "level_3"))] == (1, 0)


def test_rejection_leaves_state_alone(make):
    proc, state, table = make()
    result = proc.process(b"x", b"{oops", 0, None, table, now=NOW)
    assert isinstance(result, Rejection) and result.reason == "invalid_json"
    assert table == {} and state.part("t.contacts", 0).cells == {}


def test_rebuild_from_table_equals_incremental(make, ctx):
    proc, state, table = make()
    for i in range(30):
        k = key(f"r{i}")
        feed(proc, table, [received(k, T0 + timedelta(hours=i)),
                           decided(k, T0 + timedelta(hours=2 * i + 1), "level_2_eh")],
             partition=i % 3)
    fresh = CellState()
    fresh.rebuild("t.contacts", table.items(), {0, 1, 2}, ctx)
    for p in range(3):
        assert fresh.part("t.contacts", p).to_json() == state.part("t.contacts", p).to_json()
    only_one = CellState()
    only_one.rebuild("t.contacts", table.items(), {1}, ctx)
    assert set(only_one.parts) == {("t.contacts", 1)}


def test_answer_outranks_abandon_and_month_is_when_offered(make):
    proc, state, table = make("calls")
    k = key("call")
    # Answered 00:00:30 on 1 Sep after waiting 60 s: offered on 31 Aug.
    at = datetime(2019, 9, 1, 0, 0, 30, tzinfo=LONDON)
    feed(proc, table, [answered(k, at, 60.0)])
    feed(proc, table, [abandoned(k, at + timedelta(seconds=5), 65.0)])
    part = state.part("t.calls", 0)
    assert [k for k in part.cells if k[0] == "calls_answered"] == [
        ("calls_answered", ("2019-08", "rfs"))]
    assert not [k for k in part.cells if k[0].startswith("calls_abandoned")]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from(["rcv", "dec"]),
                          st.integers(0, 400)), max_size=25), st.randoms())
def test_any_order_and_duplicates_give_the_same_figures(taxonomy, ctx, ops, rnd):
    events = []
    for who, kind, hours in ops:
        k, at = key(f"p{who}"), T0 + timedelta(hours=hours)
        event = received(k, at) if kind == "rcv" else decided(k, at, "ola")
        event["event_id"] = f"id-{who}-{kind}-{hours:04d}"
        events.append(event)
    def run(evts):
        state, table = CellState(), {}
        proc = FamilyProcessor("t.contacts", Decoder("contacts", taxonomy), ctx, state,
                               PipelineMetrics(CollectorRegistry()))
        feed(proc, table, evts)
        return state.part("t.contacts", 0)
    shuffled = events + events[: len(events) // 2]
    rnd.shuffle(shuffled)
    a, b = run(events), run(shuffled)
    assert a.to_json() == b.to_json()
    assert all(c.count > 0 and c.total >= 0 for c in a.cells.values())


def test_aggregates_apply_and_withdraw_exactly():
    agg = Aggregates()
    facts = [("f", ("m",), 1.5), ("f", ("m",), 0.25), ("g", ("m",), None)]
    agg.apply(facts, +1)
    assert agg.cells[("f", ("m",))].count == 2
    agg.apply(facts, -1)
    assert agg.cells == {}
    rng = random.Random(3)
    values = [rng.random() * 5 for _ in range(200)]
    agg.apply([("f", ("m",), v) for v in values], +1)
    assert Aggregates.from_json(orjson.loads(orjson.dumps(agg.to_json()))).to_json() \
        == agg.to_json()


def test_progression_exactly_on_the_timescale_is_within(make):
    # Thu 4 Jul 2019 10:15 -> Fri 5 Jul 10:15 is exactly one working day; the
    # clock's float arithmetic gives 1.0000000000000142 for this pair.
    proc, state, table = make()
    k = key("boundary")
    start = datetime(2019, 7, 4, 10, 15, tzinfo=LONDON)
    progressed = {**received(k, start), "event_type": "contact.progressed",
                  "destination": "childrens_social_care",
                  "occurred_at": (start + timedelta(days=1)).isoformat()}
    for field in ("channel", "source_code", "team"):
        del progressed[field]
    feed(proc, table, [received(k, start), progressed])
    got = cells(state)
    assert got[("progressions", ("2019-07", "childrens_social_care", "true"))] == (1, 0)


def test_a_batch_settled_at_its_end_counts_as_event_by_event(make, ctx):
    # The worker folds a batch and recounts each changed case once at its end
    # (FamilyProcessor.settle); the figures and open work must be those of one
    # event at a time, whatever repeats, corrections and duplicates the batch holds.
    from stream.state.timeliness import OpenWork

    rng = random.Random(7)
    events = []
    for i in range(40):
        k = key(f"b{i}")
        events += [received(k, T0 + timedelta(hours=i)),
                   decided(k, T0 + timedelta(hours=i, days=rng.choice([0, 1, 3])),
                           rng.choice(["level_4", "information"]))]
    events += rng.sample(events, 25)  # duplicates inside the batch
    rng.shuffle(events)

    one, state_one, table_one = make()
    one.work = OpenWork(ctx.rules, ctx.calendar)
    feed(one, table_one, events)

    batched, state_b, table_b = make()
    batched.work = OpenWork(ctx.rules, ctx.calendar)
    pending, before = {}, {}
    for event in events:
        batched.fold(event["contact_key"].encode(), orjson.dumps(event), 0, table_b, NOW,
                     pending, before)
    batched.settle(0, pending, before)
    assert before == {}
    assert cells(state_b) == cells(state_one)
    assert batched.work.states(NOW, {("t.contacts", 0)}) == one.work.states(
        NOW, {("t.contacts", 0)})
    assert batched.work.breaches(NOW, {("t.contacts", 0)}) == one.work.breaches(
        NOW, {("t.contacts", 0)})
