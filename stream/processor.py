"""The logic of one agent, free of Faust: decode, fold, re-count.

``FamilyProcessor.process`` takes one Kafka message and the records table (any
mutable mapping: a Faust table in the worker, a dict in unit tests), and
returns what happened. ``FigureState`` keeps the figure cells per partition
and rebuilds them from the records after a restart or rebalance.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass

import orjson

from stream import records
from stream.aggregates import Aggregates, merged
from stream.decoder import Decoder, Rejection
from stream.figures import FactContext, facts_of
from stream.metrics import PipelineMetrics

TP = tuple[str, int]


class FigureState:
    """Figure cells per (topic, partition) of the partitions being served."""

    def __init__(self) -> None:
        self.parts: dict[TP, Aggregates] = {}

    def part(self, topic: str, partition: int) -> Aggregates:
        key = (topic, partition)
        agg = self.parts.get(key)
        if agg is None:
            agg = self.parts[key] = Aggregates()
        return agg

    def rebuild(self, topic: str, items: Iterable[tuple[str, bytes]], active: set[int],
                ctx: FactContext) -> int:
        """Recompute the cells of ``topic``'s active partitions from its records.

        Partitions no longer active are dropped. Returns records counted.
        """
        for key in [k for k in self.parts if k[0] == topic]:
            del self.parts[key]
        fresh = {p: self.part(topic, p) for p in active}
        counted = 0
        for _, raw in items:
            record = records.loads(raw)
            agg = fresh.get(record["p"])
            if agg is not None:
                agg.apply(facts_of(record, ctx), +1)
                counted += 1
        return counted

    def current(self, owned: set[TP]) -> Aggregates:
        """The merged cells of the owned partitions only."""
        return merged(agg for tp, agg in self.parts.items() if tp in owned)


@dataclass(frozen=True, slots=True)
class Applied:
    event_type: str
    changed: bool


class FamilyProcessor:
    """Turns the messages of one topic into record updates and figure changes."""

    def __init__(self, topic: str, decoder: Decoder, ctx: FactContext, state: FigureState,
                 metrics: PipelineMetrics) -> None:
        self.topic = topic
        self.decoder = decoder
        self.ctx = ctx
        self.state = state
        self.metrics = metrics
        self._latest = 0.0  # greatest event time seen (POSIX s)
        #: next offset to process per partition (for consumer lag)
        self.positions: dict[int, int] = {}

    def process(self, key: bytes | None, value: bytes | None, partition: int,
                timestamp_ms: float | None, table: MutableMapping[str, bytes],
                now: float | None = None) -> Applied | Rejection:
        """Apply one message. The caller sends a Rejection to the dead-letter topic."""
        now = time.time() if now is None else now
        m = self.metrics
        m.consumed.labels(self.topic).inc()
        m.last_processed.labels(self.topic).set(now)
        if timestamp_ms is not None:
            m.latency.labels(self.topic).observe(max(0.0, now - timestamp_ms / 1000.0))
        result = self.decoder.decode(key, value, now)
        if isinstance(result, Rejection):
            m.rejected.labels(self.topic, result.reason).inc()
            return result
        if result.timestamp > self._latest:
            self._latest = result.timestamp
            m.last_event_time.labels(self.topic).set(self._latest)
        kind, slot, slot_value = records.slot_of(result)
        tkey = records.table_key(kind, result.key)
        raw = table.get(tkey)
        old = records.loads(raw) if raw is not None else None
        new = records.fold(old, kind, slot, slot_value, partition)
        if new is None:
            m.duplicates.labels(self.topic).inc()
            return Applied(result.event_type, False)  # type: ignore[attr-defined]
        table[tkey] = records.dumps(new)
        self.state.part(self.topic, partition).replace(
            facts_of(old, self.ctx), facts_of(new, self.ctx))
        event_type: str = result.event_type  # type: ignore[attr-defined]
        m.applied.labels(self.topic, event_type).inc()
        return Applied(event_type, True)


def deadletter_message(topic: str, partition: int, offset: int, timestamp_ms: float | None,
                       key: bytes | None, value: bytes | None, rejection: Rejection) -> bytes:
    """The dead-letter record: where it came from, why, and the original bytes.

    The original bytes are kept (base64) so nothing is lost and the event can be
    repaired and replayed; the dead-letter topic is access-controlled like the
    source topics. They are never logged.
    """
    return orjson.dumps({
        "source_topic": topic, "partition": partition, "offset": offset,
        "timestamp_ms": timestamp_ms, "reason": rejection.reason, "detail": rejection.detail,
        "rejected_at": time.time(),
        "key_b64": base64.b64encode(key).decode() if key is not None else None,
        "value_b64": base64.b64encode(value).decode() if value is not None else None,
    })
