"""The batch path that replaces Faust's per-message delivery (stream/worker/batches.py)."""

from __future__ import annotations

import asyncio
import tomllib
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import pytest

from stream.worker import batches

ROOT = Path(__file__).resolve().parents[3]


def _records(*offsets):
    return [SimpleNamespace(offset=o) for o in offsets]


def _offsets(records):
    return [r.offset for r in records]


def test_written_against_the_installed_and_pinned_faust():
    # Moving the pin means reviewing stream/worker/batches.py against the new consumer first.
    assert version("faust-streaming") == batches.FAUST_VERSION
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"faust-streaming=={batches.FAUST_VERSION}" in deps


def test_the_faust_internals_it_replaces_are_still_there():
    from faust.transport.consumer import Consumer

    for name in ("_drain_messages", "_wait_next_records", "perform_seek", "_commit_offsets",
                 "_to_message", "wait_first"):
        assert callable(getattr(Consumer, name)), name


@pytest.mark.asyncio
async def test_the_workers_consumer_waits_at_most_fetch_max_wait_ms_for_data():
    # Faust builds its consumer with a 1,500 ms fetch wait; the project's thread shortens
    # it before start() hands it to the fetcher (checked on a started one in
    # tests/integration/test_batches_live.py).
    from stream.settings import Settings
    from stream.worker.app import create_app

    worker = create_app(Settings(broker="127.0.0.1:39092", web_port=16069))
    thread = worker.app.consumer._thread
    assert isinstance(thread, batches.BatchConsumerThread)
    consumer = thread._create_worker_consumer(worker.app.transport)
    assert consumer._fetch_max_wait_ms == batches.FETCH_MAX_WAIT_MS == 50
    await consumer._client.close()


def test_a_batch_that_continues_the_cursor_is_delivered_whole():
    batch, refetch = batches.follow(10, _records(10, 11, 12), moved=False)
    assert _offsets(batch) == [10, 11, 12] and not refetch


def test_records_already_delivered_are_dropped():
    batch, refetch = batches.follow(11, _records(9, 10, 11, 12), moved=True)
    assert _offsets(batch) == [11, 12] and not refetch


def test_a_gap_without_a_seek_is_transaction_markers_and_is_delivered():
    batch, refetch = batches.follow(10, _records(12, 13), moved=False)
    assert _offsets(batch) == [12, 13] and not refetch


def test_a_gap_after_a_seek_raced_the_fetch_is_read_again():
    batch, refetch = batches.follow(10, _records(40, 41), moved=True)
    assert batch == [] and refetch


def test_without_a_cursor_the_batch_sets_it():
    batch, refetch = batches.follow(None, _records(500, 501), moved=True)
    assert _offsets(batch) == [500, 501] and not refetch


def test_a_batch_wholly_below_the_cursor_delivers_nothing():
    batch, refetch = batches.follow(50, _records(10, 11), moved=True)
    assert batch == [] and not refetch


class _Seeks:
    """The aiokafka consumer thread as far as seeking goes: where each seek went."""

    def __init__(self):
        self.seeks = []

    def seek(self, tp, offset):
        self.seeks.append((tp, offset))


def _consumer(committed, resume, resumed):
    """A BatchConsumer with just what perform_seek touches (no broker, no app)."""
    consumer = object.__new__(batches.BatchConsumer)
    consumer.cursors, consumer.epochs, consumer._moves = {}, {}, {}
    consumer._delivering = asyncio.Lock()
    consumer._committed_offset, consumer._read_offset = {}, {}
    consumer._thread = _Seeks()
    consumer.log = SimpleNamespace(dev=lambda *a, **k: None)

    async def seek_to_committed():
        return dict(committed)

    consumer.seek_to_committed = seek_to_committed
    consumer.assignment = lambda: set(committed)
    consumer.app = SimpleNamespace(
        batch_sinks={tp.topic: None for tp in committed},
        resume_offsets=lambda assigned: {tp: resume.get(tp) for tp in assigned},
        on_resume_seek=lambda plan, before, starts: resumed.append((plan, starts)))
    return consumer


@pytest.mark.asyncio
async def test_an_assignment_seeks_every_source_partition_with_its_cursor_and_epoch():
    from faust.types import TP

    at_marker, at_commit, unknown = TP("src", 0), TP("src", 1), TP("src", 2)
    committed = {at_marker: 10, at_commit: 20, unknown: 30}
    resumed: list = []
    consumer = _consumer(committed, {at_marker: 15, at_commit: 20}, resumed)
    consumer.cursors = {at_marker: 40, at_commit: 41, unknown: 42}  # from before
    consumer.epochs = {at_commit: 3}
    await consumer.perform_seek()
    # Each partition sought where the state resumes, not only the one whose marker
    # differs from the committed offset: a cursor left at 41 would take a later
    # batch's gap (records fetched and dropped around the rebalance) for read.
    assert sorted(consumer._thread.seeks[-3:]) == [(at_marker, 15), (at_commit, 20),
                                                   (unknown, 30)]
    assert consumer.cursors == {at_marker: 15, at_commit: 20, unknown: 30}
    assert consumer.epochs == {at_marker: 1, at_commit: 4, unknown: 1}
    assert resumed == [({at_marker: 15}, {at_marker: 15, at_commit: 20, unknown: 30})]


@pytest.mark.asyncio
async def test_nothing_is_delivered_while_an_assignment_seeks():
    from faust.types import TP

    tp = TP("src", 0)
    consumer = _consumer({tp: 5}, {tp: 5}, [])
    gate = asyncio.Event()
    inner = consumer.seek_to_committed

    async def slow_seek_to_committed():  # the thread round trip, held open
        await gate.wait()
        return await inner()

    consumer.seek_to_committed = slow_seek_to_committed
    seeking = asyncio.create_task(consumer.perform_seek())
    await asyncio.sleep(0)
    assert consumer._delivering.locked()  # _drain_messages waits for this lock
    gate.set()
    await seeking
    assert not consumer._delivering.locked()


@pytest.mark.asyncio
async def test_the_worker_producer_is_idempotent(tmp_path):
    # A dead letter (or changelog write) retried after a lost acknowledgement must not
    # be written twice: Faust turns idempotence on only for exactly-once transactions.
    from stream.settings import Settings
    from stream.worker.app import create_app

    worker = create_app(Settings(broker="127.0.0.1:39092", web_port=16067,
                                 processing_guarantee="at_least_once"))
    producer = worker.app.producer._new_producer()
    # aiokafka keeps a transaction manager (producer id and sequence numbers) only
    # when enable_idempotence is on.
    assert producer._txn_manager is not None
    await producer.client.close()


@pytest.mark.asyncio
async def test_changelog_records_go_into_a_memory_store_as_fausts_decode_puts_them():
    # The restore's short cut must leave the table exactly as Faust's own decode and
    # apply_changelog_batch do: values, progress markers, tombstones (also one set
    # again later in the batch), and each key's partition.
    import orjson
    from aiokafka.structs import ConsumerRecord
    from faust.stores.memory import Store as MemoryStore
    from faust.types import TP

    from stream.settings import Settings
    from stream.worker.app import create_app

    worker = create_app(Settings(broker="127.0.0.1:39092", web_port=16068, store="memory://"))
    direct, faust_way = (worker.tables[name] for name in list(worker.tables)[:2])
    assert type(direct.data) is type(faust_way.data) is MemoryStore
    rows = [("contact:aa", b'{"k":"contact","p":2,"rcv":[1.5,"e1","phone","8","rfs"]}'),
            ("!offset:2", b"41"), ("contact:bb", b'{"k":"contact","p":2}'),
            ("contact:aa", None), ("contact:cc", b'{"k":"contact","p":2}'), ("contact:cc", None),
            ("contact:bb", None), ("contact:bb", b'{"k":"contact","p":2,"x":1}')]
    for table in (direct, faust_way):
        topic = table.changelog_topic.get_topic_name()
        records = [ConsumerRecord(topic, 2, i, 0, 0, orjson.dumps(k), v, None, 0, 0, ())
                   for i, (k, v) in enumerate(rows)]
        if table is direct:
            batches.into_memory_store(table, 2, records)
        else:
            consumer = SimpleNamespace(app=SimpleNamespace(consumer_generation_id=1))
            decode = table.changelog_topic.schema.compile(worker.app, default_propagate=True)
            table.apply_changelog_batch([
                await decode(batches.BatchConsumer._to_message(consumer, TP(topic, 2), r))
                for r in records])
    assert direct.data.data == faust_way.data.data == {
        "!offset:2": b"41", "contact:bb": b'{"k":"contact","p":2,"x":1}'}
    assert direct.data._key_partition == faust_way.data._key_partition
