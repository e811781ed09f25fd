"""Sending the benchmark's events: one idempotent aiokafka producer, at full speed.

Sends are queued a chunk at a time (``asyncio.gather``), not awaited one by one; the
delivery futures are checked once everything is flushed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Iterator

from aiokafka import AIOKafkaProducer

from bench.dataset import Msg, live


async def _produce(bootstrap: str, messages: AsyncIterator[Msg] | Iterable[Msg],
                   chunk: int) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True,
                                acks="all", linger_ms=20, max_batch_size=512 * 1024,
                                request_timeout_ms=60_000)
    await producer.start()
    sent, pending = 0, []
    try:
        batch: list[Msg] = []

        async def flush_batch() -> None:
            nonlocal sent, pending
            pending.extend(await asyncio.gather(*(
                producer.send(m.topic, m.value, key=m.key, timestamp_ms=m.timestamp_ms)
                for m in batch)))
            sent += len(batch)
            batch.clear()
            for fut in pending:
                if fut.done():
                    fut.result()  # raise if a delivery failed
            # only what is still in flight is kept (millions of events are sent at once)
            pending = [fut for fut in pending if not fut.done()]

        if isinstance(messages, AsyncIterator):
            async for m in messages:
                batch.append(m)
                await flush_batch()  # paced traffic: send each as it comes
        else:
            for m in messages:
                batch.append(m)
                if len(batch) >= chunk:
                    await flush_batch()
        await flush_batch()
        await producer.flush()
        for fut in pending:
            fut.result()  # raise if any delivery failed
    finally:
        await producer.stop()
    return sent


def produce(bootstrap: str, messages: Iterable[Msg], chunk: int = 5000) -> tuple[int, float]:
    """Send everything as fast as possible; (messages, seconds)."""
    t0 = time.monotonic()
    sent = asyncio.run(_produce(bootstrap, messages, chunk))
    return sent, time.monotonic() - t0


async def paced(messages: Iterator[Msg], rate: float, seconds: float) -> AsyncIterator[Msg]:
    """Yield generated events at ``rate`` a second for ``seconds`` (a tick every 10 ms)."""
    t0, due = time.monotonic(), 0
    while (elapsed := time.monotonic() - t0) < seconds:
        target = int(elapsed * rate)
        while due < target:
            m = next(messages, None)
            if m is None:
                return
            yield m
            due += 1
        await asyncio.sleep(0.01)


def produce_paced(bootstrap: str, rate: float, seconds: float, seed: int = 5,
                  children: bool = False) -> list[Msg]:
    """Send live events at a steady rate (``children``: contacts name children); return
    what was sent."""
    sent: list[Msg] = []

    async def source() -> AsyncIterator[Msg]:
        async for m in paced(live(int(rate * seconds) + 10, seed, children=children), rate,
                                seconds):
            sent.append(m)
            yield m

    asyncio.run(_produce(bootstrap, source(), 1))
    return sent

