"""Table writes straight to the changelog: records now, progress markers a batch later."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson
from faust.stores.memory import Store as MemoryStore

from stream.state import progress
from stream.state.records import Record, dumps
from stream.worker.localstate import LocalStore
from stream.worker.turn import CHUNK, WHOLE, Turn


def record_reader(table: Any, partition: int) -> MutableMapping[str, bytes]:
    """The records of one partition as the agents read them: the store itself, past the
    table.

    A Faust table's ``get`` runs its sensors for every key (a third of a record
    look-up); a ``LocalStore`` keeps the partition's records in a dict of their own,
    Faust's memory store every partition's in one, with the same str keys and bytes.
    """
    store = table.data
    if isinstance(store, LocalStore):
        return store.part(partition)
    raw = getattr(store, "data", None)
    if isinstance(store, MemoryStore) and isinstance(raw, dict):
        return raw
    reader: MutableMapping[str, bytes] = store
    return reader


def encode_key(key: str) -> bytes:
    """A table key as Faust's ``json`` key serializer writes it to the changelog.

    Record and marker keys are ASCII (``kind:hex``, ``!offset:N``), for which this is
    byte for byte what Faust writes; tests/unit/state/test_progress.py checks it.
    """
    return orjson.dumps(key)


#: Writes awaiting Kafka's acknowledgement before a write waits for the oldest: bounds
#: what a stalled broker leaves in memory (the producer's own buffer bounds the bytes).
MAX_FLIGHTS = 64

Marker = tuple[int, str, bytes]  # (partition, marker key, encoded next offset)
#: a hop to the repartition topic (stream.worker.rekey): (its partition, key, value)
Hop = tuple[int, bytes, bytes]


@dataclass
class _Flight:
    """One write on its way to Kafka."""

    futures: list[Any]  # delivery futures of its record batches
    counts: list[int]  # records in each of those batches (a future gives the first offset)
    markers: dict[int, int]  # the markers it carries: partition -> next offset
    vouched: list[Marker]  # markers for its records: sendable once it has landed
    #: delivery futures of its hops to the repartition topic: they land with the records
    hops: list[Any] = field(default_factory=list)


class ChangelogWriter:
    """Writes a batch's records and progress markers to the table and its changelog.

    Straight to the Kafka producer, one record batch per changelog partition (the
    partition of the source partition the records came from): aiokafka's
    ``send_batch`` costs a fraction of one ``send`` per record. (Faust's route,
    ``table[key] = value``, goes through a buffer that hands the producer one message
    per event-loop turn and stalls the stream whenever it holds more than 100.)

    Nothing waits for the broker: a write's markers are held back until Kafka has
    acknowledged its records and every earlier write (writes *land* in order), then
    go out with a later write. So a marker on the broker never stands in front of a
    record that failed to get there. (Waiting for the previous write's
    acknowledgement in every write put one broker round trip per partition batch
    on the agent and held up the fetch behind it: latency p50 at 1,000 events/s
    went from 116 to 20 ms when that wait went, BENCHMARKS.md step 10.)
    """

    def __init__(self, app: faust.App, table: Any, hops_to: str | None = None) -> None:
        self.app = app
        #: the repartition topic a batch's hops go to, in its records' flight (contacts)
        self.hops_to = hops_to
        self.table = table
        self.topic = table.changelog_topic
        self.name = self.topic.get_topic_name()
        self.flights: deque[_Flight] = deque()  # oldest first
        self.due: list[Marker] = []  # markers whose records have landed, not yet sent
        #: source partition -> next offset, for markers Kafka has acknowledged
        self.durable: dict[int, int] = {}
        self.lock = asyncio.Lock()
        #: told where each landed batch ends (``LocalStore.written``), if the store keeps offsets
        self.landed = getattr(table.data, "written", None)

    def forget_markers(self) -> None:
        """Drop held-back markers (after an assignment: the partitions may have moved)."""
        self.due = []
        self.durable = {}
        for flight in self.flights:
            flight.markers, flight.vouched = {}, []

    async def settle(self) -> None:
        """When idle: wait for every write in flight and send the held-back markers."""
        if self.lock.locked() or not (self.flights or self.due):
            return
        async with self.lock:
            await self._land(keep=0)
            await self._send([], [])

    async def drain(self) -> None:
        """Until every write and every held-back marker has landed (a checkpoint waits)."""
        async with self.lock:
            await self._land(keep=0)
            await self._send([], [])
            await self._land(keep=0)

    async def write(self, pending: dict[str, Record], owners: dict[str, int],
                    frontier: progress.Frontier, hops: list[Hop] | None = None,
                    turn: Turn = WHOLE) -> None:
        """Send the batch's records (and hops); hold its markers back until they have
        landed.

        Encoded and handed to the producer ``CHUNK`` records between two of the
        turn's ticks: the write of a catch-up's batch held the loop for 20-190 ms.
        """
        def encoded(item: tuple[str, Record]) -> tuple[int, str, bytes]:
            return owners[item[0]], item[0], dumps(item[1])
        records = await turn.map(encoded, list(pending.items()))
        markers = []
        for key, partition in owners.items():
            offset = frontier.next.get(partition)
            if progress.is_marker(key) and offset is not None:
                markers.append((partition, key, progress.encode(offset)))
        pending.clear()
        owners.clear()
        async with self.lock:
            await self._land(keep=MAX_FLIGHTS - 1)
            await self._send(records, markers, hops or [], turn)

    async def _land(self, keep: int) -> None:
        """Retire the acknowledged writes, oldest first, waiting while more than
        ``keep`` are in flight.

        Raises if Kafka refused a write after its retries: the agent stops, and no
        marker vouches for that write.
        """
        while self.flights:
            flight = self.flights[0]
            if len(self.flights) <= keep and not all(
                    fut.done() for fut in (*flight.futures, *flight.hops)):
                return
            for fut, count in zip(flight.futures, flight.counts, strict=True):
                meta = await fut
                if self.landed is not None:
                    self.landed(meta.partition, meta.offset + count - 1)
            for fut in flight.hops:  # (the repartition topic's: not this store's offsets)
                await fut
            self.flights.popleft()
            self.durable.update(flight.markers)
            self.due.extend(flight.vouched)

    async def _send(self, records: list[tuple[int, str, bytes]], vouched: list[Marker],
                    hops: list[Hop] | None = None, turn: Turn = WHOLE) -> None:
        due = list({m[1]: m for m in self.due}.values())  # the latest marker per key
        self.due = []
        if not (due or records or vouched or hops):
            return
        producer = self.app.producer._producer  # type: ignore[attr-defined]
        store = self.table.data
        # a local store keeps a dict per partition (``target``, partition ``at``'s);
        # Faust's one dict of them all, and each key's partition in another
        local = isinstance(store, LocalStore)
        target: MutableMapping[str, bytes] = {} if local else store.data
        at = -1
        batches: dict[int, Any] = {}
        counts: dict[int, int] = {}
        futures, sizes = [], []
        for i, (partition, key, value) in enumerate((*due, *records)):
            if i % CHUNK == CHUNK - 1:  # (under the lock: a checkpoint's drain waits)
                await turn.tick()
                at = -1  # (a drop meanwhile takes the partition's dict: ask again)
            if local and partition != at:
                target, at = store.part(partition), partition
            target[key] = value
            if not local:
                store._key_partition[key] = partition
            raw_key = encode_key(key)
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = producer.create_batch()
                counts[partition] = 0
            if batch.append(key=raw_key, value=value, timestamp=None) is None:  # full
                futures.append(await producer.send_batch(batch, self.name,
                                                         partition=partition))
                at = -1
                sizes.append(counts[partition])
                batch = batches[partition] = producer.create_batch()
                counts[partition] = 0
                batch.append(key=raw_key, value=value, timestamp=None)
            counts[partition] += 1
        for partition, batch in batches.items():
            futures.append(await producer.send_batch(batch, self.name, partition=partition))
            sizes.append(counts[partition])
        hopped = await self._send_hops(producer, hops or [], turn)
        self.flights.append(_Flight(futures, sizes, {p: int(v) for p, _, v in due}, vouched,
                                    hopped))

    async def _send_hops(self, producer: Any, hops: list[Hop],
                         turn: Turn = WHOLE) -> list[Any]:
        """One record batch (or more) per partition of the repartition topic."""
        if not hops or self.hops_to is None:
            return []
        futures: list[Any] = []
        batches: dict[int, Any] = {}
        for i, (partition, key, value) in enumerate(hops):
            if i % CHUNK == CHUNK - 1:
                await turn.tick()
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:  # full
                futures.append(await producer.send_batch(batch, self.hops_to,
                                                         partition=partition))
                batch = batches[partition] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        for partition, batch in batches.items():
            futures.append(await producer.send_batch(batch, self.hops_to, partition=partition))
        return futures
