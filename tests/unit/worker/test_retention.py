"""Retention's decisions without a broker: the cut-off, which cases expire, and the copy
of a changelog partition without them (its archive keeping their cells)."""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
import pytest
from prometheus_client import CollectorRegistry

from stream.contract.decoder import Decoder
from stream.state import archive
from stream.state.aggregates import Aggregates
from stream.worker.changelog import encode_key
from stream.worker.metrics import PipelineMetrics
from stream.worker.processor import CellState, FamilyProcessor
from stream.worker.retention import Plan, expired, rewrite
from stream.worker.schedule import cutoff
from tests.conftest import LONDON
from tests.factories import decided, key, received

TOPIC = "t.contacts"
CUT = datetime(2019, 9, 1, tzinfo=LONDON).timestamp()
NOW = datetime(2026, 12, 3, 10, tzinfo=LONDON).timestamp()


def test_a_duration_is_a_cut_off_at_local_midnight():
    assert cutoff("6y", NOW, "Europe/London") == datetime(2020, 12, 1, tzinfo=LONDON).timestamp()
    assert cutoff("87m", NOW, "Europe/London") == CUT
    assert cutoff("400d", NOW, "Europe/London") == datetime(
        2025, 10, 29, tzinfo=LONDON).timestamp()
    assert cutoff("2w", NOW, "Europe/London") == datetime(2026, 11, 19, tzinfo=LONDON).timestamp()
    for bad in ("6", "y", "-1y", "6 years", ""):
        with pytest.raises(ValueError, match="--older-than"):
            cutoff(bad, NOW, "Europe/London")


def test_a_case_expires_only_when_every_event_is_before_the_cut_off():
    old = CUT - 1
    assert expired({"k": "contact", "p": 0, "rcv": [old - 9, "e1"], "dec": [old, "e2"]}, CUT)
    assert not expired({"k": "contact", "p": 0, "rcv": [old, "e1"], "dec": [CUT, "e2"]}, CUT)
    assert not expired({"k": "contact", "p": 0}, CUT)  # no event: nothing to judge


def _fold(taxonomy, ctx, events):
    """A records table (str key -> bytes) and its cells, folded by the worker's own code."""
    state, table = CellState(), {}
    proc = FamilyProcessor(TOPIC, Decoder("contacts", taxonomy), ctx, state,
                           PipelineMetrics(CollectorRegistry()))
    for event in events:
        proc.process(event["contact_key"].encode(), orjson.dumps(event), 0, None, table, now=NOW)
    return table, state.part(TOPIC, 0)


def _cells(agg: Aggregates):
    return {k: (c.count, round(c.total, 4), dict(c.values)) for k, c in agg.cells.items()}


def test_the_copy_leaves_expired_cases_out_and_their_cells_in_the_archive(taxonomy, ctx):
    t0 = datetime(2019, 8, 30, 10, tzinfo=LONDON)
    gone, kept, across = key("gone"), key("kept"), key("across")
    events = [received(gone, t0), decided(gone, t0 + timedelta(hours=3), "level_4"),
              received(kept, t0 + timedelta(days=5)),
              received(across, t0), decided(across, t0 + timedelta(days=4), "level_3")]
    table, cells = _fold(taxonomy, ctx, events)
    latest = {encode_key(k): (i, v) for i, (k, v) in enumerate(table.items())}
    latest[encode_key("!offset:0")] = (99, b"120")
    step = rewrite("cl", 0, 0, 100, latest, CUT, ctx)
    assert step.erased == 1 and step.end == 100
    assert sorted(orjson.loads(k) for k in step.kept) == sorted(
        ["!offset:0", f"contact:{kept}", f"contact:{across}"])
    assert gone.encode() not in b"".join([*step.kept, *step.kept.values(), step.archive])
    # the partition's figures: records left plus archive, exactly the cells before
    state = CellState()
    items = [(orjson.loads(k), v) for k, v in step.kept.items()
             if not orjson.loads(k).startswith("!offset")]
    items.append((archive.archive_key(0), step.archive))
    state.rebuild(TOPIC, items, {0}, ctx)
    assert _cells(state.part(TOPIC, 0)) == _cells(cells)


def test_a_run_cut_short_before_its_deletion_is_finished_not_archived_twice(taxonomy, ctx):
    t0 = datetime(2019, 8, 1, 10, tzinfo=LONDON)
    gone = key("gone")
    table, cells = _fold(taxonomy, ctx, [received(gone, t0)])
    first = rewrite("cl", 0, 0, 10, {encode_key(k): (3, v) for k, v in table.items()}, CUT, ctx)
    assert first.erased == 1 and first.archive is not None
    # the copy (the archive, through=10) landed at offset 10; the deletion did not happen
    latest = {encode_key(k): (3, v) for k, v in table.items()}
    latest[encode_key(archive.archive_key(0))] = (10, first.archive)
    again = rewrite("cl", 0, 0, 11, latest, CUT, ctx)
    assert (again.erased, again.end, again.archive, again.kept) == (0, 10, None, {})
    assert again.deletion.offsets == 10


def test_the_plan_prints_counts_never_keys():
    plan = Plan(CUT)
    assert plan.lines() == ["nothing to delete"]


def test_kept_cells_follow_an_archive_the_changelog_changes(taxonomy, ctx):
    t0 = datetime(2019, 8, 1, 10, tzinfo=LONDON)
    table, cells = _fold(taxonomy, ctx, [received(key("a"), t0), received(key("b"), t0)])
    one = Aggregates()
    one.apply([("contacts_received", ("2019-08", "x"), None)] * 2, +1)
    two = Aggregates()
    two.apply([("contacts_received", ("2019-08", "x"), None)] * 5, +1)
    state = CellState()
    state.rebuild(TOPIC, list(table.items()), {0}, ctx)
    before = _cells(state.part(TOPIC, 0))
    name = archive.archive_key(0)
    state.restored(TOPIC, 0, name, None, archive.encode(one, 4), ctx)
    assert _cells(state.part(TOPIC, 0))[("contacts_received", ("2019-08", "x"))][0] == 2
    state.restored(TOPIC, 0, name, archive.encode(one, 4), archive.encode(two, 9), ctx)
    assert _cells(state.part(TOPIC, 0))[("contacts_received", ("2019-08", "x"))][0] == 5
    state.restored(TOPIC, 0, name, archive.encode(two, 9), None, ctx)
    assert _cells(state.part(TOPIC, 0)) == before == _cells(cells)
