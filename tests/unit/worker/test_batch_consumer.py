"""The batch consumer's delivery, refetch, restore and commit paths, and the changelog
writer's drain, called directly on the worker's own app (stream/worker/batches.py,
stream/worker/changelog.py).

The app is the one ``create_app`` builds (real tables, stores, schemas and metrics);
only what needs a broker is stood in for: the consumer thread's ``seek``, the
high-water mark, the commit request and the producer. What a broker adds (a real
transaction-marker gap, a restore read from Kafka into each store kind) is in
tests/integration/test_batches_live.py and the store modes of test_pipeline.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka.structs import ConsumerRecord
from faust.stores.memory import Store as MemoryStore
from faust.types import TP

from stream.settings import Settings
from stream.state import progress
from stream.worker import batches
from stream.worker.app import Worker, create_app
from stream.worker.changelog import ChangelogWriter, record_reader
from stream.worker.localstate import LocalStore

CONTACTS = "cspa.contacts.v1"
CALLS = "cspa.calls.v1"
PORTS = iter(range(16100, 16200))


def _worker(store: str = "memory://") -> Worker:
    return create_app(Settings(broker="127.0.0.1:39092", web_port=next(PORTS), store=store))


class _Thread:
    """The consumer thread as far as a refetch goes: where each seek went."""

    def __init__(self) -> None:
        self.seeks: list[tuple[TP, int]] = []

    def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


def _consumer(worker: Worker) -> tuple[batches.BatchConsumer, list[batches.Batch]]:
    """The worker's consumer, its sinks recording what they were handed."""
    consumer = batches.batch_consumer(worker.app)
    consumer._thread = _Thread()
    consumer.highwater = lambda tp: 1_000  # type: ignore[method-assign]
    delivered: list[batches.Batch] = []

    async def sink(item: batches.Batch) -> None:
        delivered.append(item)

    worker.app.batch_sinks = {topic: sink for topic in worker.app.batch_sinks}
    return consumer, delivered


def _records(topic: str, partition: int, *offsets: int, value: bytes | None = b"v",
             key: bytes = b'"k"') -> list[ConsumerRecord]:
    return [ConsumerRecord(topic, partition, o, 0, 0, key, value, None, 0, 0, ())
            for o in offsets]


def _offsets(batch: batches.Batch) -> list[int]:
    return [r.offset for r in batch.records]


# -- _deliver and _contiguous --------------------------------------------------------------


@pytest.mark.asyncio
async def test_each_partition_goes_to_its_agent_as_one_batch_with_its_epoch():
    consumer, delivered = _consumer(_worker())
    a, b = TP(CONTACTS, 0), TP(CALLS, 3)
    consumer.epochs = {a: 2}
    await consumer._deliver({a: _records(CONTACTS, 0, 5, 6, 7),
                             b: _records(CALLS, 3, 0, 1)}, None, {})
    assert [(d.tp, d.epoch, _offsets(d)) for d in delivered] == [(a, 2, [5, 6, 7]),
                                                                 (b, 0, [0, 1])]
    assert consumer.cursors == {a: 8, b: 2}


@pytest.mark.asyncio
async def test_records_delivered_before_are_not_delivered_again():
    consumer, delivered = _consumer(_worker())
    tp = TP(CONTACTS, 0)
    consumer.cursors = {tp: 6}
    await consumer._deliver({tp: _records(CONTACTS, 0, 4, 5, 6, 7)}, None, {})
    await consumer._deliver({tp: _records(CONTACTS, 0, 5, 6, 7)}, None, {})
    assert [_offsets(d) for d in delivered] == [[6, 7]] and consumer.cursors == {tp: 8}


@pytest.mark.asyncio
async def test_a_gap_with_no_seek_under_the_fetch_is_delivered():
    # Transaction markers hold offsets without data records: 10 and 11 here.
    consumer, delivered = _consumer(_worker())
    tp = TP(CONTACTS, 1)
    consumer.cursors, consumer._moves = {tp: 10}, {tp: 3}
    await consumer._deliver({tp: _records(CONTACTS, 1, 12, 13)}, None, {tp: 3})
    assert [_offsets(d) for d in delivered] == [[12, 13]]
    assert consumer.cursors == {tp: 14} and consumer._thread.seeks == []


@pytest.mark.asyncio
async def test_a_gap_after_a_seek_under_the_fetch_is_read_again_from_the_cursor():
    worker = _worker()
    consumer, delivered = _consumer(worker)
    tp = TP(CONTACTS, 1)
    consumer.cursors, consumer._moves = {tp: 10}, {tp: 4}  # sought once more since the fetch
    await consumer._deliver({tp: _records(CONTACTS, 1, 40, 41)}, None, {tp: 3})
    assert delivered == [] and consumer.cursors == {tp: 10}
    assert consumer._thread.seeks == [(tp, 10)]
    assert consumer._moves == {tp: 5}  # a fetch in flight across this seek is moved too
    assert worker.metrics.refetches.labels(CONTACTS)._value.get() == 1


@pytest.mark.asyncio
async def test_a_partition_no_longer_fetched_is_left_alone():
    consumer, delivered = _consumer(_worker())
    kept, gone, buffered = TP(CONTACTS, 0), TP(CONTACTS, 1), TP(CONTACTS, 2)
    consumer._buffered_partitions = {buffered}
    await consumer._deliver({kept: _records(CONTACTS, 0, 1), gone: _records(CONTACTS, 1, 1),
                             buffered: _records(CONTACTS, 2, 1)}, {kept}, {})
    assert [d.tp for d in delivered] == [kept, buffered]


@pytest.mark.asyncio
async def test_a_revocation_makes_every_batch_handed_out_stale_before_it_waits_for_agents():
    # An agent idle between two batches passes the wait; the batch it takes next was
    # folded while the revocation went on, and its markers were sent after the
    # recovery had dropped the partition (the seek-race test's failure of 2026-12-04).
    worker = _worker()
    consumer, delivered = _consumer(worker)
    owned, other = TP(CONTACTS, 0), TP(CALLS, 3)
    consumer.assignment = lambda: {owned, other}  # type: ignore[method-assign]
    await consumer._deliver({owned: _records(CONTACTS, 0, 5, 6)}, None, {})
    worker.app.conf.stream_wait_empty = False  # (Faust's own wait needs a running consumer)
    seen: list[list[bool]] = []

    async def wait_idle() -> None:
        seen.append([consumer.epoch(b.tp) != b.epoch for b in delivered])

    worker.app.wait_idle = wait_idle
    await worker.app._consumer_wait_empty(consumer, logging.getLogger("test"))
    assert seen == [[True]]  # stale by the time the agents are waited for
    assert consumer.epochs == {owned: 1, other: 1}


@pytest.mark.asyncio
async def test_delivery_stops_when_a_rebalance_begins():
    worker = _worker()
    consumer, delivered = _consumer(worker)
    first, second = TP(CONTACTS, 0), TP(CONTACTS, 1)
    sink = worker.app.batch_sinks[CONTACTS]

    async def rebalancing_sink(item: batches.Batch) -> None:
        await sink(item)
        worker.app.consumer_generation_id += 1

    worker.app.batch_sinks[CONTACTS] = rebalancing_sink
    await consumer._deliver({first: _records(CONTACTS, 0, 1), second: _records(CONTACTS, 1, 1)},
                            None, {})
    assert [d.tp for d in delivered] == [first]
    assert second not in consumer.cursors  # the rebalance's seek positions it again


def _full_channel(worker: Worker) -> Any:
    """A real one-batch channel as an agent's stream subscribes to it, not reading.

    Returns the subscription: the channel holds it weakly, so the test must keep it.
    """
    worker.app.flow_control.resume()
    channel = worker.app.channel(maxsize=1)
    worker.app.batch_sinks[CONTACTS] = channel.put
    return channel.clone(is_iterator=True)  # its queue takes the puts


@pytest.mark.asyncio
async def test_a_put_a_rebalance_cancels_drops_the_batch_and_delivery_goes_on():
    # A revocation clears the agents' channels (Faust's flow_control.clear()), which
    # cancels a put waiting for room. It must not end the fetcher (the worker exited);
    # the cursor stays before the dropped batch (the assignment's seek reads it again).
    worker = _worker()
    consumer, _ = _consumer(worker)
    subscription = _full_channel(worker)
    first, second = TP(CONTACTS, 0), TP(CONTACTS, 1)
    await consumer._deliver({first: _records(CONTACTS, 0, 5)}, None, {})  # fills it
    waiting = asyncio.ensure_future(
        consumer._deliver({second: _records(CONTACTS, 1, 7)}, None, {}))
    await asyncio.sleep(0.05)
    assert not waiting.done(), "the second put should wait for room"
    worker.app.flow_control.clear()
    await asyncio.wait_for(waiting, 5)
    assert consumer.cursors == {first: 6}
    assert worker.metrics.stale_batches.labels(CONTACTS)._value.get() == 1
    assert subscription.queue.qsize() == 0  # the revocation cleared it


@pytest.mark.asyncio
async def test_a_put_still_waiting_when_the_flow_stops_drops_the_batch():
    worker = _worker()
    consumer, _ = _consumer(worker)
    subscription = _full_channel(worker)
    first, second = TP(CONTACTS, 0), TP(CONTACTS, 1)
    await consumer._deliver({first: _records(CONTACTS, 0, 5)}, None, {})
    waiting = asyncio.ensure_future(
        consumer._deliver({second: _records(CONTACTS, 1, 7)}, None, {}))
    await asyncio.sleep(0.05)
    assert not waiting.done(), "the second put should wait for room"
    consumer.stop_flow()  # a revocation begins
    await asyncio.wait_for(waiting, 5)
    assert consumer.cursors == {first: 6}
    assert worker.metrics.stale_batches.labels(CONTACTS)._value.get() == 1
    assert subscription.queue.qsize() == 1  # the first batch only


@pytest.mark.asyncio
async def test_a_cancelled_fetcher_is_still_cancelled_while_it_puts():
    worker = _worker()
    consumer, _ = _consumer(worker)
    subscription = _full_channel(worker)
    await consumer._deliver({TP(CONTACTS, 0): _records(CONTACTS, 0, 5)}, None, {})
    waiting = asyncio.ensure_future(
        consumer._deliver({TP(CONTACTS, 1): _records(CONTACTS, 1, 7)}, None, {}))
    await asyncio.sleep(0.05)
    assert not waiting.done(), "the second put should wait for room"
    waiting.cancel()  # the fetcher stopping
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiting, 5)
    assert subscription.queue.qsize() == 1
    assert subscription.queue.qsize() == 1


@pytest.mark.asyncio
async def test_other_topics_take_fausts_path_one_record_at_a_time():
    worker = _worker()
    consumer, delivered = _consumer(worker)
    tp = TP("cspa-other-topic", 0)
    seen: list[int] = []

    async def callback(message: Any) -> None:
        seen.append(message.offset)

    consumer.callback = callback
    consumer._read_offset[tp] = 2
    await consumer._deliver({tp: _records(tp.topic, 0, 1, 2, 3)}, None, {})
    assert delivered == [] and seen == [2, 3] and consumer._read_offset[tp] == 3


# -- _restore and _decodes_alike -----------------------------------------------------------


def _restoring(worker: Worker, active: bool = True) -> tuple[Any, TP, Any, list[int]]:
    """The contacts table's changelog partition 2 under Faust's recovery (or standby)."""
    consumer = batches.batch_consumer(worker.app)
    table = worker.tables[CONTACTS]
    tp = TP(table.changelog_topic.get_topic_name(), 2)
    recovery = worker.app.tables.recovery
    (recovery.active_tps if active else recovery.standby_tps).add(tp)
    recovery.tp_to_table[tp] = table
    passed: list[int] = []  # what went on along Faust's own path

    async def callback(message: Any) -> None:
        passed.append(message.offset)

    consumer.callback = callback
    consumer._read_offset[tp] = None
    return consumer, tp, table, passed


ROWS = [("contact:aa", b'{"k":"contact","p":2,"x":1}'), ("!offset:2", b"41"),
        ("contact:bb", b'{"k":"contact","p":2}'), ("contact:aa", None),
        ("contact:cc", b'{"k":"contact","p":2,"y":2}')]


def _changelog(tp: TP, rows: list[tuple[str, bytes | None]], first: int = 0) -> list[Any]:
    return [ConsumerRecord(tp.topic, tp.partition, first + i, 0, 0, orjson.dumps(k), v, None,
                           0, 0, ()) for i, (k, v) in enumerate(rows)]


class _Table:
    """A table as ``_decodes_alike`` sees it: its store and its key conversion."""

    def __init__(self, data: Any, to_key: Any) -> None:
        self.data, self._to_key = data, to_key


def _contents(table: Any) -> dict[str, bytes]:
    return dict(record_reader(table, 2).items())  # (ROWS are partition 2's)


@pytest.mark.asyncio
@pytest.mark.parametrize("store", ["memory://", "local://"])
async def test_a_changelog_batch_goes_into_the_table_at_once_but_its_last_record(store):
    worker = _worker(store)
    consumer, tp, table, passed = _restoring(worker)
    positions = worker.app.tables.recovery.active_offsets
    positions[tp] = 0  # offset 0 restored already: its older value must not come back
    table.data[orjson.loads(b'"contact:aa"')] = b'{"k":"contact","p":2,"restored":1}'
    assert await consumer._restore(tp, _changelog(tp, [("contact:aa", b"stale"), *ROWS]))
    # Offsets 1-4 applied here, offset 5 (the last) along Faust's path, which ends the
    # recovery when the partition's position reaches the end.
    assert positions[tp] == 4 and passed == [5]
    # All of them go in here; the last along Faust's path too, to the same value.
    assert _contents(table) == {"!offset:2": b"41", "contact:bb": b'{"k":"contact","p":2}',
                                "contact:cc": b'{"k":"contact","p":2,"y":2}'}
    assert consumer._direct == {table: True}
    expected_store = MemoryStore if store == "memory://" else LocalStore
    assert type(table.data) is expected_store


@pytest.mark.asyncio
async def test_a_standby_batch_moves_the_standby_position():
    worker = _worker()
    consumer, tp, table, passed = _restoring(worker, active=False)
    assert await consumer._restore(tp, _changelog(tp, ROWS[:3], first=10))
    assert worker.app.tables.recovery.standby_offsets[tp] == 11 and passed == [12]
    assert tp not in worker.app.tables.recovery.active_offsets


@pytest.mark.asyncio
async def test_records_faust_still_holds_go_in_first():
    worker = _worker()
    consumer, tp, table, _ = _restoring(worker)
    recovery = worker.app.tables.recovery
    decode = table.changelog_topic.schema.compile(worker.app, default_propagate=True)
    older = _changelog(tp, [("contact:aa", b"older"), ("contact:zz", b"older")])
    recovery.buffers[table] = [await decode(consumer._to_message(tp, r)) for r in older]
    recovery.active_offsets[tp] = 1
    assert await consumer._restore(tp, _changelog(tp, [("contact:aa", b"newer"),
                                                       ("!offset:2", b"3")], first=2))
    assert _contents(table) == {"contact:aa": b"newer", "contact:zz": b"older",
                                "!offset:2": b"3"}
    assert recovery.buffers[table] == []


@pytest.mark.asyncio
async def test_a_batch_restored_already_is_taken_and_left_as_it_is():
    worker = _worker()
    consumer, tp, table, passed = _restoring(worker)
    worker.app.tables.recovery.active_offsets[tp] = 9
    assert await consumer._restore(tp, _changelog(tp, ROWS))
    assert _contents(table) == {} and passed == []


@pytest.mark.asyncio
async def test_partitions_not_restoring_or_with_a_changelog_hook_take_fausts_path():
    worker = _worker()
    consumer, tp, table, _ = _restoring(worker)
    other = TP(tp.topic, 5)
    assert not await consumer._restore(other, _changelog(other, ROWS))
    table._on_changelog_event = lambda event: None
    assert not await consumer._restore(tp, _changelog(tp, ROWS))
    assert _contents(table) == {}


@pytest.mark.asyncio
async def test_records_go_in_undecoded_only_once_one_decoded_both_ways_is_alike():
    worker = _worker()
    consumer, tp, table, _ = _restoring(worker)
    decode = table.changelog_topic.schema.compile(worker.app, default_propagate=True)
    tombstones = _changelog(tp, [("contact:aa", None)])
    assert not await consumer._decodes_alike(table, tp, tombstones, decode)
    assert table not in consumer._direct  # no record with a value yet: asked again later
    assert await consumer._decodes_alike(table, tp, _changelog(tp, ROWS), decode)
    assert consumer._direct == {table: True}
    # A key that does not come back as the table's key: Faust's decode for good.
    other = _Table(table.data, lambda key: ("not", key))
    assert not await consumer._decodes_alike(other, tp, _changelog(tp, ROWS), decode)
    # A store of another kind: Faust's decode and apply_changelog_batch.
    odd = _Table({}, table._to_key)
    assert not await consumer._decodes_alike(odd, tp, _changelog(tp, ROWS), decode)
    assert consumer._direct == {table: True, other: False}


@pytest.mark.asyncio
async def test_a_store_of_another_kind_gets_fausts_decode_and_apply():
    worker = _worker()
    consumer, tp, table, passed = _restoring(worker)
    consumer._direct[table] = False
    assert await consumer._restore(tp, _changelog(tp, ROWS))
    assert _contents(table) == {"!offset:2": b"41", "contact:bb": b'{"k":"contact","p":2}',
                                "contact:cc": b'{"k":"contact","p":2,"y":2}'}
    assert passed == [4]


# -- commit_markers --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_only_markers_that_moved_are_committed():
    consumer = batches.batch_consumer(_worker().app)
    a, b, c = TP(CONTACTS, 0), TP(CONTACTS, 1), TP(CALLS, 0)
    consumer._committed_offset.update({a: 5, b: 7})
    asked: list[dict[TP, int]] = []

    async def commit(offsets: dict[TP, int]) -> bool:
        asked.append(dict(offsets))
        return True

    consumer._commit_offsets = commit  # type: ignore[method-assign]
    assert await consumer.commit_markers({a: 5, b: 9, c: 1})
    assert asked == [{b: 9, c: 1}]
    assert not await consumer.commit_markers({a: 5})
    assert asked == [{b: 9, c: 1}]


@pytest.mark.asyncio
async def test_a_failed_commit_still_ends_the_commit_sensors_span():
    consumer = batches.batch_consumer(_worker().app)
    spans: list[str] = []
    consumer.app.sensors = SimpleNamespace(  # type: ignore[misc]
        on_commit_initiated=lambda c: spans.append("start") or "state",
        on_commit_completed=lambda c, state: spans.append(f"end {state}"))

    async def refused(offsets: dict[TP, int]) -> bool:
        raise RuntimeError("refused")

    consumer._commit_offsets = refused  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await consumer.commit_markers({TP(CONTACTS, 0): 3})
    assert spans == ["start", "end state"]


# -- changelog: record_reader and drain ------------------------------------------------------


def test_the_agents_read_a_memory_store_through_its_own_dict():
    table = _worker("memory://").tables[CONTACTS]
    assert type(table.data) is MemoryStore
    reader = record_reader(table, 1)
    assert reader is table.data.data
    table.data["contact:aa"] = b"x"
    assert reader["contact:aa"] == b"x"


def test_the_agents_read_a_local_store_through_the_partition_s_own_dict():
    table = _worker("local://").tables[CONTACTS]
    assert isinstance(table.data, LocalStore)
    reader = record_reader(table, 1)
    assert reader is table.data.part(1) is record_reader(table, 1)
    table.data["contact:aa"] = b'{"k":"contact","p":1}'  # (a record names its partition)
    table.data["contact:bb"] = b'{"k":"contact","p":0}'
    assert reader == {"contact:aa": b'{"k":"contact","p":1}'}
    assert record_reader(table, 0) == {"contact:bb": b'{"k":"contact","p":0}'}


def test_the_agents_read_any_other_store_itself():
    class OtherStore(dict):  # a store of another kind (rocksdb's, say) with a .data
        data = {"contact:aa": b"not this"}

    store = OtherStore({"contact:aa": b"x"})
    assert record_reader(SimpleNamespace(data=store), 0) is store


class _Producer:
    """aiokafka's producer as far as ``send_batch`` goes; acknowledges when told to."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, list[tuple[bytes, bytes]], asyncio.Future[Any]]] = []
        self.next_offset = 100

    def create_batch(self) -> Any:
        rows: list[tuple[bytes, bytes]] = []
        return SimpleNamespace(rows=rows, append=lambda key, value, timestamp: rows.append(
            (key, value)) or True)

    async def send_batch(self, batch: Any, topic: str, partition: int) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.sent.append((partition, batch.rows, future))
        return future

    def land(self) -> None:
        for partition, rows, future in self.sent:
            if not future.done():
                future.set_result(SimpleNamespace(partition=partition, offset=self.next_offset))
                self.next_offset += len(rows)


@pytest.mark.asyncio
async def test_drain_waits_for_every_write_and_sends_the_held_back_marker():
    worker = _worker()
    table = worker.tables[CONTACTS]
    producer = _Producer()
    worker.app.producer._producer = producer  # type: ignore[attr-defined]
    writer = ChangelogWriter(worker.app, table)
    frontier = progress.Frontier()
    frontier.advance(2, 40)
    marker = progress.marker_key(2)
    await writer.write({"contact:aa": {"k": "contact", "p": 2}}, {"contact:aa": 2, marker: 2},
                       frontier)
    # The record is on its way; its marker waits until the record has landed.
    assert [rows for _, rows, _ in producer.sent] == [[(b'"contact:aa"', b'{"k":"contact","p":2}')]]
    draining = asyncio.create_task(writer.drain())
    await asyncio.sleep(0.01)
    assert not draining.done()  # a checkpoint must not be taken before Kafka has it
    producer.land()
    await asyncio.sleep(0.01)
    assert not draining.done()  # the marker itself is now on its way
    assert [rows for _, rows, _ in producer.sent][1] == [(b'"!offset:2"', b"41")]
    producer.land()
    await asyncio.wait_for(draining, 5)
    assert writer.flights == deque() and writer.due == [] and writer.durable == {2: 41}
    assert record_reader(table, 2)[marker] == b"41"



@pytest.mark.asyncio
async def test_a_rebalance_waits_for_every_changelog_write_to_land():
    # A write landing after the revocation's recovery dropped its partition from a
    # local:// store put the offset and marker back without the records before them.
    worker = _worker("local://")
    producer = _Producer()
    worker.app.producer._producer = producer  # type: ignore[attr-defined]
    frontier = progress.Frontier()
    frontier.advance(2, 40)
    await worker.writers[CONTACTS].write({"contact:aa": {"k": "contact", "p": 2}},
                                         {"contact:aa": 2, progress.marker_key(2): 2}, frontier)
    waiting = asyncio.create_task(worker.wait_idle())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    producer.land()  # the record; then its marker goes out
    await asyncio.sleep(0.01)
    assert not waiting.done()
    producer.land()
    await asyncio.wait_for(waiting, 5)
    assert worker.tables[CONTACTS].data.offsets == {2: 101}


@pytest.mark.asyncio
async def test_a_write_kafka_refused_does_not_stop_the_rebalance():
    worker = _worker("local://")
    producer = _Producer()
    worker.app.producer._producer = producer  # type: ignore[attr-defined]
    writer = worker.writers[CONTACTS]
    await writer.write({"contact:aa": {"k": "contact", "p": 2}}, {"contact:aa": 2},
                       progress.Frontier())
    producer.sent[0][2].set_exception(OSError("refused"))
    await asyncio.wait_for(worker.wait_idle(), 5)
    assert len(writer.flights) == 1  # still unvouched: the agent's next write raises
