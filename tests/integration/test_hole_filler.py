"""The hole filler reads exactly a partition's messages in a range, on the real broker.

Transactions leave offsets that hold no message (each commit marker takes one), which
is the kind of hole the worker must step over; a range of real messages must come
back whole and in order.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream.progress import HoleFiller

pytestmark = pytest.mark.integration
TOPIC = "hole-filler-test"


async def _produce(bootstrap: str) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id="hole-test")
    await producer.start()
    offsets = []
    try:
        for batch in range(3):  # three transactions of four messages: a marker after each
            async with producer.transaction():
                futs = [await producer.send(TOPIC, f"{batch}-{i}".encode(), partition=0)
                        for i in range(4)]
            offsets += [(await f).offset for f in futs]
    finally:
        await producer.stop()
    return offsets


def test_reads_a_range_whole_and_knows_transaction_markers_hold_nothing(broker):
    offsets = asyncio.run(_produce(broker.bootstrap))
    assert offsets == [0, 1, 2, 3, 5, 6, 7, 8, 10, 11, 12, 13]  # 4 and 9: commit markers
    filler = HoleFiller(broker.bootstrap, {}, timeout_s=30)

    got = asyncio.run(filler.read(TOPIC, 0, 2, 11))
    assert [r.offset for r in got] == [2, 3, 5, 6, 7, 8, 10]
    assert [r.value for r in got][:3] == [b"0-2", b"0-3", b"1-0"]

    only_marker = asyncio.run(filler.read(TOPIC, 0, 4, 5))
    assert only_marker == []  # offset 4 exists but holds no message
