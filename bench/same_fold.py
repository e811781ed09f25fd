"""The worker's whole fold, for the Quix peer to run event by event (``--whole``).

The peer's usual fold computes four figure families from a record of its own. The
worker computes every family, its open work and the calls waiting, so the ratio to that
peer measures the two tools *and* the amount of work each does. ``WholeFold`` is the
worker's own work from this checkout's ``stream.state`` (records, facts, cells, open
work), so a peer running it does the same work as the worker's fold and recount,
through its own framework. Left out: the children hop (``stream.worker.rekey``), the
dead-letter topic and the Prometheus export (BENCHMARKS.md, "What is measured").

It runs inside the peer's virtualenv, which has neither Faust nor prometheus-client:
it imports only ``stream.settings``, ``stream.contract`` and ``stream.state``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any, Protocol

from stream.settings import Settings
from stream.state import records
from stream.state.aggregates import Aggregates
from stream.state.calls import CallDefinitions, call_parts
from stream.state.calls_waiting import listen
from stream.state.facts import fact_context
from stream.state.families import facts_of
from stream.state.timeliness import OpenWork

#: the bench's figures (``bench.expected``): name -> {"label|label": [count, sum]}
Figures = dict[str, dict[str, list[float]]]


class Store(Protocol):
    """Per-key state: Quix's ``State`` (a record kept as its JSON text)."""

    def get(self, key: str, default: Any = None) -> Any: ...
    def set(self, key: str, value: Any) -> None: ...


class WholeFold:
    """The worker's fold and recount of one event at a time, cells per partition."""

    def __init__(self, settings: Settings | None = None) -> None:
        settings = settings or Settings()
        self.ctx = fact_context(settings)
        self.work = OpenWork(self.ctx.rules, self.ctx.calendar, settings.open_work_horizon)
        self.waiting = listen(self.work, self.ctx.taxonomy.ordered("call_queue"),
                              settings.calls_waiting_limit_seconds)
        self.calls = CallDefinitions.of(settings)
        self.parts: dict[tuple[str, int], Aggregates] = {}

    def fold(self, event: Any, topic: str, partition: int, state: Store) -> bool:
        """Fold one checked event into its case record, and recount that case's figures
        and open work (``FamilyProcessor.fold`` and ``_recount``); False: a duplicate."""
        kind, slot, value = records.slot_of(event)
        tkey = records.table_key(kind, event.key)
        raw = state.get(tkey)
        old = records.loads(raw.encode()) if raw is not None else None
        new = records.fold(old, kind, slot, value, partition)
        if new is None:
            return False
        state.set(tkey, records.dumps(new).decode())
        part = (topic, partition)
        cells = self.parts.get(part)
        if cells is None:
            cells = self.parts[part] = Aggregates()
        cells.replace(facts_of(old, self.ctx), facts_of(new, self.ctx))
        self.work.update(part, tkey, new)
        return True

    def figures(self) -> Figures:
        """The bench's worker figures (``bench.expected.WORKER_FIGURES``) from the cells."""
        return figures(self.parts.values(), self.calls)


def figures(parts: Iterable[Aggregates], calls: CallDefinitions) -> Figures:
    """Each figure the bench checks, added up over the partitions' cells."""
    out: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))
    for agg in parts:
        for (name, labels), cell in agg.cells.items():
            if name == "contacts_received":  # (month, channel, group, team)
                out[name][f"{labels[0]}|{labels[2]}"][0] += cell.count
            elif name in ("contacts_decided", "map_completed", "audits"):
                out[name]["|".join(labels)][0] += cell.count
            elif name == "contact_completion_working_days":
                row = out["completion"]["|".join(labels)]
                row[0] += cell.count
                row[1] += cell.total
        for (month, _queue), part in call_parts(agg, calls).items():
            total = out["calls"][month]
            total[0] += part["offered"]
            total[1] += part["answered_within_target"]
    return {name: {k: v for k, v in cells.items() if any(v)} for name, cells in out.items()}
