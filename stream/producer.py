"""Producer helper for upstream integrators: build, validate and send events.

    async with EventProducer(settings) as producer:
        await producer.send(ContactReceived(...))

Every event is validated against the contract (and the taxonomy) before it is
sent, keyed by its case key so all events of a case share a partition, and
stamped with its event time as the Kafka timestamp. The producer is idempotent
(``enable_idempotence``): a retry after a network error is not duplicated.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaProducer
from pydantic import TypeAdapter

from stream.events import FAMILIES, Event
from stream.settings import Settings
from stream.taxonomy import Taxonomy, load_taxonomy
from stream.topics import TopicSpec, event_families, load_topics


def family_of(event_type: str, topics: Mapping[str, TopicSpec]) -> str:
    """The family (and so the topic) an event type belongs to."""
    for family, spec in event_families(topics).items():
        if event_type in spec.event_types:
            return family
    raise ValueError(f"unknown event type {event_type!r}")


def encode(event: Event) -> bytes:
    """The wire form of an event: compact JSON, exactly the contract's fields."""
    return event.model_dump_json(exclude_none=True).encode()


class EventValidator:
    """Builds contract events from plain dicts, checking them like the worker does."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self._context = {"taxonomy": taxonomy}
        self._adapters = {f: TypeAdapter(u) for f, u in FAMILIES.items()}

    def build(self, family: str, data: Mapping[str, Any]) -> Event:
        """Validate a dict (JSON types) into an event; raises pydantic.ValidationError."""
        event: Event = self._adapters[family].validate_python(dict(data), context=self._context)
        return event


class EventProducer:
    """An idempotent Kafka producer of contract events."""

    def __init__(self, settings: Settings, **producer_kwargs: Any) -> None:
        self.topics = load_topics()
        self.validator = EventValidator(load_taxonomy(settings.taxonomy_path))
        options: dict[str, Any] = dict(
            bootstrap_servers=settings.broker, enable_idempotence=True, acks="all",
            linger_ms=5, max_batch_size=256 * 1024, **settings.kafka_client_kwargs())
        options.update(producer_kwargs)
        self._producer = AIOKafkaProducer(**options)

    async def __aenter__(self) -> EventProducer:
        await self._producer.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self._producer.stop()

    def topic_for(self, event: Event) -> str:
        event_type: str = event.event_type  # type: ignore[attr-defined]
        return self.topics[family_of(event_type, self.topics)].name

    async def send(self, event: Event) -> None:
        """Queue one event (returns once it is buffered; ``flush`` to wait for acks)."""
        await self._producer.send(self.topic_for(event), encode(event),
                                  key=event.key.encode(),
                                  timestamp_ms=int(event.timestamp * 1000))

    async def send_raw(self, topic: str, key: bytes | None, value: bytes,
                       timestamp_ms: int | None = None) -> None:
        """Send bytes as they are (tests and the importer's pass-through)."""
        await self._producer.send(topic, value, key=key, timestamp_ms=timestamp_ms)

    async def flush(self) -> None:
        await self._producer.flush()
