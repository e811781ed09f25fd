"""The agent of one source topic: what one batch turns into, in order."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta
from types import SimpleNamespace

import orjson
import pytest
from faust.types import TP
from prometheus_client import CollectorRegistry

from stream.contract.decoder import Decoder
from stream.state import progress, records
from stream.worker.agents import TopicAgent
from stream.worker.batches import Batch
from stream.worker.metrics import PipelineMetrics
from stream.worker.processor import CellState, FamilyProcessor
from tests.conftest import LONDON
from tests.factories import decided, key, received

TOPIC = "t.contacts"
T0 = datetime(2019, 8, 2, 10, tzinfo=LONDON)


class _Writer:
    """Takes what the agent hands the changelog, as it stands at that moment."""

    def __init__(self):
        self.writes: list[tuple[dict, dict, dict]] = []

    async def write(self, pending, owners, frontier, hops=None, turn=None):
        self.turn = turn
        self.writes.append((dict(pending), dict(owners), dict(frontier.next)))
        self.hops = list(hops or [])
        pending.clear()
        owners.clear()


class _DeadLetters:
    """A topic whose sends are acknowledged at once."""

    def __init__(self):
        self.sent: list[dict] = []

    async def send(self, key, value):
        self.sent.append(orjson.loads(value))
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def _agent(taxonomy, ctx, epoch=1):
    state = CellState()
    metrics = PipelineMetrics(CollectorRegistry())
    processor = FamilyProcessor(TOPIC, Decoder("contacts", taxonomy), ctx, state, metrics)
    table = SimpleNamespace(data={})  # a table whose store is a plain dict
    agent = TopicAgent(processor, table, progress.Frontier(), _Writer(), _DeadLetters(),
                       metrics, epoch_of=lambda tp: epoch)
    return agent, state, metrics


def _record(offset, k, event):
    value = event if isinstance(event, bytes) else orjson.dumps(event)
    return SimpleNamespace(offset=offset, key=k.encode(), value=value,
                           timestamp=T0.timestamp() * 1000)


@pytest.mark.asyncio
async def test_a_batch_folds_dead_letters_the_rejected_and_writes_records_and_marker(
        taxonomy, ctx):
    agent, state, metrics = _agent(taxonomy, ctx)
    a, b = key("a"), key("b")
    batch = Batch(TP(TOPIC, 2), 1, [
        _record(10, a, received(a, T0)),
        _record(11, b, b"{not json"),
        _record(12, a, decided(a, T0 + timedelta(hours=3))),
        _record(13, b, received(b, T0)),
    ])
    await agent.handle(batch)
    # The rejected message is on the dead-letter topic with its reason and origin.
    [letter] = agent.dlq.sent
    assert (letter["offset"], letter["partition"], letter["reason"]) == (11, 2, "invalid_json")
    # One write: each changed case once, as it ends the batch, and the marker after 13.
    [(pending, owners, frontier)] = agent.writer.writes
    assert set(pending) == {records.table_key("contact", a), records.table_key("contact", b)}
    assert pending[records.table_key("contact", a)]["dec"] is not None
    assert owners[progress.marker_key(2)] == 2 and frontier == {2: 14}
    # The figures counted each case once: two received, one decided.
    cells = state.parts[(TOPIC, 2)].cells
    assert sum(c.count for (f, _), c in cells.items() if f == "contacts_received") == 2
    assert sum(c.count for (f, _), c in cells.items() if f == "contacts_decided") == 1
    assert metrics.consumed.labels(TOPIC)._value.get() == 4
    assert agent.idle.is_set()


@pytest.mark.asyncio
async def test_a_batch_from_before_a_reassignment_is_dropped_whole(taxonomy, ctx):
    agent, state, metrics = _agent(taxonomy, ctx, epoch=2)
    a = key("a")
    await agent.handle(Batch(TP(TOPIC, 0), 1, [_record(0, a, received(a, T0))]))
    assert agent.writer.writes == [] and agent.dlq.sent == []
    assert (TOPIC, 0) not in state.parts
    assert metrics.stale_batches.labels(TOPIC)._value.get() == 1


@pytest.mark.asyncio
async def test_a_record_in_another_partition_than_its_key_gives_is_dead_lettered(
        taxonomy, ctx, caplog):
    from stream.contract.partitioner import partition_of

    agent, state, metrics = _agent(taxonomy, ctx)
    agent.processor.partitions = 6
    names = (f"case-{i}" for i in range(100))
    here = next(k for k in map(key, names) if partition_of(k.encode(), 6) == 2)
    there = next(k for k in map(key, names) if partition_of(k.encode(), 6) == 4)
    await agent.handle(Batch(TP(TOPIC, 2), 1, [
        _record(7, here, received(here, T0)), _record(8, there, received(there, T0))]))
    [letter] = agent.dlq.sent
    assert (letter["offset"], letter["reason"]) == (8, "wrong_partition")
    assert letter["detail"] == "partition 2, contract partitioner gives 4"
    [(pending, _, _)] = agent.writer.writes
    assert set(pending) == {records.table_key("contact", here)}  # the other is not folded
    assert metrics.rejected.labels(TOPIC, "wrong_partition")._value.get() == 1
    # Logged by topic, partition, offset and reason: not the detail, never the key.
    [line] = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert line == f"rejected topic={TOPIC} partition=2 offset=8 reason=wrong_partition"


@pytest.mark.asyncio
async def test_the_first_batch_sets_the_first_consumed_time_once(taxonomy, ctx):
    import time

    agent, _, metrics = _agent(taxonomy, ctx)
    first = metrics.first_consumed.labels(TOPIC)
    a, b = key("a"), key("b")
    before = time.time()
    await agent.handle(Batch(TP(TOPIC, 0), 1, [_record(0, a, received(a, T0))]))
    after = time.time()
    stamped = first._value.get()
    assert before <= stamped <= after  # when the first record reached the fold
    await agent.handle(Batch(TP(TOPIC, 0), 1, [_record(1, b, received(b, T0))]))
    assert first._value.get() == stamped  # not moved by later batches
    last = metrics.last_processed.labels(TOPIC)._value.get()
    assert last >= stamped  # the replay's window: first consumed to last processed


def _big_batch(cases: int) -> Batch:
    """Each case received then decided, with a malformed message after every 50th."""
    recs, offset = [], 0
    for i in range(cases):
        k = key(f"big-{i}")
        for event in (received(k, T0), decided(k, T0 + timedelta(hours=2 + i % 30), "ola")):
            recs.append(_record(offset, k, event))
            offset += 1
        if i % 50 == 0:
            recs.append(_record(offset, k, b"{not json"))
            offset += 1
    return Batch(TP(TOPIC, 1), 1, recs)


def _figure(state, name):
    cells = state.parts[(TOPIC, 1)].cells if (TOPIC, 1) in state.parts else {}
    return sum(c.count for (f, _), c in cells.items() if f == name)


async def _handled_in_slices(taxonomy, ctx, monkeypatch, batch, seconds):
    """Handle the batch with slices of ``seconds``; what it gave, and what a task
    running beside it saw each time it had the loop."""
    from stream.worker import turn

    monkeypatch.setattr(turn, "SLICE_SECONDS", seconds)
    agent, state, _ = _agent(taxonomy, ctx)
    seen: list[tuple[int, int]] = []  # (received, decided) at each turn of the loop
    done = False

    async def beside():
        while not done:
            seen.append((_figure(state, "contacts_received"), _figure(state, "contacts_decided")))
            await asyncio.sleep(0)

    task = asyncio.create_task(beside())
    await asyncio.sleep(0)
    seen.clear()  # from here on: only the turns the batch let it have
    await agent.handle(batch)
    done = True
    await task
    return agent, state, seen


@pytest.mark.asyncio
async def test_a_long_batch_lets_the_loop_go_between_slices_and_counts_as_one(
        taxonomy, ctx, monkeypatch):
    from stream.worker import turn

    batch = _big_batch(330)
    whole, whole_state, held = await _handled_in_slices(taxonomy, ctx, monkeypatch, batch,
                                                        math.inf)
    sliced, sliced_state, turns = await _handled_in_slices(taxonomy, ctx, monkeypatch, batch,
                                                           0.0)
    assert held == []  # one slice: nothing else ran while the batch was folded
    # 667 records folded and 330 cases recounted, 64 at a time: 11 + 6 chunks
    assert len(turns) >= 17, turns
    # Whatever ran between slices saw each case whole: received and decided together.
    assert all(r == d for r, d in turns)
    assert turns[0] == (0, 0) and turns[-1][0] > 0  # before the recount, and part way
    # The same write, dead letters and figures as the batch folded in one go.
    assert sliced.writer.writes == whole.writer.writes
    assert sliced.writer.turn is sliced.turn  # the write is sliced in the same turns
    def letters(agent):  # (the time each was rejected differs)
        return [{k: v for k, v in d.items() if k != "rejected_at"} for d in agent.dlq.sent]
    assert letters(sliced) == letters(whole) and len(sliced.dlq.sent) == 7
    assert (sliced_state.parts[(TOPIC, 1)].to_json() == whole_state.parts[(TOPIC, 1)].to_json())
    assert _figure(sliced_state, "contacts_decided") == 330
    # The bench's tools fold a batch outside any loop: the same records and figures.
    monkeypatch.setattr(turn, "SLICE_SECONDS", 0.0)
    now, now_state, _ = _agent(taxonomy, ctx)
    assert len(now.apply_now(batch)) == 7
    assert now.pending == whole.writer.writes[0][0]
    assert now_state.parts[(TOPIC, 1)].to_json() == whole_state.parts[(TOPIC, 1)].to_json()
