"""The approved quotes of section 6, opened with the keys still on the key topic.

The worker never holds a quote (its records keep only who, what kind, the attribution
and consent). The report reads the sealed quotes from the feedback topic and each
quote's key from the compacted key topic (``stream.contract.quotes``) and prints a
quote only when all of these hold: its latest ``feedback.quote_approved`` gives consent
and falls in the report's months, no ``feedback.withdrawn`` came for it, and its key is
still there (a tombstone is the last word). Opened quotes live only in this process's
memory and the rendered report: never in a log, a metric or an error message.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.contract.decoder import Decoder, Limits
from stream.contract.events import FeedbackQuoteApproved, FeedbackWithdrawn
from stream.contract.quotes import unseal
from stream.contract.taxonomy import Taxonomy
from stream.contract.topics import FEEDBACK_KEYS, TopicSpec, load_topics
from stream.report.tables import Quote
from stream.settings import Settings
from stream.state.records import order, slot_of
from stream.state.working_days import local_month

Raw = tuple[bytes | None, bytes | None]  # (key, value) of one Kafka record


@dataclass
class _Latest:
    """The latest approval of one feedback (by the records' version order) and whether
    consent was withdrawn."""

    approval: FeedbackQuoteApproved | None = None
    withdrawn: bool = False


def latest_keys(records: Iterable[Raw]) -> dict[str, bytes]:
    """feedback_key -> its quote key, from the key topic in offset order (tombstones drop)."""
    keys: dict[str, bytes] = {}
    for key, value in records:
        if key is None:
            continue
        name = key.decode("utf-8", "replace")
        if value is None:
            keys.pop(name, None)
        else:
            keys[name] = value
    return keys


def _latest(events: Iterable[Raw], decoder: Decoder, now: float) -> dict[str, _Latest]:
    found: dict[str, _Latest] = {}
    for key, value in events:
        event = decoder.decode(key, value, now)  # a rejected message is the worker's to log
        if isinstance(event, FeedbackWithdrawn):
            found.setdefault(event.key, _Latest()).withdrawn = True
        elif isinstance(event, FeedbackQuoteApproved):
            entry = found.setdefault(event.key, _Latest())
            if entry.approval is None or order(slot_of(event)[2]) > order(
                    slot_of(entry.approval)[2]):
                entry.approval = event
    return found


def open_quotes(events: Iterable[Raw], keys: Mapping[str, bytes], months: Collection[str],
                taxonomy: Taxonomy, settings: Settings) -> tuple[Quote, ...]:
    """The printable quotes approved in ``months``, oldest first."""
    decoder = Decoder("feedback", taxonomy, Limits(settings.max_payload_bytes,
                                                   settings.max_future_skew_seconds))
    zone, memo = ZoneInfo(settings.timezone), dict[int, str]()
    out: list[tuple[float, str, Quote]] = []
    for case, entry in _latest(events, decoder, time.time()).items():
        approval = entry.approval
        if approval is None or entry.withdrawn or not approval.consent_to_publish:
            continue
        if local_month(approval.timestamp, zone, memo) not in months:
            continue
        text = unseal(approval.sealed_quote, keys.get(case), case)
        if text is not None:
            label = taxonomy.label("quote_attribution", approval.attribution)
            year = approval.occurred_at.astimezone(zone).year
            out.append((approval.timestamp, case, Quote(text, label, year)))
    return tuple(q for _, _, q in sorted(out, key=lambda entry: entry[:2]))


async def read_topic(settings: Settings, spec: TopicSpec, timeout: float) -> list[Raw]:
    """Every record of a topic, from its first offset to its end when asked."""
    topic = spec.name
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.broker, enable_auto_commit=False,
                                group_id=None, **settings.kafka_client_kwargs())
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(spec.partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends: dict[Any, int] = await consumer.end_offsets(parts)
        out: list[Raw] = []
        deadline = time.monotonic() + timeout
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: not read to its end in {timeout:.0f} s")
            batches = await consumer.getmany(*parts, timeout_ms=500)
            out += [(r.key, r.value) for records in batches.values() for r in records]
        return out
    finally:
        await consumer.stop()


async def fetch_quotes(settings: Settings, months: Collection[str], taxonomy: Taxonomy,
                       timeout: float) -> tuple[Quote, ...]:
    """Section 6's quotes: the feedback topic opened with the key topic."""
    topics = load_topics()
    keys = latest_keys(await read_topic(settings, topics[FEEDBACK_KEYS], timeout))
    events = await read_topic(settings, topics["feedback"], timeout)
    return open_quotes(events, keys, months, taxonomy, settings)
