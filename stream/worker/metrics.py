"""Every Prometheus metric of the worker, declared on a registry passed in.

Two kinds:

* pipeline metrics: ordinary counters/gauges/histograms of this process
  (events consumed, rejected, latency, last event seen);
* figure metrics: produced at scrape time by ``FiguresCollector`` from the
  figure cells of the partitions this worker *currently owns*. A partition
  that moves to another worker vanishes from this one's scrape at once, so
  ``sum()`` over all workers is exact and nothing stale lingers.

Figure metrics are gauges (and histograms used as distributions) labelled by
calendar month and closed category sets. They are additive: ratios such as the
service level are formed in PromQL from their parts (see docs/metrics.md).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import (
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from stream.contract.decoder import REASONS
from stream.settings import Settings
from stream.state.aggregates import Aggregates, Cell
from stream.state.queue_now import asa_family
from stream.worker.looplag import LAG_BUCKETS, PERIOD_SECONDS

DAY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 45.0)
AGENCY_BUCKETS = tuple(float(n) for n in range(0, 13))
WAIT_BUCKETS = (5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
HANDLE_BUCKETS = (60.0, 180.0, 300.0, 600.0, 900.0, 1800.0, 3600.0)
#: fine below 250 ms, where the latency target (p99 <= 200 ms) lies
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25,
                   0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

#: figure -> (metric name, label names, help)
COUNT_GAUGES: Mapping[str, tuple[str, tuple[str, ...], str]] = {
    "contacts_received": ("cspa_contacts_received",
                          ("month", "channel", "source_group", "team"),
                          "Contacts received in the calendar month (event time)."),
    "contacts_decided": ("cspa_contacts_decided", ("month", "outcome"),
                         "Contacts decided in the month, by RFS outcome category."),
    "emails_resolved": ("cspa_emails_resolved", ("month",),
                        "Email enquiries resolved by the RFS team in the month."),
    "progressions": ("cspa_progressions", ("month", "destination", "within_timescale"),
                     "Progressions in the month, by destination and whether within timescale."),
    "map_completed": ("cspa_map_enquiries_completed", ("month", "outcome"),
                      "MAP enquiries completed in the month, by outcome level."),
    "map_by_agency": ("cspa_map_enquiries_by_agency", ("month", "agency"),
                      "MAP enquiries completed in the month that consulted the agency."),
    "level3_outcomes": ("cspa_level3_outcomes", ("month", "service"),
                        "MAP enquiries completed at Level 3, by Level 3 service."),
    "audits": ("cspa_audits", ("month", "team", "grade"),
               "Quality-assurance audits graded in the month."),
}

DAY = 86_400.0
SECOND_BUCKETS = tuple(b * DAY for b in DAY_BUCKETS)


def _durations(figure: str, metric: str, labels: tuple[str, ...],
               what: str) -> dict[str, tuple[str, tuple[str, ...], Sequence[float], float, str]]:
    # Working days have no conversion to seconds (the clock stops on weekends),
    # so their unit is "workdays"; calendar durations use the base unit, seconds.
    return {
        f"{figure}_working_days": (f"{metric}_workdays", labels, DAY_BUCKETS, 1.0,
                                   f"{what}, in working days of England and Wales."),
        f"{figure}_calendar_days": (f"{metric}_seconds", labels, SECOND_BUCKETS, DAY,
                                    f"{what}, in elapsed (calendar) seconds."),
    }


#: figure -> (metric name, label names, buckets, scale to the metric's unit, help)
HISTOGRAMS: Mapping[str, tuple[str, tuple[str, ...], Sequence[float], float, str]] = {
    **_durations("contact_completion", "cspa_contact_completion",
                 ("month", "source_group", "pathway"),
                 "Contact received to completed, by completion month"),
    **_durations("early_help_allocation", "cspa_early_help_allocation", ("month",),
                 "Progression to early help to allocation by the EHH"),
    **_durations("progression", "cspa_progression", ("month", "destination"),
                 "Contact received to progression"),
    **_durations("map_enquiry", "cspa_map_enquiry", ("month",),
                 "MAP enquiry opened to completed, by completion month"),
    "map_agencies_consulted": (
        "cspa_map_enquiry_agencies_consulted", ("month",), AGENCY_BUCKETS, 1.0,
        "Agencies consulted per completed MAP enquiry."),
    "call_handle_seconds": (
        "cspa_call_handle_seconds", ("month", "queue"), HANDLE_BUCKETS, 1.0,
        "Handling time of answered calls, by month the call ended."),
}


@dataclass(frozen=True)
class CallDefinitions:
    """The call definitions in force (settings), exported beside the figures."""

    service_level_seconds: float
    variant: str
    short_abandon_seconds: float
    period_combination: str

    @classmethod
    def of(cls, settings: Settings) -> CallDefinitions:
        """The definitions the settings give (read-time: not in the state's fingerprint)."""
        return cls(settings.service_level_seconds, settings.service_level_variant.value,
                   settings.short_abandon_seconds, settings.period_combination.value)


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


#: a histogram's series: (metric name, label values); its cumulative buckets
_SeriesKey = tuple[str, tuple[str, ...]]
_Buckets = list[tuple[str, float]]


def _cumulative(cell: Cell, buckets: Sequence[float],
                scale: float = 1.0) -> list[tuple[str, float]]:
    # Sorting the bare floats and summing with accumulate stay in C: a national
    # year's cells hold millions of distinct values. A positive scale keeps the
    # order, and each value is compared scaled, as the metric exposes it.
    ordered = sorted(cell.values)
    scaled = ordered if scale == 1.0 else [v * scale for v in ordered]
    running = [0, *accumulate(map(cell.values.__getitem__, ordered))]
    out = [(repr(float(bound)), float(running[bisect_right(scaled, bound)]))
           for bound in buckets]
    out.append(("+Inf", float(cell.count)))
    return out


class FiguresCollector(Collector):
    """Turns the owned partitions' figure cells into metric families at scrape time."""

    def __init__(self, current: Callable[[], tuple[Aggregates, dict[str, int]]],
                 calls: CallDefinitions, months: int,
                 now: Callable[[], datetime]) -> None:
        self._current = current
        self._calls = calls
        self._months = months
        self._now = now
        #: (metric, labels) -> (the cell, its cumulative buckets) of the last scrape:
        #: ``current`` hands an unchanged cell back as the same object, so only the
        #: cells changed since are bucketed again (sorting every value multiset at
        #: every scrape was most of what was left of a scrape's time)
        self._bucketed: dict[_SeriesKey, tuple[Cell, _Buckets]] = {}
        self._bucketing: dict[_SeriesKey, tuple[Cell, _Buckets]] = {}

    def _cumulative(self, name: str, labels: tuple[str, ...], cell: Cell,
                    buckets: Sequence[float], scale: float = 1.0) -> _Buckets:
        key = (name, labels)
        hit = self._bucketed.get(key)
        if hit is None or hit[0] is not cell:
            hit = (cell, _cumulative(cell, buckets, scale))
        self._bucketing[key] = hit
        return hit[1]

    def _keep(self, month: str) -> bool:
        if self._months <= 0:
            return True
        now = self._now()
        index = now.year * 12 + now.month - 1
        year, mon = month.split("-")
        return index - (int(year) * 12 + int(mon) - 1) < self._months

    def collect(self) -> Iterator[GaugeMetricFamily | HistogramMetricFamily |
                                  SummaryMetricFamily]:
        self._bucketing = {}
        agg, owned = self._current()
        partitions = GaugeMetricFamily("cspa_owned_partitions",
                                       "Partitions of each topic this worker owns.",
                                       labels=["topic"])
        for topic, count in sorted(owned.items()):
            partitions.add_metric([topic], count)
        yield partitions
        yield self._definitions()
        for figure, (name, labels, text) in COUNT_GAUGES.items():
            family = GaugeMetricFamily(name, text, labels=list(labels))
            for values, cell in agg.figure(figure):
                if self._keep(values[0]):
                    family.add_metric(list(values), cell.count)
            yield family
        for figure, (name, labels, buckets, scale, text) in HISTOGRAMS.items():
            hist = HistogramMetricFamily(name, text, labels=list(labels))
            for values, cell in agg.figure(figure):
                if self._keep(values[0]):
                    hist.add_metric(list(values),
                                    self._cumulative(name, values, cell, buckets, scale),
                                    cell.total * scale)
            yield hist
        yield from self._calls_families(agg)
        yield from recent_families(agg, self._calls, self._now())
        self._bucketed = self._bucketing  # only the cells still there

    def _definitions(self) -> GaugeMetricFamily:
        c = self._calls
        info = GaugeMetricFamily(
            "cspa_definition_info", "Definitions in force for the call figures.",
            labels=["service_level_seconds", "service_level_variant", "short_abandon_seconds",
                    "period_combination"])
        info.add_metric([f"{c.service_level_seconds:g}", c.variant,
                         f"{c.short_abandon_seconds:g}", c.period_combination], 1)
        return info

    def _calls_families(self, agg: Aggregates) -> Iterator[GaugeMetricFamily |
                                                            HistogramMetricFamily]:
        names = ("offered", "answered", "answered_within_target", "abandoned",
                 "abandoned_short", "service_level_denominator")
        families = {n: GaugeMetricFamily(f"cspa_calls_{n}", _CALL_HELP[n],
                                         labels=["month", "queue"]) for n in names}
        wait = HistogramMetricFamily("cspa_call_wait_seconds",
                                     "Queue wait of offered calls, by outcome.",
                                     labels=["month", "queue", "outcome"])
        buckets = sorted(set(WAIT_BUCKETS) | {self._calls.service_level_seconds})
        for labels, parts in call_parts(agg, self._calls).items():
            if not self._keep(labels[0]):
                continue
            for n in names:
                families[n].add_metric(list(labels), parts[n])
        for outcome in ("answered", "abandoned"):
            for labels, cell in agg.figure("calls_" + outcome):
                if self._keep(labels[0]):
                    wait.add_metric([*labels, outcome], self._cumulative(
                        "cspa_call_wait_seconds_" + outcome, labels, cell, buckets), cell.total)
        yield from families.values()
        yield wait


WINDOWS = ("this_hour", "last_24_hours", "today")

#: hourly figure -> (metric name, help)
RECENT_COUNTS: Mapping[str, tuple[str, str]] = {
    "contacts_received_hourly": ("cspa_recent_contacts_received", "Contacts received"),
    "contacts_decided_hourly": ("cspa_recent_contacts_decided", "Contacts decided"),
    "emails_resolved_hourly": ("cspa_recent_emails_resolved", "Emails resolved"),
    "map_completed_hourly": ("cspa_recent_map_enquiries_completed", "MAP enquiries completed"),
}


def window_hours(now: datetime) -> dict[str, set[str]]:
    """The hour keys (see ``FactContext.hour``) in each live window at ``now``.

    ``today`` starts at local midnight (always a whole hour in Europe/London).
    """
    current = int(now.timestamp() // 3600)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    first_today = int(midnight.timestamp() // 3600)
    return {"this_hour": {str(current)},
            "last_24_hours": {str(h) for h in range(current - 23, current + 1)},
            "today": {str(h) for h in range(first_today, current + 1)}}


def recent_families(agg: Aggregates, defs: CallDefinitions,
                    now: datetime) -> Iterator[GaugeMetricFamily | SummaryMetricFamily]:
    """Live-window gauges: counts over this hour, the last 24 clock hours and today."""
    windows = window_hours(now)
    for figure, (name, text) in RECENT_COUNTS.items():
        family = GaugeMetricFamily(name, text + " in the live window.", labels=["window"])
        for window, hours in windows.items():
            family.add_metric([window], sum(c.count for (h,), c in agg.figure(figure)
                                            if h in hours))
        yield family
    parts = call_parts(agg, defs, "_hourly")
    for part in _CALL_HELP:
        family = GaugeMetricFamily(f"cspa_recent_calls_{part}",
                                   _CALL_HELP[part] + " In the live window.",
                                   labels=["window", "queue"])
        for window, hours in windows.items():
            by_queue: dict[str, int] = {}
            for (hour, queue), row in parts.items():
                if hour in hours:
                    by_queue[queue] = by_queue.get(queue, 0) + row[part]
            for queue, value in sorted(by_queue.items()):
                family.add_metric([window, queue], value)
        yield family
    yield asa_family(agg, windows)


_CALL_HELP = {
    "offered": "Calls offered (answered + abandoned), by month offered.",
    "answered": "Calls answered.",
    "answered_within_target": "Calls answered within the service-level threshold.",
    "abandoned": "Calls abandoned (all).",
    "abandoned_short": "Calls abandoned within the short-abandon threshold.",
    "service_level_denominator": "Denominator of the service level, per the variant in force.",
}


def call_parts(agg: Aggregates, defs: CallDefinitions,
               suffix: str = "") -> dict[tuple[str, ...], dict[str, int]]:
    """Additive call counts per (month, queue) under the definitions in force.

    With ``suffix="_hourly"`` the first label is the hour instead of the month.
    """
    parts: dict[tuple[str, ...], dict[str, int]] = {}
    for outcome in ("answered", "abandoned"):
        for labels, cell in agg.figure("calls_" + outcome + suffix):
            row = parts.setdefault(labels, dict.fromkeys(
                ("offered", "answered", "answered_within_target", "abandoned",
                 "abandoned_short", "service_level_denominator"), 0))
            row[outcome] += cell.count
            row["offered"] += cell.count
            if outcome == "answered":
                row["answered_within_target"] += sum(
                    n for v, n in cell.values.items() if v <= defs.service_level_seconds)
            elif defs.short_abandon_seconds > 0:
                row["abandoned_short"] += sum(
                    n for v, n in cell.values.items() if v <= defs.short_abandon_seconds)
    for row in parts.values():
        row["service_level_denominator"] = {
            "offered": row["offered"],
            "answered": row["answered"],
            "offered_less_short_abandons": row["offered"] - row["abandoned_short"],
        }[defs.variant]
    return parts
