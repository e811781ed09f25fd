"""Every Prometheus metric of the worker, declared on a registry passed in.

Two kinds:

* pipeline metrics: ordinary counters/gauges/histograms of this process
  (events consumed, rejected, latency, last event seen);
* figure metrics: produced at scrape time by ``FiguresCollector`` from the
  cells of the partitions this worker *currently owns*. A partition
  that moves to another worker vanishes from this one's scrape at once, so
  ``sum()`` over all workers is exact and nothing stale lingers.

Figure metrics are gauges (and histograms used as distributions) labelled by
calendar month and closed category sets. They are additive: ratios such as the
service level are formed in PromQL from their parts (see docs/metrics.md). What
each figure is (its facts, labels, thresholds, metric name) is declared by its
family's module (``stream.state.families``); this module only exposes them. The
gauges judged against the clock (open work, calls waiting) are in
``stream.worker.live_gauges``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from functools import partial
from itertools import accumulate
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import (
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from stream.contract.decoder import REASONS
from stream.state.aggregates import Aggregates, Cell, Merged
from stream.state.calls import OUTCOMES, PARTS, WAIT_BUCKETS, CallDefinitions, call_parts
from stream.state.facts import Count, Distribution, Recent, window_hours
from stream.state.families import FAMILIES
from stream.state.history import BANDED, WINDOW, shift, windows
from stream.worker.exposition import SeriesCache, TextCache, Unit, built
from stream.worker.live_gauges import asa_family
from stream.worker.looplag import LAG_BUCKETS, PERIOD_SECONDS

#: fine below 250 ms, where the latency target (p99 <= 200 ms) lies
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25,
                   0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

#: every family's counts, distributions and live-window counts, in exposition order
COUNTS = tuple(c for family in FAMILIES for c in family.counts)
DISTRIBUTIONS = tuple(d for family in FAMILIES for d in family.distributions)
RECENT = tuple(r for family in FAMILIES for r in family.recent)


#: cspa_resume_seeks_total{direction}: the state's marker was behind / ahead of Faust's offset
RESUME_DIRECTIONS = ("back", "forward")


class PipelineMetrics:
    """Counters and gauges of this worker process."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.consumed = Counter("cspa_events_consumed_total",
                                "Kafka messages consumed, by topic.", ["topic"], registry=registry)
        self.applied = Counter("cspa_events_applied_total",
                               "Valid events that changed a case record.",
                               ["topic", "event_type"], registry=registry)
        self.duplicates = Counter("cspa_events_duplicate_total",
                                  "Valid events already applied (re-deliveries, replays).",
                                  ["topic"], registry=registry)
        self.rejected = Counter("cspa_events_rejected_total",
                                "Messages sent to the dead-letter topic, by reason.",
                                ["topic", "reason"], registry=registry)
        self.last_event_time = Gauge("cspa_last_event_timestamp_seconds",
                                     "Greatest event time seen, by topic (POSIX seconds).",
                                     ["topic"], registry=registry)
        self.last_processed = Gauge("cspa_last_processed_timestamp_seconds",
                                    "Wall-clock time the last message was processed.",
                                    ["topic"], registry=registry)
        self.first_consumed = Gauge(
            "cspa_first_consumed_timestamp_seconds",
            "Wall-clock time this process handed its first message of the topic to the "
            "fold (POSIX seconds; absent until then).", ["topic"], registry=registry)
        self.latency = Histogram("cspa_event_latency_seconds",
                                 "Kafka record timestamp to figures updated (KIP-613).",
                                 ["topic"], buckets=LATENCY_BUCKETS, registry=registry)
        self.rebuilds = Counter("cspa_figure_rebuilds_total",
                                "Figure state rebuilt from the records table after recovery.",
                                registry=registry)
        self.checkpoints = Counter(
            "cspa_checkpoints_total",
            "State checkpoints written to the local data directory (a restart reads only "
            "the changelogs' tail after the last one).", registry=registry)
        self.checkpoint_pause = Gauge(
            "cspa_checkpoint_pause_seconds",
            "How long the last checkpoint held processing (drain and snapshot).",
            registry=registry)
        self.checkpoint_bytes = Gauge("cspa_checkpoint_bytes",
                                      "Size of the last checkpoint written.", registry=registry)
        self.resume_seeks = Counter(
            "cspa_resume_seeks_total",
            "Partitions moved to the state's progress marker after an assignment, "
            "because Faust's committed offset disagreed (back: it was ahead of the state).",
            ["topic", "direction"], registry=registry)
        self.hops_sent = Counter(
            "cspa_hops_sent_total",
            "Hops sent to the repartition topic (contacts naming a child, re-keyed by "
            "child), acknowledged by Kafka; a batch read again sends its hops again.",
            registry=registry)
        self.refetches = Counter(
            "cspa_refetches_total",
            "Fetches dropped because a seek raced them; the partition was read again "
            "from where processing stands.", ["topic"], registry=registry)
        self.stale_batches = Counter(
            "cspa_stale_batches_total",
            "Fetched batches dropped because an assignment moved their partition to the "
            "state's progress marker before they were processed.", ["topic"],
            registry=registry)
        self.loop_lag = Histogram(  # fed by stream.worker.looplag.LoopLag
            "cspa_event_loop_lag_seconds",
            f"How much later than asked the worker's event loop woke a timer that sleeps "
            f"{PERIOD_SECONDS:g} s (0 when idle; a stall of B s observes about B).",
            buckets=LAG_BUCKETS, registry=registry)

    def prime(self, topics: Iterable[str]) -> None:
        """Create every labelled child up front so rates start at 0, not absent."""
        for topic in topics:
            self.consumed.labels(topic)
            self.duplicates.labels(topic)
            self.refetches.labels(topic)
            self.stale_batches.labels(topic)
            for direction in RESUME_DIRECTIONS:
                self.resume_seeks.labels(topic, direction)
            for reason in REASONS:
                self.rejected.labels(topic, reason)


def observe_many(child: Any, amounts: Iterable[float]) -> None:
    """``Histogram.observe`` for a batch: one bisect per amount, one increment per bucket.

    ``observe`` scans the bucket bounds in a Python loop and takes a lock per call; the
    worker observes every record's latency (a replayed backlog's fall in the last
    buckets). Uses the child's internals in prometheus-client 0.26 (``_upper_bounds``,
    ``_buckets``, ``_sum``; the version is pinned): tests/unit/worker/test_metrics.py checks
    the exposition equals ``observe`` one by one.
    """
    bounds = child._upper_bounds  # ascending, the last is +Inf
    counts = [0] * len(bounds)
    total = 0.0
    for amount in amounts:
        counts[bisect_left(bounds, amount)] += 1  # the first bound >= amount: its bucket
        total += amount
    child._sum.inc(total)
    for i, n in enumerate(counts):
        if n:
            child._buckets[i].inc(n)


class RegistryCollector(Collector):
    """Everything another registry collects, so one registry can serve a subset alone."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self._registry.collect()


class LagCollector(Collector):
    """``cspa_consumer_lag{topic}``: messages behind the high-water mark, owned partitions."""

    def __init__(self, lag: Callable[[], dict[str, int]]) -> None:
        self._lag = lag

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("cspa_consumer_lag",
                                   "Messages not yet processed on the partitions owned.",
                                   labels=["topic"])
        for topic, lag in sorted(self._lag().items()):
            family.add_metric([topic], lag)
        yield family


#: a histogram series' cumulative buckets
_Buckets = list[tuple[str, float]]


#: distinct values below which a cell's buckets are counted from its running counts
#: (fewer Python calls); from this many on, bound by bound (no list as long as the cell)
_MANY = 256


def _cumulative(cell: Cell, buckets: Sequence[float],
                scale: float = 1.0) -> list[tuple[str, float]]:
    # A cell keeps its values sorted, so each bound is found by bisection. A large cell's
    # counts between two bounds are summed in C: building its running counts (and,
    # scaled, its scaled values) as lists took 65 ms of the loop for one series of a
    # national year (BENCHMARKS.md, step 51). A positive scale keeps the order, and each
    # value is compared scaled, as the metric exposes it.
    ordered, counts = cell.values.arrays()  # sorted already, counts in step
    if len(ordered) < _MANY:
        running = [0, *accumulate(counts)]
        scaled = ordered if scale == 1.0 else [v * scale for v in ordered]
        out = [(repr(float(bound)), float(running[bisect_right(scaled, bound)]))
               for bound in buckets]
    else:
        keys: Sequence[float] = ordered if scale == 1.0 else _Scaled(ordered, scale)
        out, below, at = [], 0, 0
        for bound in buckets:
            i = bisect_right(keys, bound)
            below = below + sum(counts[at:i]) if i >= at else sum(counts[:i])
            at = i
            out.append((repr(float(bound)), float(below)))
    out.append(("+Inf", float(cell.count)))
    return out


class _Scaled(Sequence[float]):
    """Sorted values read scaled, for bisection: only the values probed are scaled."""

    def __init__(self, values: Sequence[float], scale: float) -> None:
        self._values, self._scale = values, scale

    def __len__(self) -> int:
        return len(self._values)

    def __getitem__(self, i: Any) -> Any:  # (an index only: bisect never slices)
        return self._values[i] * self._scale


def _windows_family(pairs: list[tuple[str, str, str]]) -> list[Metric]:
    family = GaugeMetricFamily(
        "cspa_expected_range_window",
        "1 for each of the 12 months before a month whose count is judged against its "
        "expected range (figure: contacts_received, map_completed).",
        labels=["figure", "month", "previous"])
    for labels in pairs:
        family.add_metric(list(labels), 1)
    return [family]


class FiguresCollector(Collector):
    """Turns the owned partitions' figure cells into metric families at scrape time.

    ``collect`` builds every family; ``exposition`` serves their text, rendered again
    only for the families whose cells or clock inputs changed since the last scrape
    (``stream.worker.exposition``).
    """

    def __init__(self, current: Callable[[], tuple[Aggregates, dict[str, int]]],
                 calls: CallDefinitions, months: int,
                 now: Callable[[], datetime]) -> None:
        self._current = current
        self._calls = calls
        self._months = months
        self._now = now
        #: metric -> labels -> (the cell, its cumulative buckets) when last bucketed:
        #: ``current`` hands an unchanged cell back as the same object, so only the
        #: cells changed since are bucketed again (sorting every value multiset at
        #: every scrape was most of what was left of a scrape's time)
        self._bucketed: dict[str, dict[tuple[str, ...], tuple[Cell, _Buckets]]] = {}
        self._text = TextCache()
        self._series = SeriesCache()

    def collect(self) -> Iterator[Metric]:
        return built(self._units())

    def exposition(self) -> bytes:
        """The text ``generate_latest`` gives for ``collect``, reusing unchanged families'."""
        return self._text.render(self._units())

    def _keeper(self) -> Callable[[str], bool]:
        """Whether a month ("2019-08") is among the ``months`` exported (all with 0)."""
        if self._months <= 0:
            return lambda month: True
        now = self._now()
        index = now.year * 12 + now.month - 1
        return lambda month: index - (int(month[:4]) * 12 + int(month[5:7]) - 1) < self._months

    def _units(self) -> Iterator[Unit]:
        agg, owned = self._current()
        cells = by_figure(agg)
        keep = self._keeper()
        yield Unit("cspa_owned_partitions", tuple(sorted(owned.items())), (),
                   partial(_partitions, owned))
        yield Unit("cspa_definition_info", None, (), lambda: [self._definitions()])
        for spec in COUNTS:
            kept = [(v, c) for v, c in cells.get(spec.figure, ()) if keep(v[0])]
            yield Unit(spec.metric, None, kept, partial(_counts, spec, kept),
                       partial(self._series.family, _counts(spec, [])[0], kept,
                               partial(_count_of, spec)))
        for d in DISTRIBUTIONS:
            kept = [(v, c) for v, c in cells.get(d.figure, ()) if keep(v[0])]
            yield Unit(d.metric, None, kept, partial(self._histogram, d, kept),
                       partial(self._series.family, _empty_histogram(d), kept,
                               partial(_histogram_of, d)))
        calls = [((outcome, *v), c) for outcome in OUTCOMES
                 for v, c in cells.get("calls_" + outcome, ()) if keep(v[0])]
        yield Unit("cspa_calls", None, calls, partial(self._calls_families, calls))
        yield from self._recent_units(agg, cells, self._now())
        yield self._windows_unit(cells, keep)

    def _windows_unit(self, cells: Filed,
                      keep: Callable[[str], bool]) -> Unit:
        """``cspa_expected_range_window``: each banded month's 12 previous months, for the
        exported months whose whole window is exported too (PromQL joins the months'
        counts through it). A window starts on or after the first month of this worker's
        cells of the figure; the union over workers (``max by``) starts at the first of all."""
        pairs = []
        for figure in BANDED:
            months = {values[0] for values, _ in cells.get(figure, ())}
            pairs += [(figure, month, previous) for month, previous
                      in windows(months, min(months, default=None))
                      if keep(shift(month, -WINDOW))]
        return Unit("cspa_expected_range_window", tuple(pairs), (),
                    partial(_windows_family, pairs))

    def _bucketed_as(self, name: str, kept: Iterable[tuple[tuple[str, ...], Cell]],
                     buckets: Sequence[float], scale: float = 1.0) -> list[_Buckets]:
        """Each cell's cumulative buckets, from the last time for a cell unchanged since."""
        before = self._bucketed.get(name, {})
        now: dict[tuple[str, ...], tuple[Cell, _Buckets]] = {}
        for labels, cell in kept:
            hit = before.get(labels)
            if hit is None or hit[0] is not cell:
                hit = (cell, _cumulative(cell, buckets, scale))
            now[labels] = hit
        self._bucketed[name] = now  # only the cells still there
        return [hit[1] for hit in now.values()]

    def _histogram(self, d: Distribution,
                   kept: list[tuple[tuple[str, ...], Cell]]) -> list[Metric]:
        hist = _empty_histogram(d)
        for (values, cell), buckets in zip(
                kept, self._bucketed_as(d.metric, kept, d.buckets, d.scale), strict=True):
            hist.add_metric(list(values), buckets, cell.total * d.scale)
        return [hist]

    def _definitions(self) -> GaugeMetricFamily:
        c = self._calls
        info = GaugeMetricFamily(
            "cspa_definition_info", "Definitions in force for the call figures.",
            labels=["service_level_seconds", "service_level_variant", "short_abandon_seconds",
                    "period_combination"])
        info.add_metric([f"{c.service_level_seconds:g}", c.service_level_variant.value,
                         f"{c.short_abandon_seconds:g}", c.period_combination.value], 1)
        return info

    def _calls_families(self, calls: list[tuple[tuple[str, ...], Cell]]) -> list[Metric]:
        """The monthly call parts and the wait histogram, from the kept months' cells."""
        families = {n: GaugeMetricFamily(f"cspa_calls_{n}", text, labels=["month", "queue"])
                    for n, text in PARTS.items()}
        wait = HistogramMetricFamily("cspa_call_wait_seconds",
                                     "Queue wait of offered calls, by outcome.",
                                     labels=["month", "queue", "outcome"])
        buckets = sorted(set(WAIT_BUCKETS) | {self._calls.service_level_seconds})
        view = _view([("calls_" + outcome, tuple(v), c) for (outcome, *v), c in calls])
        for labels, parts in call_parts(view, self._calls).items():
            for n in PARTS:
                families[n].add_metric(list(labels), parts[n])
        for outcome in OUTCOMES:
            kept = [(tuple(v), c) for (o, *v), c in calls if o == outcome]
            for (labels, cell), cumulative in zip(kept, self._bucketed_as(
                    "cspa_call_wait_seconds_" + outcome, kept, buckets), strict=True):
                wait.add_metric([*labels, outcome], cumulative, cell.total)
        return [*families.values(), wait]

    def _recent_units(self, agg: Aggregates, cells: Filed,
                      now: datetime) -> Iterator[Unit]:
        """Live-window gauges: counts over this hour, the last 24 clock hours and today.

        They read only the hourly cells of the windows' hours.
        """
        windows = window_hours(now)
        hours = set().union(*windows.values())
        clock = tuple((window, tuple(sorted(h))) for window, h in windows.items())
        for recent in RECENT:
            kept = _in_hours(agg, cells, recent.figure, hours)
            yield Unit(recent.metric, clock, kept, partial(_recent, recent, kept, windows))
        calls = [(("calls_" + o + "_hourly", *v), c) for o in OUTCOMES
                 for v, c in cells.get("calls_" + o + "_hourly", ()) if v[0] in hours]
        view = _view([(figure, tuple(v), c) for (figure, *v), c in calls])
        yield Unit("cspa_recent_calls", clock, calls,
                   partial(_recent_calls, view, self._calls, windows))


def _in_hours(agg: Aggregates, cells: Filed, figure: str,
              hours: Collection[str]) -> list[tuple[tuple[str, ...], Cell]]:
    """The cells of an hourly figure labelled by its hour alone (``Recent``) in ``hours``.

    A kept merge has each figure's cells filed by their labels: the hours are looked
    up, in order. Filtering every hourly cell of a year at every scrape was a quarter of
    a scrape after live traffic with a national year, and where the loaded phase's one
    stall was caught (BENCHMARKS.md, step 62).
    """
    if isinstance(agg, Merged):
        filed = agg.by_figure.get(figure, {})
        return [((hour,), cell) for hour in sorted(hours)
                if (cell := filed.get((hour,))) is not None]
    return [(v, c) for v, c in cells.get(figure, ()) if v[0] in hours]


#: figure -> its cells' (labels, cell) pairs (``by_figure``)
Filed = Mapping[str, Collection[tuple[tuple[str, ...], Cell]]]


def by_figure(agg: Aggregates) -> Filed:
    """figure -> its (labels, cell), in the order ``Aggregates.figure`` gives them.

    One pass over the cells rather than one per figure: a year's hourly cells made
    each of those passes long. A kept merge (``Merged``) has them filed already: each
    figure's are its filed dict's items, nothing made per cell.
    """
    if isinstance(agg, Merged):
        return {figure: filed.items() for figure, filed in agg.by_figure.items() if filed}
    out: dict[str, list[tuple[tuple[str, ...], Cell]]] = {}
    for (figure, labels), cell in agg.cells.items():
        row = out.get(figure)
        if row is None:
            row = out[figure] = []
        row.append((labels, cell))
    return out


def _view(cells: Iterable[tuple[str, tuple[str, ...], Cell]]) -> Aggregates:
    """Aggregates holding only the given cells, in order (read-only: no copies made)."""
    view = Aggregates()
    view.cells = {(figure, labels): cell for figure, labels, cell in cells}
    return view


def _partitions(owned: dict[str, int]) -> list[Metric]:
    family = GaugeMetricFamily("cspa_owned_partitions",
                               "Partitions of each topic this worker owns.", labels=["topic"])
    for topic, count in sorted(owned.items()):
        family.add_metric([topic], count)
    return [family]


def _counts(spec: Count, kept: list[tuple[tuple[str, ...], Cell]]) -> list[Metric]:
    family = GaugeMetricFamily(spec.metric, spec.help, labels=list(spec.labels))
    for values, cell in kept:
        family.add_metric(list(values), cell.count)
    return [family]


def _count_of(spec: Count, labels: Any, cell: Cell) -> Metric:
    """The gauge family holding one cell's series alone."""
    return _counts(spec, [(labels, cell)])[0]


def _empty_histogram(d: Distribution) -> HistogramMetricFamily:
    return HistogramMetricFamily(d.metric, d.help, labels=list(d.labels))


def _histogram_of(d: Distribution, labels: Any, cell: Cell) -> Metric:
    """The histogram family holding one cell's series alone."""
    hist = _empty_histogram(d)
    hist.add_metric(list(labels), _cumulative(cell, d.buckets, d.scale), cell.total * d.scale)
    return hist


def _recent(recent: Recent, kept: list[tuple[tuple[str, ...], Cell]],
            windows: dict[str, set[str]]) -> list[Metric]:
    family = GaugeMetricFamily(recent.metric, recent.what + " in the live window.",
                               labels=["window"])
    for window, hours in windows.items():
        family.add_metric([window], sum(c.count for (h,), c in kept if h in hours))
    return [family]


def _recent_calls(view: Aggregates, defs: CallDefinitions,
                  windows: dict[str, set[str]]) -> list[Metric]:
    """The call parts per window and queue, and the average speed of answer."""
    out: list[Metric] = []
    parts = call_parts(view, defs, "_hourly")
    for part, text in PARTS.items():
        family = GaugeMetricFamily(f"cspa_recent_calls_{part}", text + " In the live window.",
                                   labels=["window", "queue"])
        for window, hours in windows.items():
            by_queue: dict[str, int] = {}
            for (hour, queue), row in parts.items():
                if hour in hours:
                    by_queue[queue] = by_queue.get(queue, 0) + row[part]
            for queue, value in sorted(by_queue.items()):
                family.add_metric([window, queue], value)
        out.append(family)
    out.append(asa_family(view, windows))
    return out
