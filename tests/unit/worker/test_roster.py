"""The advisor roster (stream/worker/roster.py): the audits table over every partition.

Events are folded by the worker's own processor into a records table, each in the
partition the contract's partitioner gives its key; the table's writes, in order, are
the changelog the roster reads. Two workers are partitions 0-2 and 3-5. The expected
counts are worked out by hand from the events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from stream.contract.decoder import Decoder
from stream.contract.partitioner import partition_of
from stream.state import progress
from stream.state.quality import unaudited
from stream.worker.metrics import PipelineMetrics
from stream.worker.processor import CellState, FamilyProcessor
from stream.worker.roster import Roster
from tests import factories as f
from tests.conftest import LONDON

PARTITIONS = 6
TEAMS = ("rfs", "ehh", "map")
KEYS = ("audit_key", "review_key", "sample_key", "advisor_key")


class Changelog(dict[str, bytes]):
    """A records table that keeps its writes in order, with their partition."""

    def __init__(self) -> None:
        super().__init__()
        self.partition = 0
        self.writes: list[tuple[int, str, bytes]] = []

    def __setitem__(self, key: str, value: bytes) -> None:
        super().__setitem__(key, value)
        self.writes.append((self.partition, key, value))


def folded(events: list[dict[str, Any]], taxonomy, ctx) -> Changelog:
    table = Changelog()
    processor = FamilyProcessor("cspa.audits.v1", Decoder("audits", taxonomy), ctx,
                                CellState(), PipelineMetrics(CollectorRegistry()))
    for event in events:
        key = next(event[k] for k in KEYS if k in event).encode()
        table.partition = partition_of(key, PARTITIONS)
        processor.process(key, orjson.dumps(event), table.partition, None, table, now=2e9)
    return table


def at(day: int, hour: int = 10) -> datetime:
    return datetime(2019, 9, day, hour, tzinfo=LONDON)


def half(key: str) -> int:
    """Which of the two workers holds ``key``'s partition."""
    return partition_of(key.encode(), PARTITIONS) // 3


def keys_on(side: int, prefix: str, n: int) -> list[str]:
    """``n`` test keys whose partitions are held by worker ``side``."""
    found = (f.key(f"{prefix}{i}") for i in range(1000))
    return [k for k in found if half(k) == side][:n]


def roster_of(writes: list[tuple[int, str, bytes]], ctx, sides: set[int] = {0, 1},
              ) -> Roster:
    roster = Roster(ctx)
    for partition, key, value in writes:
        if partition // 3 in sides:
            roster.apply(key, value)
    roster.ready = True
    return roster


@pytest.fixture
def events() -> list[dict[str, Any]]:
    """rfs: two advisors on worker 0, each audited by an audit held on worker 1, and one
    advisor never audited; ehh: one advisor who left before September."""
    a1, a2, a3, b1 = keys_on(0, "advisor", 4)
    x1, x2 = keys_on(1, "audit", 2)
    return [f.advisor(a1, at(1)), f.advisor(a2, at(1)), f.advisor(a3, at(1)),
            f.advisor(b1, at(1), team="ehh"),
            f.advisor(b1, at(2), team="ehh", joined=False),
            f.audit(x1, at(3), team="rfs", advisor=a1),
            f.audit(x2, at(4), team="rfs", advisor=a2)]


def test_every_partition_gives_the_exact_count_where_halves_over_count(
        events, taxonomy, ctx) -> None:
    writes = folded(events, taxonomy, ctx).writes
    exact = {"rfs": 1, "ehh": 0, "map": 0}  # a3 only: a1 and a2 are audited, b1 left
    whole = roster_of(writes, ctx).current()
    assert whole is not None and unaudited(whole, "2019-09", TEAMS) == exact
    # the premise: each worker's own partitions alone, summed, count a1 and a2 as well
    halves = [roster_of(writes, ctx, {side}).cells for side in (0, 1)]
    assert sum(unaudited(h, "2019-09", TEAMS)["rfs"] for h in halves) == 3


def test_a_regrade_without_the_advisor_and_a_tombstone_are_followed(
        events, taxonomy, ctx) -> None:
    x1 = events[5]["audit_key"]
    table = folded([*events, f.audit(x1, at(5), team="rfs")], taxonomy, ctx)
    roster = roster_of(table.writes, ctx)
    assert unaudited(roster.cells, "2019-09", TEAMS)["rfs"] == 2  # a1's audit withdrawn
    a3 = next(k for k in table if table[k] and events[2]["advisor_key"] in k)
    roster.apply(a3, None)  # a3's record erased (a tombstone)
    assert unaudited(roster.cells, "2019-09", TEAMS)["rfs"] == 1


def test_progress_markers_are_not_records_and_nothing_shows_until_read(
        events, taxonomy, ctx) -> None:
    roster = Roster(ctx)
    for _, key, value in folded(events, taxonomy, ctx).writes:
        roster.apply(key, value)
    roster.apply(progress.marker_key(3), progress.encode(42))
    assert roster.current() is None  # the changelog not yet read to its end
    roster.ready = True
    cells = roster.current()
    assert cells is not None and unaudited(cells, "2019-09", TEAMS)["rfs"] == 1
    roster.reset()
    assert roster.current() is None and not list(roster.cells.figure("advisors_joined"))


def test_the_worker_gauge_kept_between_scrapes_follows_each_record_applied(
        events, taxonomy, ctx) -> None:
    # Step 52: the gauge keeps its count while the roster's change count holds, so every
    # record applied (a tombstone too) and a reset must move it.
    from stream.worker.live_gauges import AdvisorAuditsCollector

    x1 = events[5]["audit_key"]
    table = folded([*events, f.audit(x1, at(5), team="rfs")], taxonomy, ctx)
    roster = roster_of(table.writes, ctx)
    registry = CollectorRegistry()
    registry.register(AdvisorAuditsCollector(
        roster.current, ctx.calendar, TEAMS, lambda: datetime(2019, 9, 24, 12, tzinfo=LONDON),
        lambda: roster.changes))

    def rfs() -> str | None:
        return next((line for line in generate_latest(registry).decode().splitlines()
                     if line.startswith('cspa_advisors_unaudited{team="rfs"}')), None)

    assert rfs() == 'cspa_advisors_unaudited{team="rfs"} 2.0'
    a3 = next(k for k in table if table[k] and events[2]["advisor_key"] in k)
    roster.apply(a3, None)
    assert rfs() == 'cspa_advisors_unaudited{team="rfs"} 1.0'
    roster.reset()
    assert rfs() is None
    roster.ready = True  # read again, and the changelog found empty
    assert rfs() == 'cspa_advisors_unaudited{team="rfs"} 0.0'
