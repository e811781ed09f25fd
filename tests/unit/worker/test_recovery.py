"""The end of a table's recovery: figures for the held partitions, frontiers at the markers."""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from stream.contract.decoder import Decoder
from stream.settings import PeriodCombination, ServiceLevelVariant
from stream.state import progress
from stream.state.calls import CallDefinitions
from stream.state.timeliness import OpenWork
from stream.worker.exposition import Page
from stream.worker.metrics import FiguresCollector, PipelineMetrics
from stream.worker.processor import CellState, FamilyProcessor
from stream.worker.recovery import TableRecovery
from tests.conftest import LONDON
from tests.factories import decided, key, received

TOPIC = "t.contacts"
NOW = datetime(2026, 11, 26, 12, tzinfo=LONDON).timestamp()
T0 = datetime(2019, 8, 2, 10, tzinfo=LONDON)


def _live(taxonomy, ctx, cases=30):
    """A records table and the cells folding its events live made (partitions 0 and 1)."""
    live = CellState()
    proc = FamilyProcessor(TOPIC, Decoder("contacts", taxonomy), ctx, live,
                           PipelineMetrics(CollectorRegistry()))
    table: dict[str, bytes] = {}
    for i in range(cases):
        k = key(f"case{i}")
        events = [received(k, T0 + timedelta(hours=5 * i))]
        if i % 3:
            events.append(decided(k, T0 + timedelta(hours=7 * i + 2), "level_2_eh"))
        for event in events:
            proc.process(k.encode(), orjson.dumps(event), i % 2, None, table, now=NOW)
    table[progress.marker_key(0)] = progress.encode(41)  # partition 1: records, no marker
    return table, live


def _recovery(table, ctx, state, active, held, done, warm=lambda: None):
    frontier = progress.Frontier()
    frontier.reset(7, 3)  # a partition assigned before this rebalance, not now
    recovery = TableRecovery(TOPIC, table, state, OpenWork(ctx.rules, ctx.calendar), ctx,
                             frontier, PipelineMetrics(CollectorRegistry()),
                             active=lambda: set(active), held=lambda: set(held), starts={},
                             done=lambda: done.append(True), warm=warm)
    return recovery, frontier


DEFS = CallDefinitions(20.0, ServiceLevelVariant.OFFERED, 5.0, PeriodCombination.RATIO_OF_SUMS)


def _figures(state: CellState, owned: set[tuple[str, int]]) -> FiguresCollector:
    """/metrics' figures of ``owned`` (every month kept), on a fixed clock."""
    return FiguresCollector(lambda: (state.current(owned), {TOPIC: len(owned)}), DEFS, 0,
                            lambda: datetime.fromtimestamp(NOW, LONDON))


@pytest.mark.asyncio
async def test_refolded_cells_equal_the_live_fold_and_each_partition_resumes_at_its_marker(
        taxonomy, ctx):
    table, live = _live(taxonomy, ctx)
    done: list[bool] = []
    state = CellState()
    recovery, frontier = _recovery(table, ctx, state, {0, 1, 2}, {0, 1, 2}, done)
    await recovery()
    assert done == [True]
    for p in (0, 1):
        assert state.parts[(TOPIC, p)].to_json() == live.parts[(TOPIC, p)].to_json()
    assert not state.parts[(TOPIC, 2)].cells
    # 0: its marker; 1: records but no marker, so the log's start; 2: nothing known.
    assert recovery.starts == {(TOPIC, 0): 41, (TOPIC, 1): 0, (TOPIC, 2): None}
    assert frontier.next == {0: 41, 1: 0}


def test_kept_cells_stay_and_partitions_no_longer_held_go(taxonomy, ctx):
    table, live = _live(taxonomy, ctx)
    state = CellState()
    state.restore({(TOPIC, 0): live.parts[(TOPIC, 0)], (TOPIC, 5): live.parts[(TOPIC, 1)]})
    kept = state.parts[(TOPIC, 0)]
    recovery, _ = _recovery(table, ctx, state, {0}, {0, 1}, [])
    counted = recovery.rebuild()
    assert set(counted) == {1}  # partition 0's cells were kept: nothing refolded
    assert state.parts[(TOPIC, 0)] is kept
    assert (TOPIC, 5) not in state.parts
    assert state.parts[(TOPIC, 1)].to_json() == live.parts[(TOPIC, 1)].to_json()
    assert recovery.starts == {(TOPIC, 0): 41}  # a standby copy does not resume


def test_a_kept_partition_follows_each_record_the_changelog_changes(taxonomy, ctx):
    table, live = _live(taxonomy, ctx)
    state = CellState()
    recovery, _ = _recovery({}, ctx, state, {0, 1}, {0, 1}, [])
    recovery.rebuild()  # empty table: both partitions held, with no cells yet
    for k, v in table.items():
        if not progress.is_marker(k):
            recovery.follow(orjson.loads(v)["p"], k, None, v)
    for p in (0, 1):
        assert state.parts[(TOPIC, p)].to_json() == live.parts[(TOPIC, p)].to_json()


@pytest.mark.asyncio
async def test_the_page_is_rendered_before_ready_and_the_first_scrape_merges_no_cell(
        taxonomy, ctx):
    # Issue 28: the first scrape after a restart merged every owned cell and formatted
    # every series on the event loop. Recovery now renders the page before it says
    # ready, so the first scrape merges nothing and serves the live fold's figures.
    table, live = _live(taxonomy, ctx)
    state, owned, steps = CellState(), {(TOPIC, 0), (TOPIC, 1)}, []
    page = Page([_figures(state, owned)])

    def warm() -> None:
        steps.append("warm")
        page.render()

    recovery, _ = _recovery(table, ctx, state, {0, 1}, {0, 1}, steps, warm)
    await recovery()
    assert steps == ["warm", True]  # rendered, then ready
    warmed = state.merged_cells
    # each served cell merged once, from however many partitions hold it
    assert warmed == len(set().union(*(live.parts[tp].cells for tp in owned))) > 0
    text = page.render()  # the first scrape
    assert state.merged_cells == warmed
    assert text == generate_latest(_registry(_figures(live, owned)))


def _registry(collector: FiguresCollector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry
