"""Calls waiting now (state/calls_waiting.py, shown by worker/live_gauges.py), at a clock."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stream.contract.decoder import Decoder, Rejection
from stream.state.calls_waiting import QueueState, listen, waiting_of
from stream.state.facts import window_hours
from stream.state.timeliness import OpenWork
from stream.worker.live_gauges import CallsWaitingCollector, asa_family
from stream.worker.metrics import PipelineMetrics
from stream.worker.processor import CellState, FamilyProcessor
from tests.conftest import LONDON
from tests.factories import abandoned, answered, key, queued

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=LONDON)  # a Tuesday morning
NOW = T0.timestamp()
TOPIC = "t.calls"
LIMIT = 3600.0


class Line:
    """A calls processor with open work and a CallsWaiting listening to it, as create_app wires."""

    def __init__(self, taxonomy, ctx) -> None:
        self.state, self.table = CellState(), {}
        self.work = OpenWork(ctx.rules, ctx.calendar)
        self.queue = listen(self.work, taxonomy.ordered("call_queue"), LIMIT)
        self.collector = CallsWaitingCollector(self.queue, lambda: NOW, self.owned)
        self.ctx = ctx
        self.proc = FamilyProcessor(TOPIC, Decoder("calls", taxonomy), ctx, self.state,
                                    PipelineMetrics(CollectorRegistry()), self.work)

    def owned(self) -> set[tuple[str, int]]:
        return {(TOPIC, 0), (TOPIC, 1)}

    def send(self, *events: dict, partition: int = 0) -> None:
        for e in events:
            # the decoder's real-time bound: events up to a day after T0 are in the past
            result = self.proc.process(e["call_key"].encode(), orjson.dumps(e), partition,
                                       None, self.table, now=NOW + 86_400)
            assert not isinstance(result, Rejection), result

    def at(self, when: datetime, owned: set[tuple[str, int]] | None = None
           ) -> dict[str, QueueState]:
        return self.queue.evaluate(when.timestamp(), self.owned() if owned is None else owned)


@pytest.fixture
def line(taxonomy, ctx) -> Line:
    return Line(taxonomy, ctx)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def test_waiting_count_and_oldest_wait_at_a_given_clock(line):
    a, b, c = key("a"), key("b"), key("c")
    line.send(queued(a, T0), queued(b, T0 + minutes(1)))
    line.send(queued(c, T0 + minutes(2), "consultation"), partition=1)
    got = line.at(T0 + minutes(3))
    assert got["rfs"] == QueueState(waiting=2, oldest_seconds=180.0, expired=0)
    assert got["consultation"] == QueueState(1, 60.0, 0)
    # Only owned partitions count: each worker exports what it owns, sum() is exact.
    assert line.at(T0 + minutes(3), {(TOPIC, 1)})["rfs"] == QueueState()
    # Waits grow with the clock alone, no event needed.
    assert line.at(T0 + minutes(10))["rfs"].oldest_seconds == 600.0


def test_answered_and_abandoned_calls_stop_waiting(line):
    a, b, c = key("a"), key("b"), key("c")
    line.send(queued(a, T0), queued(b, T0), queued(c, T0 + minutes(1)))
    line.send(answered(a, T0 + minutes(2), 120), abandoned(b, T0 + minutes(1), 60))
    assert line.at(T0 + minutes(5))["rfs"] == QueueState(1, 240.0, 0)
    line.send(answered(c, T0 + minutes(6), 300))
    assert line.at(T0 + minutes(7))["rfs"] == QueueState()


def test_answer_before_queue_never_waits(line):
    a = key("a")
    line.send(answered(a, T0 + minutes(1), 60))
    assert line.at(T0 + minutes(2))["rfs"] == QueueState()
    line.send(queued(a, T0))  # the queue event arrives late
    assert line.at(T0 + minutes(2))["rfs"] == QueueState()
    line.send(queued(a, T0), answered(a, T0 + minutes(1), 60))  # and replays change nothing
    assert line.at(T0 + minutes(2))["rfs"] == QueueState()


def test_a_call_never_answered_expires_after_the_limit(line):
    lost, fresh = key("lost"), key("fresh")
    line.send(queued(lost, T0), queued(fresh, T0 + minutes(50)))
    assert line.at(T0 + minutes(60))["rfs"] == QueueState(2, 3600.0, 0)  # at the limit
    assert line.at(T0 + minutes(61))["rfs"] == QueueState(1, 660.0, 1)
    assert line.at(T0 + minutes(200))["rfs"] == QueueState(0, 0.0, 2)
    line.send(abandoned(lost, T0 + minutes(90), 5400))  # the outcome turns up after all
    assert line.at(T0 + minutes(200))["rfs"] == QueueState(0, 0.0, 1)


def test_a_call_queued_after_now_waits_zero_seconds(line):
    line.send(queued(key("early"), T0 + minutes(5)))
    assert line.at(T0)["rfs"] == QueueState(1, 0.0, 0)


def test_rebuild_from_the_records_equals_incremental(taxonomy, ctx):
    rng = random.Random(14)
    live = Line(taxonomy, ctx)
    for i in range(300):
        k, at = key(f"call-{i}"), T0 - minutes(rng.uniform(0, 120))
        queue = rng.choice(["rfs", "consultation"])
        events = [queued(k, at, queue)]
        fate = rng.random()
        if fate < 0.5:
            events.append(answered(k, at + minutes(1), 60, queue))
        elif fate < 0.6:
            events.append(abandoned(k, at + minutes(2), 120, queue))
        rng.shuffle(events)  # outcomes before queue events too
        live.send(*events, partition=i % 2)
    reborn = Line(taxonomy, ctx)
    reborn.queue.update((TOPIC, 0), "stale", {"k": "call", "p": 0, "q": [NOW, "x", "rfs"]})
    reborn.state.rebuild(TOPIC, live.table.items(), {0, 1}, ctx, reborn.work)
    for when in (T0, T0 + minutes(30), T0 + minutes(90)):
        assert reborn.at(when) == live.at(when)
    assert sum(s.waiting + s.expired for s in live.at(T0).values()) > 50


def test_rebuild_of_one_topic_keeps_the_others(line):
    line.queue.update(("other", 0), "call:x", {"k": "call", "p": 0, "q": [NOW, "x", "rfs"]})
    line.send(queued(key("a"), T0))
    line.work.drop_topic(TOPIC)
    assert line.queue.evaluate(NOW, {(TOPIC, 0), ("other", 0)})["rfs"].waiting == 1


def test_only_call_records_count():
    assert waiting_of({"k": "contact", "p": 0, "q": [NOW, "x", "rfs"]}) is None
    assert waiting_of(None) is None
    assert waiting_of({"k": "call", "p": 0, "q": [NOW, "x", "rfs"]}) == ("rfs", NOW)


def test_average_speed_of_answer_as_sum_and_count(line):
    now = T0 + minutes(30)
    waits = {"a": 10, "b": 30, "c": 95}
    for name, wait in waits.items():
        k = key(name)
        line.send(queued(k, T0), answered(k, T0 + timedelta(seconds=wait), wait))
    old = key("yesterday")
    line.send(answered(old, T0 - timedelta(days=1), 500))  # not in today's window
    line.send(abandoned(key("gone"), T0, 40))  # an abandon is no answer
    agg = line.state.current(line.owned())
    family = asa_family(agg, window_hours(now))
    got = {(s.name, s.labels["window"], s.labels["queue"]): s.value for s in family.samples}
    for window in ("this_hour", "today"):
        assert got["cspa_recent_calls_answer_wait_seconds_sum", window, "rfs"] == 135
        assert got["cspa_recent_calls_answer_wait_seconds_count", window, "rfs"] == 3


def test_collector_exposes_every_queue(line):
    line.send(queued(key("a"), T0 - minutes(2)))
    line.send(queued(key("lost"), T0 - minutes(90)), partition=1)
    registry = CollectorRegistry()
    registry.register(line.collector)
    text = generate_latest(registry).decode()
    got = {(s.name, s.labels["queue"]): s.value
           for f in text_string_to_metric_families(text) for s in f.samples}
    assert got == {("cspa_calls_waiting", "rfs"): 1, ("cspa_calls_waiting", "consultation"): 0,
                   ("cspa_calls_oldest_wait_seconds", "rfs"): 120.0,
                   ("cspa_calls_oldest_wait_seconds", "consultation"): 0.0,
                   ("cspa_calls_waiting_expired", "rfs"): 1,
                   ("cspa_calls_waiting_expired", "consultation"): 0}
