"""What the alerts watch of the worker itself: readiness, partitions, working time.

Exported at scrape time on /metrics (all four are gauges, labels from closed sets):

* ``cspa_worker_ready``: 1 while the worker serves the figures of its partitions
  (``Worker.ready``: recovered, not rebalancing), else 0;
* ``cspa_partition_owned{topic,partition}``: 1 for each source partition it owns now;
* ``cspa_partition_expected{topic,partition}``: 1 for every partition of every source
  topic of the contract (topics/topics.toml). Every worker exports the whole set, so
  Prometheus knows which partitions must be owned even while no worker owns any;
* ``cspa_working_time``: 1 in office hours on a working day now, else 0, on the calendar
  the figures are judged by (England and Wales bank holidays, CSPA_OFFICE_START/END,
  Europe/London) and the worker's clock. The alert rules read it instead of doing clock
  arithmetic in PromQL, which knows neither bank holidays nor the configured hours.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from stream.state.working_days import WorkingCalendar

#: (topic, partition)
TP = tuple[str, int]


def working_time(calendar: WorkingCalendar, now: datetime) -> bool:
    """Whether ``now`` (timezone-aware) is inside office hours of a working day.

    Office hours are [start, end) in the calendar's local wall-clock time: at 17:00 with
    the default 09:00-17:00 the office is closed.
    """
    local = now.astimezone(ZoneInfo(calendar.tz))
    hours = calendar.office_hours
    return (calendar.is_working_day(local.date())
            and hours.start <= local.time() < hours.end)


class WatchCollector(Collector):
    """The worker's readiness, partitions and working time, read at every scrape."""

    def __init__(self, ready: Callable[[], bool], owned: Callable[[], set[TP]],
                 partitions: Mapping[str, int], calendar: WorkingCalendar,
                 now: Callable[[], datetime]) -> None:
        """``partitions``: source topic name -> its partition count in the contract."""
        self._ready = ready
        self._owned = owned
        self._partitions = dict(partitions)
        self._calendar = calendar
        self._now = now

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "cspa_worker_ready", "1 while the worker serves the figures of its partitions "
            "(recovered, not rebalancing), else 0.", value=int(self._ready()))
        owned = GaugeMetricFamily("cspa_partition_owned",
                                  "1 for each source partition this worker owns now.",
                                  labels=["topic", "partition"])
        for topic, partition in sorted(self._owned()):
            if topic in self._partitions:
                owned.add_metric([topic, str(partition)], 1)
        yield owned
        expected = GaugeMetricFamily(
            "cspa_partition_expected", "1 for every partition of every source topic in "
            "the contract (topics/topics.toml): the partitions some worker must own.",
            labels=["topic", "partition"])
        for topic, count in sorted(self._partitions.items()):
            for partition in range(count):
                expected.add_metric([topic, str(partition)], 1)
        yield expected
        yield GaugeMetricFamily(
            "cspa_working_time", "1 in office hours on a working day (England and Wales "
            "bank holidays excluded) by the worker's calendar and clock, else 0.",
            value=int(working_time(self._calendar, self._now())))
