"""What the alerts watch of the worker: working time, readiness and partitions.

The expected working times are read off the calendar by hand: 2026's late May bank
holiday is Monday 25 May (the last Monday of May; 1 May 2026 is a Friday); Christmas Day
2026 is a Friday and Boxing Day a Saturday, so its substitute bank holiday is Monday 28
December; 28 November 2026 is a Saturday. In May, Europe/London is on BST (UTC+1).
"""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stream.state.working_days import OfficeHours, WorkingCalendar
from stream.worker.watch import WatchCollector, working_time

LONDON = ZoneInfo("Europe/London")
UTC = ZoneInfo("UTC")
CALENDAR = WorkingCalendar("Europe/London")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=LONDON)


@pytest.mark.parametrize(("when", "expected"), [
    (local("2026-11-24T10:00"), True),    # Tuesday, a working day, 10:00
    (local("2026-11-24T18:00"), False),   # the same day after office hours
    (local("2026-11-24T09:00"), True),    # office start: open
    (local("2026-11-24T08:59"), False),
    (local("2026-11-24T16:59"), True),
    (local("2026-11-24T17:00"), False),   # office end: closed
    (local("2026-11-28T10:00"), False),   # Saturday
    (local("2026-12-25T10:00"), False),   # Christmas Day, a Friday
    (local("2026-12-28T10:00"), False),   # substitute for Boxing Day (a Saturday)
    (local("2026-05-25T10:00"), False),   # late May bank holiday
    (local("2026-05-26T10:00"), True),    # the Tuesday after it
    # UTC instants: 08:30 UTC is 09:30 BST (open), 16:30 UTC is 17:30 BST (closed)
    (datetime(2026, 5, 26, 8, 30, tzinfo=UTC), True),
    (datetime(2026, 5, 26, 16, 30, tzinfo=UTC), False),
])
def test_working_time(when: datetime, expected: bool) -> None:
    assert working_time(CALENDAR, when) is expected


def test_working_time_follows_the_configured_office_hours() -> None:
    late = WorkingCalendar("Europe/London", OfficeHours(time(10, 0), time(19, 0)))
    assert not working_time(late, local("2026-11-24T09:30"))
    assert working_time(late, local("2026-11-24T18:00"))


def scrape(collector: WatchCollector) -> dict[str, list[tuple[dict[str, str], float]]]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {f.name: [(s.labels, s.value) for s in f.samples]
            for f in text_string_to_metric_families(text)}


def test_the_collector_exports_readiness_partitions_and_working_time() -> None:
    owned = {("cspa.calls.v1", 2), ("cspa.contacts.v1", 0), ("some-changelog", 1)}
    ready = [False]
    families = scrape(WatchCollector(lambda: ready[0], lambda: owned,
                                     {"cspa.contacts.v1": 2, "cspa.calls.v1": 3}, CALENDAR,
                                     lambda: local("2026-12-25T10:00")))
    assert families["cspa_worker_ready"] == [({}, 0.0)]
    assert families["cspa_working_time"] == [({}, 0.0)]
    assert families["cspa_partition_owned"] == [  # not the changelog: not a source topic
        ({"topic": "cspa.calls.v1", "partition": "2"}, 1.0),
        ({"topic": "cspa.contacts.v1", "partition": "0"}, 1.0)]
    assert sorted((s["topic"], s["partition"]) for s, _ in
                  families["cspa_partition_expected"]) == [
        ("cspa.calls.v1", "0"), ("cspa.calls.v1", "1"), ("cspa.calls.v1", "2"),
        ("cspa.contacts.v1", "0"), ("cspa.contacts.v1", "1")]
    ready[0] = True
    working = scrape(WatchCollector(lambda: ready[0], set, {}, CALENDAR,
                                    lambda: local("2026-11-24T10:00")))
    assert working["cspa_worker_ready"] == [({}, 1.0)]
    assert working["cspa_working_time"] == [({}, 1.0)]
    assert working["cspa_partition_owned"] == [] and working["cspa_partition_expected"] == []
