"""The agent of one source topic: a batch of records in, records and markers out.

A ``TopicAgent`` is what the Faust agent of a source topic runs for every ``Batch``
the consumer hands it (stream/worker/batches.py). It holds no logic of its own beyond the
order of things: fold every record (``FamilyProcessor``), dead-letter the rejected
ones and wait for Kafka to have them, then write the changed records and the
partition's progress marker (``ChangelogWriter``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

import faust

from stream.contract.decoder import Rejection
from stream.state import progress
from stream.state.records import Record
from stream.worker.batches import Batch
from stream.worker.changelog import ChangelogWriter, record_reader
from stream.worker.metrics import PipelineMetrics
from stream.worker.processor import FamilyProcessor, deadletter_message
from stream.worker.rekey import Rekey
from stream.worker.turn import CHUNK, WHOLE, Turn

log = logging.getLogger("cspa.worker")

#: (partition, offset, timestamp ms, key, value, why)
Rejected = tuple[int, int, float, bytes | None, bytes | None, Rejection]

@dataclass
class TopicAgent:
    """Processes the batches of one source topic, in order, one at a time."""

    processor: FamilyProcessor
    table: MutableMapping[str, bytes]
    frontier: progress.Frontier
    writer: ChangelogWriter
    dlq: faust.TopicT
    metrics: PipelineMetrics
    epoch_of: Any  # Callable[[TP], int]: the consumer's current epoch of a partition
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    #: held while a batch is folded and written: a checkpoint takes it to find none
    busy: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: dict[str, Record] = field(default_factory=dict)
    owners: dict[str, int] = field(default_factory=dict)  # table key -> changelog partition
    #: table key -> its record before the batch changed it (FamilyProcessor.settle)
    before: dict[str, Record | None] = field(default_factory=dict)
    #: whether cspa_first_consumed_timestamp_seconds is set (once, at the first batch)
    started: bool = False
    #: the contacts topic's: hops to the children table, in the batch's flight
    rekey: Rekey | None = None
    #: the loop's time for batch work, shared with the worker's other agents
    turn: Turn = field(default_factory=Turn)

    def __post_init__(self) -> None:
        self.idle.set()

    def records(self, partition: int) -> MutableMapping[str, bytes]:
        """One partition's records, looked up per batch: a restore replaces them."""
        return record_reader(self.table, partition)

    @property
    def topic(self) -> str:
        return self.processor.topic

    async def run(self, stream: faust.StreamT[Batch]) -> None:
        """The Faust agent's body."""
        async for batch in stream:
            await self.handle(batch)

    async def handle(self, batch: Batch) -> None:
        """Fold one batch; dropped whole if an assignment moved its partition since."""
        async with self.busy:  # (a checkpoint may hold it: the epoch is checked after)
            if batch.epoch != self.epoch_of(batch.tp):
                self.metrics.stale_batches.labels(self.topic).inc()
                return
            self.idle.clear()
            try:
                rejected = await self.apply(batch)
                if rejected:
                    await self.dead_letter(rejected)
                if self.rekey is None:
                    await self.writer.write(self.pending, self.owners, self.frontier,
                                            turn=self.turn)
                else:  # made before the write: it clears pending
                    hops = await self.rekey.hops(self.pending, self.records(batch.tp.partition),
                                                 self.turn)
                    await self.writer.write(self.pending, self.owners, self.frontier, hops,
                                            self.turn)
                    self.metrics.hops_sent.inc(len(hops))
            finally:
                self.idle.set()

    async def apply(self, batch: Batch, turn: Turn | None = None) -> list[Rejected]:
        """Fold every record of the batch into ``pending`` and recount the changed cases;
        return the rejected ones.

        The loop is let go between slices of the work (``Turn``, the agent's own unless
        given): a batch of a catch-up holds thousands of records, and with a national
        year in state folding one took the loop for 50-600 ms, in which no scrape,
        ``/due`` or timer was served.
        """
        turn = self.turn if turn is None else turn
        partition = batch.tp.partition
        now = time.time()
        if not self.started:  # the clock of a replay starts here (bench/replay.py)
            self.started = True
            self.metrics.first_consumed.labels(self.topic).set(now)
        misplaced = self.processor.misplaced([r.key for r in batch.records], partition)
        rejected: list[Rejected] = []
        size = len(batch.records)
        for start in range(0, size, CHUNK):
            self._fold(batch, start, min(start + CHUNK, size), now, misplaced, rejected)
            await turn.tick()
        changed = list(self.before.items())  # (table key, its record before the batch)
        self.before.clear()
        for start in range(0, len(changed), CHUNK):
            self.processor.recount(partition, self.pending, changed[start:start + CHUNK])
            await turn.tick()
        self.processor.batch_done(batch.records)
        self.frontier.advance(partition, batch.records[-1].offset)
        self.owners[progress.marker_key(partition)] = partition
        return rejected

    def apply_now(self, batch: Batch) -> list[Rejected]:
        """``apply`` run to its end at once, outside any loop (the bench's in-process
        tools). A turn that is never spent: nothing is awaited, and anything awaited
        there would raise here."""
        steps = self.apply(batch, WHOLE)
        try:
            while True:
                steps.send(None)
        except StopIteration as done:
            rejected: list[Rejected] = done.value
            return rejected

    def _fold(self, batch: Batch, start: int, stop: int, now: float,
              misplaced: dict[int, Rejection], rejected: list[Rejected]) -> None:
        """Fold the batch's records ``[start, stop)`` into ``pending``."""
        partition = batch.tp.partition
        fold, table, pending, before = (self.processor.fold, self.records(partition),
                                        self.pending, self.before)
        owners: dict[str, int] = self.owners
        note = self.rekey.note if self.rekey is not None else None
        records = batch.records
        for i in range(start, stop):
            r = records[i]
            try:
                result = (misplaced[i] if misplaced and i in misplaced
                          else fold(r.key, r.value, partition, table, now, pending, before))
            except Exception as exc:  # noqa: BLE001 - a bug must not stop the stream
                # Only the exception's type: its message could quote event data.
                result = Rejection("internal_error", type(exc).__name__)
                self.metrics.rejected.labels(self.topic, result.reason).inc()
            if isinstance(result, Rejection):
                rejected.append((partition, r.offset, r.timestamp, r.key, r.value, result))
            else:
                if result.changed:
                    owners[result.table_key] = partition
                if note is not None:
                    note(result)

    async def dead_letter(self, rejected: list[Rejected]) -> None:
        """Send each rejected message with its reason; return once Kafka has them all.

        The batch's marker must not claim a rejected event whose dead letter is not
        on the broker yet: each future resolves on Kafka's acknowledgement.
        """
        sent = []
        for partition, offset, timestamp_ms, key, value, why in rejected:
            # Not the detail: it is kept on the dead-letter topic, which is access-
            # controlled like the events; the log goes wherever logs go.
            log.warning("rejected topic=%s partition=%d offset=%d reason=%s",
                        self.topic, partition, offset, why.reason)
            sent.append(await self.dlq.send(key=key, value=deadletter_message(
                self.topic, partition, offset, timestamp_ms, key, value, why)))
        for fut in sent:
            await fut
