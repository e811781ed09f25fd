"""The peer's whole fold (bench/same_fold.py): the worker's own work, event by event,
whose figures are checked as the worker's are against the independent ones."""

from __future__ import annotations

from typing import Any

import pytest

from bench import dataset, expected
from bench.same_fold import WholeFold
from bench.scrape import Folder
from stream.contract.decoder import Decoder, Rejection
from stream.contract.partitioner import partition_of
from stream.contract.taxonomy import load_taxonomy
from stream.contract.topics import event_families, load_topics
from stream.settings import Settings

EVENTS = 6_000
NOW = 1_706_000_000.0  # 2024-01-23: weeks after the backlog's first events


class DictState:
    """Quix's per-key state, as the peer's fold uses it (JSON text values)."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        assert isinstance(value, str)  # what Quix's JSON serialiser takes
        self.data[key] = value


def _folded(msgs: list[dataset.Msg]) -> tuple[WholeFold, int]:
    taxonomy = load_taxonomy()
    specs = {spec.name: (Decoder(family, taxonomy), spec.partitions)
             for family, spec in event_families(load_topics()).items()}
    whole, state, duplicates = WholeFold(), DictState(), 0
    for m in msgs:
        decoder, partitions = specs[m.topic]
        event = decoder.decode(m.key, m.value, 2e9)
        assert not isinstance(event, Rejection)
        if not whole.fold(event, m.topic, partition_of(m.key, partitions), state):
            duplicates += 1
    return whole, duplicates


@pytest.fixture(scope="module")
def msgs() -> list[dataset.Msg]:
    return dataset.backlog(EVENTS, scale=5)  # a small county: weeks in 6,000 events


def test_the_whole_fold_gives_the_worker_figures_exact(msgs):
    whole, _ = _folded(msgs)
    got, want = whole.figures(), expected.compute(msgs)
    assert expected.compare(want, got, expected.WORKER_FIGURES) == []
    for figure in expected.WORKER_FIGURES:  # every figure has cells: none passes empty
        assert want.get(figure), figure


def test_its_cells_and_open_work_are_the_worker_own(msgs):
    """Beyond the figures checked: every cell, and open work as a scrape judges it, equal
    the worker's agents' (bench.scrape.Folder: the worker's batches, over plain dicts)."""
    # up to the last call queued: that call is still waiting (a calls-waiting listener's)
    cut = max(i for i, m in enumerate(msgs) if b'"call.queued"' in m.value) + 1
    whole, _ = _folded(msgs[:cut])
    worker = Folder(Settings(), NOW)
    worker.fold(msgs[:cut])
    owned = {tuple(tp) for tp in worker.owned()}
    merged = worker.state.current(owned)
    mine: dict[Any, tuple[int, int]] = {}
    for agg in whole.parts.values():  # added up over the partitions, as a merge does
        for key, c in agg.cells.items():
            count, units = mine.get(key, (0, 0))
            mine[key] = (count + c.count, units + c.units)
    assert mine == {key: (c.count, c.units) for key, c in merged.cells.items()}
    # families the four-figure peer never computes are among them
    assert {"contacts_received_hourly", "progressions", "calls_answered_hourly",
            "map_by_agency", "advisors_audited"} <= {name for name, _ in mine}
    states = whole.work.states(NOW, owned)
    assert sum(states.values()) > 0 and whole.work.breaches(NOW, owned)
    assert states == worker.work.states(NOW, owned)
    assert whole.work.breaches(NOW, owned) == worker.work.breaches(NOW, owned)
    calls = whole.waiting.evaluate(NOW, owned)  # the calls still waiting, a listener's
    assert sum(q.waiting + q.expired for q in calls.values()) > 0
    assert calls == worker.waiting.evaluate(NOW, owned)


def test_a_re_sent_event_is_a_duplicate_and_changes_nothing(msgs):
    once, _ = _folded(msgs[:2_000])
    twice, duplicates = _folded(msgs[:2_000] + msgs[:500])
    assert duplicates == 500
    assert twice.figures() == once.figures()
