"""Fetched batches straight to the agents: the one place Faust's consumer is replaced.

Written against faust-streaming ``FAUST_VERSION`` (``faust/transport/consumer.py``,
``Consumer._drain_messages`` and ``perform_seek``); tests/unit/worker/test_batches.py fails
when the installed version differs, so a version bump is reviewed here first.

Why: Faust hands every message to the conductor through
``wait_first(callback(message), suspend_flow.wait())`` (two tasks and an
``asyncio.wait`` per message), then builds an Event, queues it and pulls it through
the stream and its sensors: about 250 us a message, ten times what the fold costs.
Here the source topics' records go to their agent as one item per fetched partition
batch (a ``Batch`` on an in-memory Faust channel), and the changelog records Faust's
recovery (or a standby) reads go into their table a fetched batch at a time
(``_restore``): Faust's path for them ran at a few thousand records a second, most of
a restart. Into a memory store they go as Faust's decode would put them, once a
record decoded both ways has shown the two alike; any other store takes Faust's own
decode and ``apply_changelog_batch``.

Offsets are then this module's business, not Faust's acknowledgements:

* Each source partition has a *cursor*: the next offset it expects from Kafka.
  aiokafka returns a partition's records in order from its position, skipping only
  offsets that hold no data record (transaction markers, aborted data), so a record
  beyond the cursor is such a gap unless the position moved under a fetch that was
  already in flight (a seek). Then the partition is sought back to the cursor and
  the records dropped: nothing is ever skipped because of a seek.
* Each partition has an *epoch*, bumped when a revocation begins and when an
  assignment moves it to the state's progress marker. A batch carries the epoch it
  was fetched in; the agent drops a batch from an earlier epoch (its records are
  fetched again from the marker).
* After every assignment each source partition is sought to where the state resumes
  (its marker, else the committed offset), even where Faust's seek to the committed
  offset already put it there: position, cursor and epoch move together. Nothing is
  delivered while a seek is in progress (one lock around fetch-and-deliver and the
  seeks). Without both, a batch fetched between Faust's seek and ours could be put
  on the channel, dropped as stale, and its records taken as already read.
* Commits come from the progress markers once Kafka has them (``commit_markers``),
  so Kafka's lag tools agree with the state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import faust
import orjson
from faust.stores.memory import Store as MemoryStore
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from stream.state.progress import rewind_plan
from stream.worker.localstate import LocalStore

#: The faust-streaming release whose consumer internals this module replaces.
FAUST_VERSION = "0.15.3"

#: Where each assigned source partition resumes: TP -> next offset, None = unknown.
ResumeOffsets = Callable[[Iterable[TP]], Mapping[TP, int | None]]
#: Called after an assignment's seeks with (plan, committed before, start per TP).
OnResume = Callable[[Mapping[TP, int], Mapping[TP, int | None], Mapping[TP, int]], None]
#: Takes one batch to its agent (a channel put); may block while the agent is busy.
Sink = Callable[["Batch"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Batch:
    """Consecutive records of one source partition, as aiokafka fetched them."""

    tp: TP
    epoch: int
    records: list[Any]  # aiokafka ConsumerRecord: offset, key, value, timestamp (ms)


def follow(cursor: int | None, batch: list[Any], moved: bool) -> tuple[list[Any], bool]:
    """The part of a fetched batch that continues from ``cursor``, and whether to refetch.

    Records below the cursor were delivered already. A first record beyond it is a
    gap: offsets without data records (transaction markers) when the position did not
    move during the fetch; otherwise (``moved``: a seek raced it) the gap may hide
    records, so nothing is delivered and the partition is read again from the cursor.
    """
    if cursor is None or not batch:
        return batch, False
    if batch[0].offset < cursor:
        batch = [r for r in batch if r.offset >= cursor]
    if batch and batch[0].offset > cursor and moved:
        return [], True
    return batch, False


#: How long the broker may hold a fetch that has no data yet. aiokafka keeps one fetch
#: in flight per broker, and leaves out of it every partition whose last records are not
#: yet consumed; data arriving for those waits for the fetch in flight to come back.
#: Faust hard-codes 1,500 ms, which showed as a latency tail of 1-2.5 s at 1,000
#: events/s; 50 ms costs an idle worker 20 empty fetches a second on loopback.
FETCH_MAX_WAIT_MS = 50


class BatchConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, with a short fetch wait (``FETCH_MAX_WAIT_MS``), reading
    committed records only."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by start()
        # ``deadletter replay`` re-sends in Kafka transactions: a replay that was fenced
        # or failed leaves aborted records on the source topic, which must not count.
        # (Faust reads committed only under its exactly_once guarantee.)
        consumer._isolation_level = "read_committed"  # read by start()
        return consumer


class BatchConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with batch delivery and marker-driven positions."""

    cursors: dict[TP, int]
    epochs: dict[TP, int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cursors = {}
        self.epochs = {}
        self._moves: dict[TP, int] = {}  # bumped at every seek of a partition
        #: held while a fetch's records are delivered and while an assignment seeks
        self._delivering = asyncio.Lock()
        self._changelog_decoders: dict[Any, Any] = {}  # table -> its changelog's decode
        self._direct: dict[Any, bool] = {}  # table -> its records may go in undecoded

    def _new_consumer_thread(self) -> BatchConsumerThread:
        return BatchConsumerThread(self, loop=self.loop, beacon=self.beacon)

    @property
    def sinks(self) -> dict[str, Sink]:
        """Source topic -> where its batches go (``BatchApp.batch_sinks``)."""
        sinks: dict[str, Sink] = getattr(self.app, "batch_sinks", {})
        return sinks

    def epoch(self, tp: TP) -> int:
        return self.epochs.get(tp, 0)

    def invalidate(self) -> None:
        """Make every batch handed out so far stale: a revocation has begun.

        A batch already on an agent's channel, or taken off it and waiting for the
        agent, would otherwise be folded while the revocation waits for the agents, or
        after the assignment's recovery has dropped its partition from the store: a
        record folded onto a dropped partition starts from nothing and, written to the
        changelog, loses every event of the case before it. The assignment's seek
        bumps the epochs again before anything new is delivered.
        """
        for tp in {*self.epochs, *(tp for tp in self.assignment() if tp.topic in self.sinks)}:
            self.epochs[tp] = self.epoch(tp) + 1

    async def _seek(self, partition: TP, offset: int) -> None:
        self._moved(partition, offset, new_epoch=True)
        await super()._seek(partition, offset)

    def _moved(self, tp: TP, offset: int, new_epoch: bool) -> None:
        if tp.topic in self.sinks:
            self._moves[tp] = self._moves.get(tp, 0) + 1
            self.cursors[tp] = offset
            if new_epoch:
                self.epochs[tp] = self.epoch(tp) + 1

    async def perform_seek(self) -> None:
        """Faust's seek to the committed offsets, then every source partition to its start.

        The start is the state's marker, else the committed offset. Each source
        partition is sought, not only those whose marker differs from the committed
        offset: the seek sets cursor and epoch with the position (see the module).
        """
        async with self._delivering:
            await super().perform_seek()
            app = self.app
            resume_offsets: ResumeOffsets | None = getattr(app, "resume_offsets", None)
            if resume_offsets is None:
                return
            committed: Any = self._committed_offset
            resume = resume_offsets(self.assignment())
            plan = rewind_plan(resume.keys(), committed, resume)
            before = {tp: committed.get(tp) for tp in plan}
            starts = {tp: start if start is not None else (committed.get(tp) or 0)
                      for tp, start in resume.items()}
            for tp, offset in starts.items():
                await self.seek(tp, offset)
            on_resume: OnResume | None = getattr(app, "on_resume_seek", None)
            if on_resume is not None:
                on_resume(plan, before, starts)

    async def commit_markers(self, offsets: Mapping[TP, int]) -> bool:
        """Commit source offsets the state's markers vouch for (on Kafka already)."""
        committed: Any = self._committed_offset
        due = {tp: o for tp, o in offsets.items() if (committed.get(tp) or -1) != o}
        if not due:
            return False
        sensors = self.app.sensors  # Faust's commit latency sees these commits too
        state = sensors.on_commit_initiated(self)
        try:
            return bool(await self._commit_offsets(due))
        finally:
            sensors.on_commit_completed(self, state)

    async def _drain_messages(self, fetcher: Any) -> None:  # replaces Faust's loop
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                async with self._delivering:  # no seek between fetch and delivery
                    moves = dict(self._moves)
                    records, active = await self._wait_next_records(1.0)
                    if not records or self.should_stop:
                        continue
                    if self.flow_active:
                        await self._deliver(records, active, moves)
                        continue
                await self.perform_seek()  # a rebalance began under the fetch
        except self.consumer_stopped_errors:
            if not self.transport.app.should_stop:
                raise
        except asyncio.CancelledError:
            if not self.transport.app.should_stop:
                raise

    async def _deliver(self, records: Mapping[TP, list[Any]], active: set[TP] | None,
                       moves: Mapping[TP, int]) -> None:
        generation = self.app.consumer_generation_id
        for tp, batch in records.items():
            if not self.flow_active or self.app.consumer_generation_id != generation:
                return  # the rebalance's seek positions every partition again
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                continue
            sink = self.sinks.get(tp.topic)
            if sink is None:
                if not await self._restore(tp, batch):
                    await self._deliver_one_by_one(tp, batch)
                continue
            batch = self._contiguous(tp, batch, moved=moves.get(tp) != self._moves.get(tp))
            if batch:
                self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                self.app.monitor.stream_inbound_time[tp] = asyncio.get_running_loop().time()
                item = Batch(tp, self.epoch(tp), batch)
                if not await self._put(sink, item):
                    on_stale: Callable[[TP], None] | None = getattr(
                        self.app, "on_stale_batch", None)
                    if on_stale is not None:
                        on_stale(tp)
                    return
                self.cursors[tp] = batch[-1].offset + 1

    async def _put(self, sink: Sink, item: Batch) -> bool:
        """Hand a batch to its agent; False if a rebalance ended the put first.

        A revocation stops the flow, then clears the agents' channels (Faust's
        ``flow_control.clear()``), which cancels a put still waiting for room: either
        way the batch is dropped (a stale batch), and the assignment's seek reads its
        records again. Only a cancellation of this task itself (the fetcher stopping)
        is passed on: the put's own cancellation, raised here, ended the fetcher and
        the worker with it.
        """
        put = sink(item)
        try:
            ended = await self.wait_first(put, self.suspend_flow.wait())
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            return False
        return put in ended.done

    def _contiguous(self, tp: TP, batch: list[Any], moved: bool) -> list[Any]:
        """The records that follow the cursor; none (and a seek back) after a lost race."""
        batch, refetch = follow(self.cursors.get(tp), batch, moved)
        if refetch:
            cursor = self.cursors[tp]
            self._moves[tp] = self._moves.get(tp, 0) + 1
            self._thread.seek(tp, cursor)
            on_refetch: Callable[[TP], None] | None = getattr(self.app, "on_refetch", None)
            if on_refetch is not None:
                on_refetch(tp)
        return batch

    async def _restore(self, tp: TP, batch: list[Any]) -> bool:
        """A changelog batch into its table at once, while Faust's recovery reads it.

        False (Faust's own path takes the batch): not a changelog partition Faust is
        restoring or keeping as a standby, or a table with a changelog hook. Else the
        new records go into the table after what Faust's recovery loop still holds
        unapplied (older records: order kept): straight into a memory store
        (``into_memory_store``), otherwise decoded by Faust's own schema and applied
        with the table's own ``apply_changelog_batch``. Its position for the partition is set
        just before the last record, and that record then takes Faust's path too:
        applied twice, to the same value, so that Faust's loop sees the partition
        reach its end and ends the recovery itself. A record of an earlier batch
        still queued for that loop is below the position by then, so the loop skips
        it rather than put an older value back.
        """
        tables: Any = self.app.tables
        recovery = tables.recovery
        if tp in recovery.active_tps:
            positions = recovery.active_offsets
        elif tp in recovery.standby_tps:
            positions = recovery.standby_offsets
        else:
            return False
        table = recovery.tp_to_table.get(tp)
        if table is None or table._on_changelog_event is not None:
            return False
        seen = positions.get(tp)
        fresh = [r for r in batch if seen is None or r.offset > seen]
        if not fresh:
            return True  # all restored already; Faust's loop would skip them too
        decode = self._changelog_decoders.get(table)
        if decode is None:  # Faust's own decode of the table's changelog, compiled once
            decode = self._changelog_decoders[table] = table.changelog_topic.schema.compile(
                self.app, default_propagate=True)
        unapplied = recovery.buffers[table]
        if unapplied:
            table.apply_changelog_batch(unapplied)
            unapplied.clear()
        if await self._decodes_alike(table, tp, fresh, decode):
            into_memory_store(table, tp.partition, fresh)
        else:
            table.apply_changelog_batch([await decode(self._to_message(tp, r)) for r in fresh])
        positions[tp] = fresh[-1].offset - 1
        await self._deliver_one_by_one(tp, fresh[-1:])
        return True

    async def _decodes_alike(self, table: Any, tp: TP, batch: list[Any], decode: Any) -> bool:
        """Whether ``into_memory_store`` may take this table's records: a memory store,
        and Faust's decode of a stored record gives its raw value and the JSON key.

        Checked once per table, on its first record with a value (Faust's message and
        Event per record were 11 us of a restore's 12: ``BENCHMARKS.md`` step 22).
        """
        alike = self._direct.get(table)
        if alike is not None:
            return alike
        sample = next((r for r in batch if r.value is not None), None)
        if type(table.data) not in (MemoryStore, LocalStore) or sample is None:
            return False  # (no sample yet: asked again with the next batch)
        event = await decode(self._to_message(tp, sample))
        key = table._to_key(orjson.loads(sample.key))
        alike = self._direct[table] = (event.key == key and type(event.key) is type(key)
                                       and event.value == sample.value)
        return alike

    async def _deliver_one_by_one(self, tp: TP, batch: list[Any]) -> None:
        """Faust's own path, for every topic that is not a batch source."""
        callback = self.callback
        read = self._read_offset
        for record in batch:
            last = read[tp]
            if last is None or record.offset >= last:
                await self.wait_first(callback(self._to_message(tp, record)),
                                      self.suspend_flow.wait())
                read[tp] = record.offset


def into_memory_store(table: Any, partition: int, records: list[Any]) -> None:
    """Changelog records into a memory-store table, as Faust's decode and
    ``MemoryStore.apply_changelog_batch`` put them, without an Event per record.

    The key is the JSON string Faust's key serializer wrote, the value the raw bytes;
    a tombstone (no value) deletes its key unless a later record of the batch sets
    it again. The store remembers each key's partition, as Faust's does. A
    ``LocalStore`` takes them one by one, with their offsets, and tells its listener.
    """
    store = table.data
    to_key = table._to_key
    if isinstance(store, LocalStore):
        put = store.put
        for record in records:
            put(partition, to_key(orjson.loads(record.key)), record.value, record.offset)
        return
    data, partitions = store.data, store._key_partition
    tombstones = []
    for record in records:
        key = to_key(orjson.loads(record.key))
        partitions[key] = partition
        data[key] = record.value
        if record.value is None:
            tombstones.append(key)
    for key in tombstones:
        if not data[key]:
            data.pop(key, None)
            partitions.pop(key, None)


def batch_consumer(app: faust.App) -> BatchConsumer:
    """The app's consumer, which ``BatchApp`` makes a ``BatchConsumer``."""
    consumer = app.consumer
    assert isinstance(consumer, BatchConsumer)
    return consumer


class IdempotentProducer(faust_aiokafka.Producer):
    """Faust's producer with Kafka's idempotence on (Faust turns it on only in transactions).

    A send whose acknowledgement is lost (the broker killed after writing it) is retried;
    without idempotence the retry writes the record twice, so one rejected event would
    leave two dead letters. With it the broker drops the retry by sequence number.
    """

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


class BatchTransport(faust_aiokafka.Transport):
    Consumer: ClassVar[Any] = BatchConsumer
    Producer: ClassVar[Any] = IdempotentProducer


class BatchApp(faust.App):
    """A Faust app whose source topics reach their agents in batches.

    Set ``resume_offsets``, ``on_resume_seek``, ``on_refetch``, ``on_stale_batch`` and
    ``wait_idle`` after building it, and put each source topic's sink (its agent's
    channel) in ``batch_sinks``.
    """

    batch_sinks: dict[str, Sink]

    resume_offsets: ResumeOffsets | None = None
    on_resume_seek: OnResume | None = None
    on_refetch: Callable[[TP], None] | None = None
    #: a batch dropped at its put because a revocation cleared its agent's channel
    on_stale_batch: Callable[[TP], None] | None = None
    #: awaited when a rebalance waits for the streams: the batch agents finish theirs
    wait_idle: Callable[[], Awaitable[None]] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batch_sinks = {}

    def _new_transport(self) -> Any:
        return BatchTransport(self.conf.broker_consumer, self)

    async def _consumer_wait_empty(self, consumer: Any, logger: Any) -> None:
        # First, before any await: a batch an agent takes from now on is dropped (the
        # wait below sees an agent idle between two batches, and the next one must
        # not be folded into a partition this rebalance may take away).
        invalidate: Callable[[], None] | None = getattr(consumer, "invalidate", None)
        if invalidate is not None:
            invalidate()
        await super()._consumer_wait_empty(consumer, logger)
        if self.wait_idle is not None:
            await self.wait_idle()
