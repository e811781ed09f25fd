"""Gauges evaluated on the worker's clock at every scrape: open work, calls waiting, audits.

Open work (``stream.state.timeliness``) and calls waiting now
(``stream.state.calls_waiting``) are judged against the clock, not summed from facts, so
their gauges are computed when Prometheus scrapes, from the partitions the worker owns at
that moment (a partition that moves away vanishes from this worker's scrape at once, so
``sum()`` across workers stays exact). The definitions live in those modules; this one
only exposes them. Labels are rules, teams, states, versions, months and queues.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

from stream.state.aggregates import Aggregates
from stream.state.calls import answer_waits
from stream.state.calls_waiting import ASA_WINDOWS, CallsWaiting
from stream.state.partner_responses import PartnerRequests
from stream.state.quality import unaudited, working_days_left
from stream.state.timeliness import OpenWork, Part
from stream.state.working_days import WorkingCalendar


class ScrapeCollector(Collector):
    """Gauges of the owned partitions, evaluated on the worker's clock at every scrape.

    Subclasses yield their families from ``_families(now, owned)``; with ``now`` None
    (registration) only the names are wanted and nothing is evaluated.
    """

    def __init__(self, now: Callable[[], float], owned: Callable[[], Collection[Part]]) -> None:
        self._now, self._owned = now, owned

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return self._families()  # names only: registering evaluates nothing

    def collect(self) -> Iterator[GaugeMetricFamily]:
        return self._families(self._now(), set(self._owned()))

    def _families(self, now: float | None = None,
                  owned: Collection[Part] = ()) -> Iterator[GaugeMetricFamily]:
        raise NotImplementedError


class TimelinessCollector(ScrapeCollector):
    """Timeliness gauges of the owned partitions, evaluated at scrape time."""

    def __init__(self, work: OpenWork, now: Callable[[], float],
                 owned: Callable[[], Collection[Part]]) -> None:
        super().__init__(now, owned)
        self._work = work

    def _families(self, now: float | None = None,
                  owned: Collection[Part] = ()) -> Iterator[GaugeMetricFamily]:
        work = self._work
        items = GaugeMetricFamily("cspa_open_items", "Open items by timescale rule and state.",
                                  labels=["rule", "team", "state"])
        oldest = GaugeMetricFamily("cspa_open_item_oldest_workdays",
                                   "Working days since the oldest open item started (0: none;"
                                   " max() across workers).", labels=["rule"])
        breaches = GaugeMetricFamily("cspa_breaches", "Items closed late or open past their "
                                     "deadline, by month of the deadline (sum() across workers).",
                                     labels=["rule", "rule_version", "month"])
        evaluated = GaugeMetricFamily("cspa_timeliness_evaluated_timestamp_seconds",
                                      "When the timeliness states were evaluated.")
        stale = GaugeMetricFamily("cspa_open_items_stale", "Open items past their deadline by "
                                  "more than the horizon (CSPA_OPEN_WORK_HORIZON working days): "
                                  "not in cspa_open_items (sum() across workers).",
                                  labels=["rule"])
        stale_oldest = GaugeMetricFamily("cspa_open_item_stale_oldest_workdays",
                                         "Working days since the oldest stale open item "
                                         "started (0: none; max() across workers).",
                                         labels=["rule"])
        if now is not None:
            for (rule, team, state), n in sorted(work.states(now, owned).items()):
                items.add_metric([rule, team, state], n)
            ages = work.oldest(now, owned)
            for rule in sorted(work.rules.keys() | ages.keys()):
                oldest.add_metric([rule], ages.get(rule, 0.0))
            for rule, n in sorted(work.stale_counts(now, owned).items()):
                stale.add_metric([rule], n)
            stale_ages = work.oldest(now, owned, stale=True)
            for rule in sorted(work.rules.keys() | stale_ages.keys()):
                stale_oldest.add_metric([rule], stale_ages.get(rule, 0.0))
            for (rule, version, month), n in sorted(work.breaches(now, owned).items()):
                breaches.add_metric([rule, str(version), month], n)
            evaluated.add_metric([], now)
        yield from (items, oldest, breaches, evaluated, stale, stale_oldest)


class CallsWaitingCollector(ScrapeCollector):
    """Calls-waiting gauges of the owned partitions, evaluated at every scrape."""

    def __init__(self, queue: CallsWaiting, now: Callable[[], float],
                 owned: Callable[[], Collection[Part]]) -> None:
        super().__init__(now, owned)
        self._queue = queue

    def _families(self, now: float | None = None,
                  owned: Collection[Part] = ()) -> Iterator[GaugeMetricFamily]:
        waiting = GaugeMetricFamily(
            "cspa_calls_waiting", "Calls queued now and not yet answered or abandoned "
            "(sum() across workers).", labels=["queue"])
        oldest = GaugeMetricFamily(
            "cspa_calls_oldest_wait_seconds", "How long the longest-waiting call has waited "
            "so far (0: none waiting; max() across workers).", labels=["queue"])
        expired = GaugeMetricFamily(
            "cspa_calls_waiting_expired", "Calls queued longer than the waiting limit whose "
            "answer or abandon never arrived (sum() across workers).", labels=["queue"])
        if now is not None:
            for queue, state in sorted(self._queue.evaluate(now, owned).items()):
                waiting.add_metric([queue], state.waiting)
                oldest.add_metric([queue], state.oldest_seconds)
                expired.add_metric([queue], state.expired)
        yield from (waiting, oldest, expired)


class PartnerRequestsCollector(ScrapeCollector):
    """Partner agencies' open requests of the owned partitions, evaluated at every scrape
    (``stream.state.partner_responses``)."""

    def __init__(self, requests: PartnerRequests, now: Callable[[], float],
                 owned: Callable[[], Collection[Part]]) -> None:
        super().__init__(now, owned)
        self._requests = requests

    def _families(self, now: float | None = None,
                  owned: Collection[Part] = ()) -> Iterator[GaugeMetricFamily]:
        opened = GaugeMetricFamily(
            "cspa_partner_requests_open", "MAP enquiries' requests to the partner agency "
            "not yet answered, by open-work state of rule partner_response (stale ones left "
            "out; sum() across workers).", labels=["agency", "state"])
        oldest = GaugeMetricFamily(
            "cspa_partner_request_oldest_working_hours", "Office hours on working days since "
            "the agency's oldest unanswered request (0: none; max() across workers).",
            labels=["agency"])
        if now is not None:
            for agency, state in sorted(self._requests.evaluate(now, owned).items()):
                for name, n in state.states.items():
                    opened.add_metric([agency, name], n)
                oldest.add_metric([agency], state.oldest_working_hours)
        yield from (opened, oldest)


class AdvisorAuditsCollector(Collector):
    """The monthly-audit standard now: advisors in post without an audit this month, and
    the working days left in it (``stream.state.quality``), on the worker's clock."""

    def __init__(self, current: Callable[[], Aggregates | None],
                 calendar: WorkingCalendar, teams: Collection[str],
                 now: Callable[[], datetime],
                 changes: Callable[[], int] | None = None) -> None:
        self._current, self._calendar, self._teams, self._now = current, calendar, teams, now
        #: how many changes the cells have seen (``Roster.changes``): the count is worked
        #: out again only when it or the month moves. Walking every advisor's joins and
        #: leaves held the loop 70 ms at a scrape on a slow machine (BENCHMARKS.md, step
        #: 52), and a council grades a few hundred audits a month.
        self._changes = changes
        self._kept: tuple[tuple[int, str], Mapping[str, int]] | None = None

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(self._families())  # names only: registering evaluates nothing

    def collect(self) -> Iterator[GaugeMetricFamily]:
        return iter(self._families(evaluate=True))

    def _families(self, evaluate: bool = False) -> tuple[GaugeMetricFamily, ...]:
        behind = GaugeMetricFamily(
            "cspa_advisors_unaudited", "Advisors in post in the team now without an audit "
            "graded this month, over every partition: the same on every worker (max() "
            "across workers; absent until the worker has read the audits).",
            labels=["team"])
        left = GaugeMetricFamily(
            "cspa_month_working_days_left", "Working days left in this month, today included "
            "(min() across workers).")
        if evaluate:
            now = self._now()
            counts = self._unaudited(now.strftime("%Y-%m"))
            if counts is not None:
                for team, n in sorted(counts.items()):
                    behind.add_metric([team], n)
            left.add_metric([], working_days_left(self._calendar, now.date()))
        return behind, left


    def _unaudited(self, month: str) -> Mapping[str, int] | None:
        agg = self._current()
        if agg is None:
            return None
        if self._changes is None:
            return unaudited(agg, month, self._teams)
        key = (self._changes(), month)
        if self._kept is None or self._kept[0] != key:
            self._kept = (key, unaudited(agg, month, self._teams))
        return self._kept[1]


def asa_family(agg: Aggregates, windows: Mapping[str, set[str]]) -> SummaryMetricFamily:
    """Average speed of answer as a sum and a count of answer waits, per window and queue.

    Read from the hourly cells of answered calls (hour the call was offered), the same
    cells as ``cspa_recent_calls_answered``, so ``sum(_sum) / sum(_count)`` is exact
    across workers (``stream.state.calls.answer_waits``).
    """
    family = SummaryMetricFamily(
        "cspa_recent_calls_answer_wait_seconds",
        "Queue wait of calls answered, offered in the live window (ASA = _sum / _count).",
        labels=["window", "queue"])
    for window in ASA_WINDOWS:
        for queue, (count, seconds) in sorted(answer_waits(agg, windows[window]).items()):
            family.add_metric([window, queue], count, round(seconds, 4))
    return family
