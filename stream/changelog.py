"""Table writes straight to the changelog: records now, progress markers a batch later."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import faust
import orjson
from faust.stores.memory import Store as MemoryStore

from stream import progress
from stream.records import Record, dumps


def record_reader(table: Any) -> MutableMapping[str, bytes]:
    """The records as the agents read them: the store itself, past the table.

    A Faust table's ``get`` runs its sensors for every key (a third of a record
    look-up); the memory store's own dict holds the same str keys and bytes.
    """
    store = table.data
    raw = getattr(store, "data", None)
    if isinstance(store, MemoryStore) and isinstance(raw, dict):
        return raw
    reader: MutableMapping[str, bytes] = store
    return reader


def encode_key(key: str) -> bytes:
    """A table key as Faust's ``json`` key serializer writes it to the changelog.

    Record and marker keys are ASCII (``kind:hex``, ``!offset:N``), for which this is
    byte for byte what Faust writes; tests/unit/test_progress.py checks it.
    """
    return orjson.dumps(key)


class ChangelogWriter:
    """Writes a batch's records and progress markers to the table and its changelog.

    Straight to the Kafka producer, one record batch per changelog partition (the
    partition of the source partition the records came from): aiokafka's
    ``send_batch`` costs a fraction of one ``send`` per record. (Faust's route,
    ``table[key] = value``, goes through a buffer that hands the producer one message
    per event-loop turn and stalls the stream whenever it holds more than 100.) Nothing
    waits for the broker within a batch: a batch's markers are held back and sent with
    the next batch, once the records they vouch for are acknowledged, so a marker on
    the broker never stands in front of a record that failed to get there.
    """

    def __init__(self, app: faust.App, table: Any) -> None:
        self.app = app
        self.table = table
        self.topic = table.changelog_topic
        self.name = self.topic.get_topic_name()
        self.inflight: list[Any] = []  # delivery futures of the last batch
        self.due: list[tuple[int, str, bytes]] = []  # markers waiting for those
        self.sent: dict[int, int] = {}  # markers among the in-flight writes
        #: source partition -> next offset, for markers Kafka has acknowledged
        self.durable: dict[int, int] = {}
        self.lock = asyncio.Lock()

    def forget_markers(self) -> None:
        """Drop held-back markers (after an assignment: the partitions may have moved)."""
        self.due = []
        self.sent = {}
        self.durable = {}

    async def settle(self) -> None:
        """When idle: wait for the in-flight writes and send the held-back markers."""
        if self.lock.locked() or not (self.inflight or self.due):
            return
        async with self.lock:
            await self._send([])

    async def write(self, pending: dict[str, Record], owners: dict[str, int],
                    frontier: progress.Frontier) -> None:
        """Send the batch's records; hold its markers back for the next call."""
        records = [(owners[k], k, dumps(r)) for k, r in pending.items()]
        markers = []
        for key, partition in owners.items():
            offset = frontier.next.get(partition)
            if progress.is_marker(key) and offset is not None:
                markers.append((partition, key, progress.encode(offset)))
        pending.clear()
        owners.clear()
        async with self.lock:
            await self._send(records)
            self.due = markers

    async def _send(self, records: list[tuple[int, str, bytes]]) -> None:
        previous, self.inflight = self.inflight, []
        for fut in previous:
            await fut  # raises if Kafka refused a write after its retries: the agent stops
        self.durable.update(self.sent)
        due, self.due = self.due, []
        self.sent = {partition: int(value) for partition, _, value in due}
        producer = self.app.producer._producer  # type: ignore[attr-defined]
        data = self.table.data
        batches: dict[int, Any] = {}
        for partition, key, value in (*due, *records):
            data[key] = value
            raw_key = encode_key(key)
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = producer.create_batch()
            if batch.append(key=raw_key, value=value, timestamp=None) is None:  # full
                self.inflight.append(await producer.send_batch(batch, self.name,
                                                               partition=partition))
                batch = batches[partition] = producer.create_batch()
                batch.append(key=raw_key, value=value, timestamp=None)
        for partition, batch in batches.items():
            self.inflight.append(await producer.send_batch(batch, self.name,
                                                           partition=partition))
