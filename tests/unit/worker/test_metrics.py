"""Metric exposition: promtool-clean, closed label sets, no identifiers, live windows."""

from __future__ import annotations

import random
import subprocess
from collections import Counter
from datetime import datetime, timedelta

import orjson
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stream.contract.decoder import REASONS, Decoder
from stream.settings import PeriodCombination, ServiceLevelVariant
from stream.state.aggregates import Aggregates, Cell
from stream.state.calls import CallDefinitions
from stream.state.calls_waiting import listen
from stream.state.facts import DAY, DAY_BUCKETS, SECOND_BUCKETS, window_hours
from stream.state.timeliness import OpenWork
from stream.worker.live_gauges import CallsWaitingCollector
from stream.worker.metrics import FiguresCollector, PipelineMetrics, _cumulative
from stream.worker.processor import CellState, FamilyProcessor
from tests.conftest import LONDON
from tests.factories import abandoned, answered, decided, key, queued, received
from tests.tools import require

NOW = datetime(2026, 11, 26, 14, 30, tzinfo=LONDON)
DEFS = CallDefinitions(20.0, ServiceLevelVariant.OFFERED, 0.0, PeriodCombination.RATIO_OF_SUMS)
KEYS = [key(f"child-{i}") for i in range(40)]


@pytest.fixture
def exposition(taxonomy, ctx):
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry)
    state = CellState()
    work = OpenWork(ctx.rules, ctx.calendar)
    waiting = listen(work, taxonomy.ordered("call_queue"), 3600)
    registry.register(CallsWaitingCollector(waiting, NOW.timestamp, lambda: owned))
    tables = {}
    for family, topic in (("contacts", "c"), ("calls", "k")):
        proc = FamilyProcessor(topic, Decoder(family, taxonomy), ctx, state, metrics, work)
        tables[family] = (proc, {})
    proc, table = tables["contacts"]
    for i, k in enumerate(KEYS[:20]):
        at = NOW - timedelta(hours=i * 3)
        for e in (received(k, at, "phone", "3A"), decided(k, at + timedelta(hours=1), "map")):
            proc.process(k.encode(), orjson.dumps(e), i % 2, None, table, now=NOW.timestamp())
    proc.process(b"bad", b"[]", 0, None, table, now=NOW.timestamp())
    proc, table = tables["calls"]
    for i, k in enumerate(KEYS[20:]):
        at = NOW - timedelta(minutes=i * 20)
        e = answered(k, at, 5 + i * 2) if i % 4 else abandoned(k, at, 3)
        proc.process(k.encode(), orjson.dumps(e), 0, None, table, now=NOW.timestamp())
    for i, k in enumerate(KEYS[:3]):  # waiting now: 30, 90 and 150 s
        e = queued(k, NOW - timedelta(seconds=30 + 60 * i))
        proc.process(k.encode(), orjson.dumps(e), 0, None, table, now=NOW.timestamp())
    owned = set(state.parts)
    registry.register(FiguresCollector(lambda: (state.current(owned), {"c": 2, "k": 1}),
                                       DEFS, 0, lambda: NOW))
    return generate_latest(registry).decode()


def test_promtool_accepts_the_exposition(exposition, tmp_path):
    promtool = require("promtool")
    result = subprocess.run([promtool, "check", "metrics"], input=exposition.encode(),
                            capture_output=True, timeout=30)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_labels_come_from_closed_sets_and_carry_no_keys(exposition, taxonomy):
    assert not any(k in exposition for k in KEYS)
    allowed = {
        "channel": taxonomy.codes("channel"), "source_group": taxonomy.codes("source_group"),
        "team": taxonomy.codes("team"), "outcome": taxonomy.codes("contact_outcome")
        | taxonomy.codes("map_outcome") | {"answered", "abandoned"},
        "pathway": taxonomy.codes("pathway"), "queue": taxonomy.codes("call_queue"),
        "reason": set(REASONS), "topic": {"c", "k"}, "window": set(window_hours(NOW)),
        "destination": taxonomy.codes("destination"), "agency": taxonomy.codes("agency"),
        "service": taxonomy.codes("level3_service"), "grade": taxonomy.codes("grade"),
        "within_timescale": {"true", "false", "unknown"},
        "event_type": {t for f in ("contacts", "calls") for t in _types(f)},
        "service_level_variant": {"offered", "answered", "offered_less_short_abandons"},
        "period_combination": {"ratio_of_sums", "mean_of_months"},
    }
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            for name, value in sample.labels.items():
                if name == "month":
                    assert len(value) == 7 and value[4] == "-"
                elif name in allowed:
                    assert value in allowed[name], (sample.name, name, value)
                else:
                    assert name in {"le", "service_level_seconds", "short_abandon_seconds"}


def _types(family):
    from stream.contract.events import event_type_of, family_types

    return [event_type_of(m) for m in family_types(family)]


def values(exposition, name):
    return {tuple(sorted(s.labels.items())): s.value
            for f in text_string_to_metric_families(exposition) for s in f.samples
            if s.name == name}


def test_live_windows(exposition):
    # Contacts received every 3 hours back from 14:30: today (since 00:00) holds
    # 14:30, 11:30, 08:30, 05:30, 02:30 -> 5; last 24 clock hours holds 8 + the
    # one at 15:30 yesterday (hour 15 is inside 14:00-yesterday .. now) -> 8.
    got = values(exposition, "cspa_recent_contacts_received")
    assert got[(("window", "today"),)] == 5
    assert got[(("window", "this_hour"),)] == 1
    assert got[(("window", "last_24_hours"),)] == 8
    # Calls every 20 min from 14:30 back: this hour (14:00-) holds 14:30, 14:10 -> 2.
    offered = values(exposition, "cspa_recent_calls_offered")
    assert offered[(("queue", "rfs"), ("window", "this_hour"))] == 2
    within = values(exposition, "cspa_recent_calls_answered_within_target")
    # answered waits 5+2i for i%4 != 0 (i=1,2,3,5,6,7): <= 20 s for i <= 7 -> 6 calls
    assert within[(("queue", "rfs"), ("window", "today"))] == 6
    # ASA: answered waits 5+2i of the calls offered this hour (i=1 at 14:10) -> 7 s
    asa = values(exposition, "cspa_recent_calls_answer_wait_seconds_sum")
    count = values(exposition, "cspa_recent_calls_answer_wait_seconds_count")
    assert asa[(("queue", "rfs"), ("window", "this_hour"))] == 7
    assert count[(("queue", "rfs"), ("window", "this_hour"))] == 1
    # today: all 20 calls (14:30 back to 08:10), answered when i is not a multiple of 4
    today = [5 + 2 * i for i in range(20) if i % 4]
    assert asa[(("queue", "rfs"), ("window", "today"))] == sum(today)
    assert count[(("queue", "rfs"), ("window", "today"))] == len(today)


def test_calls_waiting_now(exposition):
    assert values(exposition, "cspa_calls_waiting") == {(("queue", "rfs"),): 3,
                                                       (("queue", "consultation"),): 0}
    oldest = values(exposition, "cspa_calls_oldest_wait_seconds")
    assert oldest[(("queue", "rfs"),)] == 150


def test_monthly_call_parts(exposition):
    offered = values(exposition, "cspa_calls_offered")
    assert sum(offered.values()) == 20
    abandoned = values(exposition, "cspa_calls_abandoned")
    assert sum(abandoned.values()) == 5


def test_rejections_counted_by_reason(exposition):
    got = values(exposition, "cspa_events_rejected_total")
    assert got[(("reason", "not_an_object"), ("topic", "c"))] == 1


def test_collector_drops_partitions_not_owned(ctx):
    state = CellState()
    state.part("t", 0).apply([("audits", ("2019-08", "ehh", "good"), None)], +1)
    state.part("t", 1).apply([("audits", ("2019-08", "ehh", "good"), None)], +1)
    owned = {("t", 0)}
    registry = CollectorRegistry()
    registry.register(FiguresCollector(lambda: (state.current(owned), {"t": 1}), DEFS, 0,
                                       lambda: NOW))
    text = generate_latest(registry).decode()
    assert values(text, "cspa_audits") == {
        (("grade", "good"), ("month", "2019-08"), ("team", "ehh")): 1}
    assert isinstance(state.current(set()), Aggregates)


@pytest.mark.parametrize("amounts", [
    [], [0.0], [0.001, 0.0025, 0.00251, 0.2, 0.2000001, 60.0, 61.0, 3600.0],
    [i / 997 for i in range(3000)]])
def test_observe_many_equals_observe_one_by_one(amounts: list[float]) -> None:
    from stream.worker.metrics import LATENCY_BUCKETS, observe_many

    def exposition(fill) -> dict[str, float]:
        registry = CollectorRegistry()
        histogram = Histogram("x_seconds", "x", ["topic"], buckets=LATENCY_BUCKETS,
                              registry=registry)
        fill(histogram.labels("t"))
        return {s.name + str(sorted(s.labels.items())): s.value
                for f in registry.collect() for s in f.samples}

    def one_by_one(child) -> None:
        for a in amounts:
            child.observe(a)

    got, want = exposition(lambda c: observe_many(c, amounts)), exposition(one_by_one)
    assert got.keys() == want.keys()
    for name, value in want.items():
        assert got[name] == pytest.approx(value, rel=1e-12), name


@pytest.mark.parametrize("distinct", [40, 2000])  # running counts / bound by bound
def test_histogram_buckets_count_each_value_scaled_at_or_below_the_bound(distinct: int):
    # The bucketing sorts bare floats and looks bounds up by bisection; counted here
    # one value at a time instead, including values exactly on a bound and a scale
    # (days exposed as seconds) under which a value lands on the bound only scaled.
    rng = random.Random(7)
    values = Counter({round(rng.expovariate(0.5), 4): rng.randint(1, 3)
                      for _ in range(distinct)})
    values.update({b: 2 for b in DAY_BUCKETS} | {0.0: 1, 1 / 3: 1, 0.7: 1})
    cell = Cell(sum(values.values()), 0, values)  # (the sum is not what is tested)
    for buckets, scale in ((DAY_BUCKETS, 1.0), (SECOND_BUCKETS, DAY)):
        got = _cumulative(cell, buckets, scale)
        want = [(repr(float(b)), float(sum(n for v, n in values.items() if v * scale <= b)))
                for b in buckets] + [("+Inf", float(cell.count))]
        assert got == want
    assert _cumulative(Cell(), DAY_BUCKETS) == [(repr(float(b)), 0.0) for b in DAY_BUCKETS] + [
        ("+Inf", 0.0)]


def _windows(text: str) -> set[tuple[str, str, str]]:
    return {(s.labels["figure"], s.labels["month"], s.labels["previous"])
            for family in text_string_to_metric_families(text)
            if family.name == "cspa_expected_range_window" for s in family.samples}


def _months(first: tuple[int, int], n: int) -> list[str]:
    return [f"{(first[0] * 12 + first[1] - 1 + i) // 12:04d}-"
            f"{(first[0] * 12 + first[1] - 1 + i) % 12 + 1:02d}" for i in range(n)]


def test_expected_range_windows_from_the_first_month_of_data_and_whole_when_exported():
    """The 12 months before each month with a whole recorded window, and only those."""
    state = CellState()
    contacts = _months((2025, 1), 23)  # 2025-01 .. 2026-11 (NOW's month)
    for i, month in enumerate(contacts):
        state.part("c", i % 2).apply([("contacts_received", (month, "phone", "police", "rfs"),
                                       None)], +1)
    state.part("m", 0).apply([("map_completed", ("2026-11", "level_3"), None)], +1)
    state.part("m", 0).apply([("map_completed", ("2025-12", "level_3"), None)], +1)

    def text(months: int) -> str:
        registry = CollectorRegistry()
        owned = {("c", 0), ("c", 1), ("m", 0)}
        registry.register(FiguresCollector(lambda: (state.current(owned), {}), DEFS, months,
                                           lambda: NOW))
        return generate_latest(registry).decode()

    # every month kept: 2026-01 (window 2025-01..2025-12) is the first judged contacts month;
    # MAP's data starts 2025-12, so its 2026-11 window (2025-11..) starts too early
    every = {(m, p) for f, m, p in _windows(text(0)) if f == "contacts_received"}
    judged = contacts[12:]
    assert {m for m, _ in every} == set(judged)
    assert every == {(m, p) for i, m in enumerate(contacts[12:], 12) for p in contacts[i - 12:i]}
    assert not {f for f, _, _ in _windows(text(0))} - {"contacts_received"}
    # the default 13 months exported (2025-11..2026-11): only 2026-11's window is whole
    assert _windows(text(13)) == {("contacts_received", "2026-11", p) for p in contacts[10:22]}
