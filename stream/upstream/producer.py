"""Producer helper for upstream integrators: build, validate and send events.

    async with EventProducer(settings) as producer:
        await producer.send(ContactReceived(...))

Every event is validated against the contract (and the taxonomy) before it is
sent, keyed by its case key so all events of a case share a partition, and
stamped with its event time as the Kafka timestamp. The producer is idempotent
(``enable_idempotence``): a retry after a network error is not duplicated.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from pydantic import TypeAdapter, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from stream.contract.decoder import Limits, out_of_range
from stream.contract.events import FAMILIES, Event
from stream.contract.quotes import new_key, seal
from stream.contract.taxonomy import Taxonomy, load_taxonomy
from stream.contract.topics import FEEDBACK_KEYS, TopicSpec, event_families, load_topics
from stream.settings import Settings


def family_of(event_type: str, topics: Mapping[str, TopicSpec]) -> str:
    """The family (and so the topic) an event type belongs to."""
    for family, spec in event_families(topics).items():
        if event_type in spec.event_types:
            return family
    raise ValueError(f"unknown event type {event_type!r}")


def settings_limits(settings: Settings) -> Limits:
    """The worker's input bounds under these settings."""
    return Limits(settings.max_payload_bytes, settings.max_future_skew_seconds)


def encode(event: Event) -> bytes:
    """The wire form of an event: compact JSON, exactly the contract's fields."""
    return event.model_dump_json(exclude_none=True).encode()


class EventValidator:
    """Builds contract events, accepting and refusing exactly what the worker does.

    The worker validates JSON bytes, where a time is an RFC 3339 string. So
    ``build`` takes a document in JSON form (``json.loads`` of a line) or in
    Python form (``datetime`` objects, tuples) and turns it into those bytes
    first: one validation path for every producer, with the worker's
    strictness (naive times, ``true`` or ``1.0`` as the version, unknown
    fields refused) and its bounds (size, earliest year, future skew).
    """

    def __init__(self, taxonomy: Taxonomy, limits: Limits | None = None) -> None:
        self._context = {"taxonomy": taxonomy}
        self._adapters = {f: TypeAdapter(u) for f, u in FAMILIES.items()}
        self._limits = limits or Limits()

    def build(self, family: str, data: Mapping[str, Any], now: float | None = None) -> Event:
        """Validate a document (JSON or Python form) into an event.

        Raises pydantic.ValidationError, also for values JSON cannot carry and
        for times out of the worker's bounds (``now``: POSIX s, default the clock).
        """
        try:
            raw = orjson.dumps(data)
        except TypeError:  # orjson.JSONEncodeError: a set, bytes, a huge int, a non-str key
            raise _refusal("wrong_type", "not representable in JSON") from None
        return self.build_json(family, raw, now)

    def build_json(self, family: str, raw: bytes, now: float | None = None) -> Event:
        """Validate the wire form (JSON bytes) of an event; as ``build``."""
        if len(raw) > self._limits.max_payload_bytes:
            raise _refusal("payload_too_large", "larger than the worker accepts")
        event: Event = self._adapters[family].validate_json(raw, strict=True,
                                                            context=self._context)
        bad = out_of_range(event, self._limits, time.time() if now is None else now)
        if bad is not None:
            raise _refusal(bad.reason, bad.detail)
        return event


def _refusal(kind: str, message: str, loc: tuple[str, ...] = ()) -> ValidationError:
    """A ValidationError for a check pydantic does not make itself (one error kind)."""
    error = InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=None)
    return ValidationError.from_exception_data("Event", [error])


class EventProducer:
    """An idempotent Kafka producer of contract events."""

    def __init__(self, settings: Settings, **producer_kwargs: Any) -> None:
        self.topics = load_topics()
        self.validator = EventValidator(load_taxonomy(settings.taxonomy_path),
                                        settings_limits(settings))
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

    async def approve_quote(self, approval: Mapping[str, Any], quote: str) -> Event:
        """Seal ``quote`` under a fresh key of its own and send it (crypto-shredding).

        ``approval`` is a ``feedback.quote_approved`` document without ``sealed_quote``.
        The key goes to the compacted key topic first, acknowledged before the approval
        is sent, so no approval is ever on the feedback topic without its key.
        Raises ``QuoteError`` (an empty or too long quote) or a ``ValidationError``;
        neither quotes the quote.
        """
        key = new_key()
        sealed = seal(quote, key, str(approval.get("feedback_key", "")))
        event = self.validator.build("feedback", {**approval, "sealed_quote": sealed})
        await self._send_key(event.key, key)
        await self.send(event)
        return event

    async def withdraw_quote(self, withdrawal: Mapping[str, Any]) -> Event:
        """Tombstone the quote's key, then send ``feedback.withdrawn``: from then on no
        copy of the quote can be opened (the counts stay)."""
        event = self.validator.build("feedback", withdrawal)
        await self._send_key(event.key, None)
        await self.send(event)
        return event

    async def _send_key(self, feedback_key: str, key: bytes | None) -> None:
        topic = self.topics[FEEDBACK_KEYS].name
        sent = await self._producer.send(topic, key, key=feedback_key.encode())
        await sent  # acknowledged: the key (or its tombstone) is on the broker

    async def send_raw(self, topic: str, key: bytes | None, value: bytes,
                       timestamp_ms: int | None = None) -> None:
        """Send bytes as they are (tests and the importer's pass-through)."""
        await self._producer.send(topic, value, key=key, timestamp_ms=timestamp_ms)

    async def flush(self) -> None:
        await self._producer.flush()
