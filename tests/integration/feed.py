"""Sending test traffic to the broker, with every delivery checked.

``harness.produce`` awaits ``producer.send`` (which only buffers) and ``flush``; a record the
broker refuses (e.g. a CreateTime too far in the future) is then dropped without an error.
``produce_checked`` waits for every delivery report instead, so a refused record fails the
test where it was sent rather than as a timeout later on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer

from stream.contract.events import Event
from stream.contract.topics import load_topics
from stream.upstream.producer import encode, family_of
from tests.groundtruth import Message

_TOPICS = load_topics()


def message(event: Event) -> Message:
    """The wire form of a contract event, keyed and timestamped as the producer sends it."""
    topic = _TOPICS[family_of(event.event_type, _TOPICS)].name  # type: ignore[attr-defined]
    return Message(topic, event.key.encode(), encode(event), int(event.timestamp * 1000))


async def _produce(bootstrap: str, messages: Iterable[Message], **kw: Any) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True,
                                linger_ms=20, max_batch_size=512 * 1024, **kw)
    await producer.start()
    pending: list[asyncio.Future[Any]] = []
    sent = 0
    try:
        for m in messages:
            sent += 1
            pending.append(await producer.send(m.topic, m.value, key=m.key,
                                               timestamp_ms=m.timestamp_ms))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)  # raises the first refused record's error
                pending.clear()
        await producer.flush()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


def produce_checked(bootstrap: str, messages: Iterable[Message], **kw: Any) -> int:
    """Send ``messages``; return how many, once the broker has acknowledged every one."""
    return asyncio.run(_produce(bootstrap, messages, **kw))
