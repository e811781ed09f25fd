"""Integration tests for stream.dev.broker against a real single-node Kafka (KRaft) broker.

Each test starts its own broker in a temporary directory on free loopback ports, so a broker
already running on the default port 19092 is never touched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import (  # type: ignore[import-untyped,unused-ignore]
    AIOKafkaConsumer,
    AIOKafkaProducer,
)
from aiokafka.errors import KafkaError  # type: ignore[import-untyped,unused-ignore]

from stream.dev.broker import LocalBroker, create_topics, wait_ready
from tests.integration.harness import make_broker

CACHE = Path(__file__).resolve().parents[2] / ".cache"
N = 100


@pytest.fixture
def scram_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    yield from make_broker(tmp_path, sasl_scram=True, scram_user="alice",
                           scram_password="alice-secret")


async def produce(bootstrap: str, topic: str, n: int, **kw: Any) -> None:
    """Send ``n`` keyed messages ``0..n-1`` with acks=all."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **kw)
    await producer.start()
    try:
        for i in range(n):
            await producer.send(topic, key=str(i % 7).encode(), value=str(i).encode())
        await producer.flush()
    finally:
        await producer.stop()


async def consume(bootstrap: str, topic: str, n: int, timeout: float = 30, **kw: Any) -> list[int]:
    """Read the topic from the beginning until ``n`` messages (or timeout); return the values."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False, **kw)
    await consumer.start()
    values: list[int] = []
    try:
        async with asyncio.timeout(timeout):
            while len(values) < n:
                batches = await consumer.getmany(timeout_ms=500)
                values += [int(m.value) for msgs in batches.values() for m in msgs]
        await asyncio.sleep(0.5)  # anything beyond n would show up now
        batches = await consumer.getmany(timeout_ms=500)
        values += [int(m.value) for msgs in batches.values() for m in msgs]
    finally:
        await consumer.stop()
    return values


@pytest.mark.integration
@pytest.mark.asyncio
async def test_produce_consume_survives_kill(broker: LocalBroker) -> None:
    assert broker.is_running() and broker.pid is not None
    assert broker.start_seconds is not None and broker.rss_bytes() > 50 * 2**20
    print(f"start {broker.start_seconds:.2f}s rss {broker.rss_bytes() / 2**20:.0f}MiB")
    await create_topics(broker.bootstrap, [("events", 3, {"retention.ms": "-1"})])
    await create_topics(broker.bootstrap, [("events", 3, {})])  # idempotent
    await produce(broker.bootstrap, "events", N)
    assert sorted(await consume(broker.bootstrap, "events", N)) == list(range(N))

    broker.kill()  # crash: SIGKILL, no clean shutdown
    assert not broker.is_running()
    broker.start()
    print(f"restart after kill -9 {broker.start_seconds:.2f}s")
    assert sorted(await consume(broker.bootstrap, "events", N)) == list(range(N))

    attached = LocalBroker(broker.config)  # another "process" finds it through the pid file
    assert attached.is_running() and attached.pid == broker.pid


@pytest.mark.integration
@pytest.mark.asyncio
async def test_sasl_scram_refuses_anonymous(scram_broker: LocalBroker) -> None:
    bootstrap, auth = scram_broker.bootstrap, scram_broker.config.client_kwargs()
    assert auth["sasl_plain_username"] == "alice"
    with pytest.raises(TimeoutError):
        await wait_ready(bootstrap, 3)  # no credentials: never gets metadata
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    with pytest.raises(KafkaError):  # the broker closes the connection at once
        await asyncio.wait_for(producer.start(), 10)
    await producer.stop()
    assert "during SASL handshake" in scram_broker.log_file.read_text()
    with pytest.raises(TimeoutError):
        await wait_ready(bootstrap, 3, **dict(auth, sasl_plain_password="wrong"))

    await wait_ready(bootstrap, 10, **auth)
    await create_topics(bootstrap, [("secure", 3, {})], **auth)
    await produce(bootstrap, "secure", N, **auth)
    assert sorted(await consume(bootstrap, "secure", N, **auth)) == list(range(N))
