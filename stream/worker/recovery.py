"""The end of a records table's recovery: figures for the held partitions, and where
each active partition resumes.

Faust awaits a table's ``on_recover`` callbacks once the table holds every record of
the partitions it was given (active and standby), before the stream resumes.
``TableRecovery`` is that callback for one source topic. With the ``local://`` store
it also follows every record the changelog changes while it is read (``follow``), so
the cells of partitions already held are kept rather than refolded.

Before the worker says ready, the ``/metrics`` page is rendered once (``warm``): the
first render after a restart or an assignment merges every owned partition's cells
and formats every series (seconds with a national year, the event loop blocked). Done
here, inside the recovery the worker already reports as not ready, no scrape pays for it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from stream.state import progress
from stream.state.facts import FactContext
from stream.state.timeliness import OpenWork
from stream.worker.metrics import PipelineMetrics
from stream.worker.processor import TP, CellState

log = logging.getLogger("cspa.worker")


# eq=False: Faust keeps recovery callbacks in a set, so the object hashes by identity.
@dataclass(eq=False)
class TableRecovery:
    """Rebuilds one source topic's figures and frontiers after its table recovered."""

    topic: str
    table: Mapping[str, bytes]  # the records table: case records and progress markers
    state: CellState
    work: OpenWork
    ctx: FactContext
    frontier: progress.Frontier
    metrics: PipelineMetrics
    active: Callable[[], set[int]]  # the topic's partitions this worker owns now
    held: Callable[[], set[int]]  # those and the standby copies it keeps in step
    starts: dict[TP, int | None]  # (topic, partition) -> where it resumes (the worker's)
    done: Callable[[], None]  # the worker has recovered (its /ready may say ready)
    #: renders /metrics once, so the first scrape after recovery finds its work done
    warm: Callable[[], object] = lambda: None

    async def __call__(self) -> None:
        self.rebuild()
        self.warm()
        self.done()

    def follow(self, partition: int, key: str, old: bytes | None, new: bytes | None) -> None:
        """A record the changelog changed in the store: kept cells follow it."""
        self.state.restored(self.topic, partition, key, old, new, self.ctx, self.work)

    def rebuild(self) -> Counter[int]:
        """Refold the held partitions whose cells are not kept; set the frontiers.

        Returns the records counted per refolded partition.
        """
        active, held = self.active(), self.held()
        started = time.monotonic()
        kept = {p for t, p in self.state.parts if t == self.topic and p in held}
        records = ((k, v) for k, v in self.table.items() if not progress.is_marker(k))
        counted = self.state.rebuild(self.topic, records, held, self.ctx, self.work)
        self._resume(active, kept, counted)
        self.metrics.rebuilds.inc()
        log.info("figures rebuilt topic=%s partitions=%d records=%d seconds=%.2f kept=%d",
                 self.topic, len(active), counted.total(), time.monotonic() - started,
                 len(kept))
        return counted

    def _resume(self, active: set[int], kept: set[int], counted: Counter[int]) -> None:
        # The frontiers start where the restored state ends, before the stream resumes.
        self.frontier.drop(active)
        for partition in active:
            has_records = counted[partition] > 0 or (
                partition in kept and bool(self.state.parts[(self.topic, partition)].cells))
            start = progress.start_offset(self.table, partition, has_records)
            self.starts[(self.topic, partition)] = start
            if start is not None:
                self.frontier.reset(partition, start)
