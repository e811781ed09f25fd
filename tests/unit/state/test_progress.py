"""Progress markers: where a partition's state ends, and the seeks made from them."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import orjson
import pytest
from faust.types import TP

from stream.state import progress
from stream.worker import changelog
from stream.worker.changelog import ChangelogWriter, encode_key

A0, A1, A2 = TP("a", 0), TP("a", 1), TP("a", 2)
CHANGELOG = TP("app-records-a-changelog", 0)


def test_marker_keys_are_not_record_keys():
    assert progress.is_marker(progress.marker_key(3))
    assert not progress.is_marker("contact:" + "ab" * 8)
    assert progress.marker_key(3) != progress.marker_key(13)


def test_resume_offset_reads_the_marker_of_that_partition_only():
    table = {progress.marker_key(1): progress.encode(41), progress.marker_key(2): b"7"}
    assert progress.resume_offset(table, 1) == 41
    assert progress.resume_offset(table, 2) == 7
    assert progress.resume_offset(table, 0) is None


def test_rewind_plan_moves_back_when_the_commit_ran_ahead_of_the_state():
    plan = progress.rewind_plan([A0, A1, A2], {A0: 100, A1: 50, A2: 9},
                                {A0: 97, A1: 50, A2: 12})
    assert plan == {A0: 97, A2: 12}  # A1 agrees: no seek


def test_rewind_plan_replays_records_written_before_any_marker():
    # Faust reports a committed offset of 0 as None
    assert progress.rewind_plan([A0, A1], {A0: 30, A1: None}, {A0: 0, A1: 0}) == {A0: 0}


def test_rewind_plan_leaves_a_partition_the_state_knows_nothing_of_to_the_group():
    assert progress.rewind_plan([A0], {A0: 30}, {A0: None}) == {}


def test_start_offset_is_the_marker_else_the_log_start_if_records_exist():
    table = {progress.marker_key(1): b"41"}
    assert progress.start_offset(table, 1, has_records=True) == 41
    assert progress.start_offset(table, 0, has_records=True) == 0
    assert progress.start_offset(table, 0, has_records=False) is None


def test_rewind_plan_leaves_other_topics_alone():
    assert progress.rewind_plan([A0, CHANGELOG], {A0: 5, CHANGELOG: 80}, {A0: 5}) == {}


class _Batch:
    def __init__(self, room: int, producer: _Producer | None = None) -> None:
        self.items: list[tuple[bytes, bytes]] = []
        self.room = room
        self.producer = producer

    def append(self, key, value, timestamp):
        if len(self.items) >= self.room:
            return None
        self.items.append((key, value))
        if self.producer is not None:
            self.producer.appended += 1
        return object()


class _Producer:
    """Kafka's producer as the writer sees it: ``send_batch`` returns a delivery future."""

    def __init__(self, room: int = 1000) -> None:
        self.sent: list[tuple[str, bytes, int]] = []
        self.futures: list[asyncio.Future] = []
        self.room = room
        self.appended = 0  # records and hops put in a batch, sent or not

    def create_batch(self):
        return _Batch(self.room, self)

    async def send_batch(self, batch, topic, partition):
        self.sent += [(orjson.loads(k), v, partition) for k, v in batch.items]
        fut = asyncio.get_running_loop().create_future()
        self.futures.append(fut)
        return fut


class _Topic:
    def get_topic_name(self):
        return "app-records-changelog"


def _writer(room: int = 1000):
    producer = _Producer(room)
    app = SimpleNamespace(producer=SimpleNamespace(_producer=producer))
    store = SimpleNamespace(data={}, _key_partition={})
    table = SimpleNamespace(changelog_topic=_Topic(), data=store, key_serializer="json")
    return ChangelogWriter(app, table), producer, store.data


def _frontier(starts, *seen):
    frontier = progress.Frontier()
    for partition, offset in starts.items():
        frontier.reset(partition, offset)
    for partition, offset in seen:
        frontier.advance(partition, offset)
    return frontier


def _by_partition(sent):
    out: dict[int, list] = {}
    for key, value, partition in sent:
        out.setdefault(partition, []).append((key, value))
    return out


def test_keys_are_written_as_fausts_json_key_serializer_writes_them():
    from faust.serializers import codecs

    for key in (progress.marker_key(3), "contact:" + "ab" * 8, "call:0f" * 4):
        assert encode_key(key) == codecs.dumps("json", key)


@pytest.mark.asyncio
async def test_a_full_record_batch_is_sent_and_the_next_one_keeps_the_order():
    writer, producer, _ = _writer(room=2)
    frontier = _frontier({0: 0}, (0, 4))
    pending = {f"contact:{i:02x}": {"p": 0} for i in range(5)}
    owners = dict.fromkeys(pending, 0)
    await writer.write(pending, owners, frontier)
    assert [k for k, _, _ in producer.sent] == [f"contact:{i:02x}" for i in range(5)]
    assert len(producer.futures) == 3  # 2 + 2 + 1 records


@pytest.mark.asyncio
async def test_markers_follow_their_records_once_those_have_landed():
    writer, producer, data = _writer()
    frontier = _frontier({0: 10, 1: 4}, (0, 10), (1, 4), (0, 11))
    owners = {progress.marker_key(0): 0, "contact:aa": 0, progress.marker_key(1): 1,
              "contact:bb": 0}
    pending = {"contact:aa": {"p": 0}, "contact:bb": {"p": 0}}
    await writer.write(pending, owners, frontier)
    # records now, on the partition of the event that changed them; no marker yet
    assert [(k, p) for k, _, p in producer.sent] == [("contact:aa", 0), ("contact:bb", 0)]
    assert pending == {} and owners == {}

    # the next batch does not wait for the broker; its records go out, still no marker
    frontier.advance(0, 12)
    await writer.write({"contact:cc": {"p": 0}}, {progress.marker_key(0): 0, "contact:cc": 0},
                       frontier)
    assert [k for k, _, _ in producer.sent] == ["contact:aa", "contact:bb", "contact:cc"]

    # once the first write has landed, its markers go out with the next write, each
    # standing before that write's records in its changelog partition
    producer.futures[0].set_result(None)
    await writer.write({"contact:dd": {"p": 0}}, {"contact:dd": 0}, frontier)
    assert _by_partition(producer.sent[3:]) == {
        0: [(progress.marker_key(0), b"12"), ("contact:dd", orjson.dumps({"p": 0}))],
        1: [(progress.marker_key(1), b"5")]}
    assert progress.resume_offset(data, 0) == 12 and progress.resume_offset(data, 1) == 5


@pytest.mark.asyncio
async def test_a_batchs_marker_waits_for_its_hops_as_for_its_records():
    """The hops of a contacts batch (stream/worker/rekey.py) go in its records' flight: until
    Kafka has them too, no marker vouches for the batch (a crash re-reads it and sends them
    again)."""
    writer, producer, data = _writer()
    writer.hops_to = "app-hops"
    frontier = _frontier({0: 10}, (0, 10))
    hop = (3, b'"child-key"', b'{"c":"aa"}')  # (the fake producer reads keys as JSON)
    await writer.write({"contact:aa": {"p": 0}}, {progress.marker_key(0): 0, "contact:aa": 0},
                       frontier, [hop])
    assert [(k, p) for k, _, p in producer.sent] == [("contact:aa", 0), ("child-key", 3)]
    records, hops = producer.futures
    records.set_result(None)  # the records have landed, the hop has not
    await writer.write({}, {}, frontier)
    assert [k for k, _, _ in producer.sent[2:]] == [] and writer.durable == {}
    hops.set_result(None)
    await writer.write({}, {}, frontier)
    assert [k for k, _, _ in producer.sent[2:]] == [progress.marker_key(0)]
    assert progress.resume_offset(data, 0) == 11


async def _written(turn, records, hops):
    """A write of ``records`` records and ``hops`` hops: what was sent and stored, what a
    task beside it saw at each turn of the loop it had (records and hops put in a
    producer batch, records stored), and how much had been sent when a drain (a
    checkpoint's, a rebalance's) started in the first turn after the store began to
    fill got the writer and returned (None: no such turn)."""
    writer, producer, data = _writer(room=100)
    writer.hops_to = "app-hops"
    pending = {f"contact:{i:04x}": {"p": i % 3} for i in range(records)}
    owners = {k: r["p"] for k, r in pending.items()} | {progress.marker_key(0): 0}
    made = [(i % 4, orjson.dumps(f"child-{i}"), b"{}") for i in range(hops)]
    turns, done, drains = [], False, []

    async def drain():
        await writer.drain()
        return len(producer.sent)

    async def beside():
        while not done:
            turns.append((producer.appended, len(data)))
            if 0 < len(data) < records and not drains:
                drains.append(asyncio.ensure_future(drain()))
            for fut in producer.futures:  # acknowledged as they come
                if not fut.done():
                    fut.set_result(None)
            await asyncio.sleep(0)

    task = asyncio.create_task(beside())
    await asyncio.sleep(0)
    turns.clear()
    await writer.write(pending, owners, _frontier({0: 0}, (0, 7)), made, turn)
    drained = await drains[0] if drains else None
    done = True
    await task
    stored = {k: v for k, v in data.items() if not progress.is_marker(k)}  # (the drain's)
    return producer.sent[:records + hops], stored, turns, drained


@pytest.mark.asyncio
async def test_a_large_write_lets_the_loop_go_between_chunks_and_sends_the_same():
    """A catch-up's batch writes thousands of records: encoded and handed to the producer
    ``CHUNK`` at a time (stream/worker/turn.py), the loop is let go between chunks."""
    from stream.worker.turn import WHOLE, Turn

    whole = await _written(WHOLE, 300, 130)
    sliced = await _written(Turn(seconds=0.0), 300, 130)
    assert sliced[0] == whole[0] and sliced[1] == whole[1]  # the same sends, in order
    assert len(whole[0]) == 300 + 130 and len(whole[1]) == 300
    assert whole[2] == [] and whole[3] is None  # whole: nothing else had the loop
    # 300 records encoded (5 chunks), then 300 stored and sent (4) and 130 hops (2)
    assert len(sliced[2]) >= 11, sliced[2]
    # The store was filled a chunk at a time, not in one go, and so were the hops sent...
    assert len({stored for _, stored in sliced[2] if 0 < stored < 300}) >= 3, sliced[2]
    assert any(300 < appended < 430 for appended, _ in sliced[2]), sliced[2]
    # ...and a drain that came meanwhile got the writer only once the whole write was
    # handed to the producer (records and hops): never half of a batch's records.
    assert sliced[3] is not None and sliced[3] >= 430


@pytest.mark.asyncio
async def test_writes_land_in_order_a_later_acknowledgement_releases_no_marker():
    writer, producer, data = _writer()
    frontier = _frontier({0: 0}, (0, 0))
    await writer.write({"contact:aa": {"p": 0}}, {progress.marker_key(0): 0, "contact:aa": 0},
                       frontier)
    frontier.advance(0, 1)
    await writer.write({"contact:bb": {"p": 0}}, {progress.marker_key(0): 0, "contact:bb": 0},
                       frontier)
    producer.futures[1].set_result(None)  # the second write is acknowledged first
    await writer.write({}, {}, frontier)
    assert [k for k, _, _ in producer.sent] == ["contact:aa", "contact:bb"]
    assert progress.resume_offset(data, 0) is None
    producer.futures[0].set_result(None)
    await writer.write({}, {}, frontier)  # both landed: the latest marker only
    assert [k for k, _, _ in producer.sent][2:] == [progress.marker_key(0)]
    assert progress.resume_offset(data, 0) == 2


@pytest.mark.asyncio
async def test_a_write_waits_for_the_oldest_when_too_many_are_in_flight(monkeypatch):
    from stream.worker import changelog

    monkeypatch.setattr(changelog, "MAX_FLIGHTS", 2)
    writer, producer, _ = _writer()
    frontier = _frontier({0: 0}, (0, 0))
    for key in ("contact:aa", "contact:bb"):
        await writer.write({key: {"p": 0}}, {key: 0}, frontier)
    third = asyncio.ensure_future(writer.write({"contact:cc": {"p": 0}}, {"contact:cc": 0},
                                               frontier))
    await asyncio.sleep(0)
    assert not third.done() and len(producer.sent) == 2
    producer.futures[0].set_result(None)
    await third
    assert [k for k, _, _ in producer.sent] == ["contact:aa", "contact:bb", "contact:cc"]


@pytest.mark.asyncio
async def test_a_refused_write_stops_the_writer_before_any_marker_vouches_for_it():
    writer, producer, _ = _writer()
    frontier = _frontier({0: 0}, (0, 0))
    await writer.write({"contact:aa": {"p": 0}}, {progress.marker_key(0): 0, "contact:aa": 0},
                       frontier)
    producer.futures[0].set_exception(RuntimeError("refused"))
    with pytest.raises(RuntimeError):
        await writer.write({}, {}, frontier)
    assert [k for k, _, _ in producer.sent] == ["contact:aa"]


@pytest.mark.asyncio
async def test_a_local_stores_written_records_are_dropped_with_their_partition():
    # The local store keeps no key -> partition dict: a record the writer put in it is
    # found by its own "p" when a rebalance takes its partition away, even while the
    # write is in flight, and a kept partition's records stay.
    from stream.worker.localstate import LocalStore

    producer = _Producer()
    store = LocalStore("local://", SimpleNamespace(), SimpleNamespace(name="records"))
    table = SimpleNamespace(changelog_topic=_Topic(), data=store, key_serializer="json")
    writer = ChangelogWriter(SimpleNamespace(producer=SimpleNamespace(_producer=producer)),
                             table)
    pending = {"contact:aa": {"k": "contact", "p": 0}, "contact:bb": {"k": "contact", "p": 3}}
    await writer.write(pending, {"contact:aa": 0, "contact:bb": 3}, _frontier({0: 1, 3: 1}))
    assert store.held == {0, 3} and not store._key_partition
    store.drop([3])
    assert list(store.data) == ["contact:aa"] and store.held == {0}


def test_held_back_markers_are_forgotten_after_an_assignment():
    writer, _, _ = _writer()
    writer.due = [(0, progress.marker_key(0), b"5")]
    writer.durable = {0: 4}
    writer.flights.append(changelog._Flight([], [], {0: 3}, [(0, progress.marker_key(0), b"4")]))
    writer.forget_markers()
    assert writer.due == [] and writer.durable == {}
    assert writer.flights[0].markers == {} and writer.flights[0].vouched == []


@pytest.mark.asyncio
async def test_markers_become_committable_only_once_kafka_has_them():
    writer, producer, _ = _writer()
    frontier = _frontier({0: 0}, (0, 6))
    await writer.write({"contact:aa": {"p": 0}}, {progress.marker_key(0): 0, "contact:aa": 0},
                       frontier)
    assert writer.durable == {}
    producer.futures[0].set_result(None)
    await writer.settle()  # idle: the held-back marker goes out
    assert [k for k, _, _ in producer.sent] == ["contact:aa", progress.marker_key(0)]
    assert writer.durable == {}  # sent, not yet acknowledged
    producer.futures[1].set_result(None)
    await writer.settle()
    assert writer.durable == {0: 7}
    await writer.settle()  # nothing in flight, nothing held: no more writes
    assert len(producer.sent) == 2


def test_frontier_is_the_offset_after_the_last_processed_record():
    f = progress.Frontier()
    f.reset(0, 10)
    f.advance(0, 14)  # a batch of 10..14, or one with transaction markers in between
    assert f.next == {0: 15}
    f.reset(0, 12)  # an assignment moves it back to the state's marker
    assert f.next == {0: 12}


def test_frontier_forgets_partitions_no_longer_assigned():
    f = progress.Frontier()
    f.reset(0, 1)
    f.reset(1, 1)
    f.drop([1])
    assert f.next == {1: 1}
