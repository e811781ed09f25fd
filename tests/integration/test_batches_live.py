"""The batch consumer against a real broker: transaction-marker gaps, the fetch wait.

A transactional producer leaves one offset per committed transaction that holds no
data record (its commit marker): aiokafka skips it, so the worker's cursor meets a
gap that is not a seek's race (stream/worker/batches.py, ``follow``). The worker must
deliver across every such gap: reading it as a race would seek back to the cursor
for ever and count nothing; dropping records would lose them.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from stream.cli import ensure_topics
from stream.contract.topics import load_topics
from stream.settings import Settings
from stream.worker import batches
from stream.worker.app import create_app
from tests.groundtruth import Message, expected, generate
from tests.integration.conftest import start_worker
from tests.integration.harness import consumed, free_port, total, wait_for
from tests.integration.test_pipeline import assert_figures_match

pytestmark = pytest.mark.integration

#: records per transaction: every one ends with a commit marker taking an offset
PER_TRANSACTION = 7


async def _produce_in_transactions(bootstrap: str, messages: list[Message]) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id="cspa-test-txn",
                                enable_idempotence=True)
    await producer.start()
    try:
        for i in range(0, len(messages), PER_TRANSACTION):
            async with producer.transaction():
                for m in messages[i:i + PER_TRANSACTION]:
                    await producer.send(m.topic, m.value, key=m.key, timestamp_ms=m.timestamp_ms)
    finally:
        await producer.stop()
    return len(messages)


async def _offsets(bootstrap: str, topic: str, partitions: int) -> list[tuple[int, int]]:
    """(partition, offset) of every data record of ``topic``, as aiokafka returns them."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[tuple[int, int]] = []
        async with asyncio.timeout(60):
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                got = await consumer.getmany(timeout_ms=500)
                out += [(r.partition, r.offset) for rs in got.values() for r in rs]
        return out
    finally:
        await consumer.stop()


def test_records_across_transaction_markers_are_all_counted(broker, workers, tmp_path):
    ds = generate(seed=23, start=date(2019, 8, 1), days=30, contacts=120, calls=80,
                  enquiries=20, audits=8, bad=0)
    ensure_topics(Settings(broker=broker.bootstrap))
    sent = asyncio.run(_produce_in_transactions(broker.bootstrap, list(ds.messages)))
    # The gaps are really there: some data records do not follow the one before.
    calls = load_topics()["calls"]
    offsets = asyncio.run(_offsets(broker.bootstrap, calls.name, calls.partitions))
    by_partition: dict[int, list[int]] = {}
    for p, o in offsets:
        by_partition.setdefault(p, []).append(o)
    gaps = sum(1 for os in by_partition.values() for a, b in zip(os, os[1:]) if b > a + 1)
    assert gaps > 0, "no transaction-marker gap to cross"

    worker = start_worker(broker, tmp_path, workers)
    wait_for(lambda: consumed(worker) >= sent, 120, f"{sent} transactional events consumed")
    samples = worker.samples()
    assert_figures_match(samples, expected(ds))
    # Every gap was delivered across, none taken for a seek's race.
    assert total(samples, "cspa_refetches_total") == 0
    assert consumed(worker) == sent  # (less the worker's own hops, see ``consumed``)


@pytest.mark.asyncio
async def test_the_started_consumer_fetches_with_the_short_wait(broker):
    worker = create_app(Settings(broker=broker.bootstrap, web_port=free_port()))
    thread = batches.batch_consumer(worker.app)._thread
    consumer: Any = thread._create_worker_consumer(worker.app.transport)
    await consumer.start()
    try:
        assert consumer._fetcher._fetch_max_wait_ms == batches.FETCH_MAX_WAIT_MS
    finally:
        await consumer.stop()
