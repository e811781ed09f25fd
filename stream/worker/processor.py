"""The logic of one agent, free of Faust: decode, fold, re-count.

``FamilyProcessor.process`` takes one Kafka message and the records table (any
mutable mapping: a Faust table in the worker, a dict in unit tests), and
returns what happened. ``CellState`` keeps the cells (``stream.state.aggregates``) per partition
and rebuilds them from the records after a restart or rebalance.
"""

from __future__ import annotations

import base64
import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from stream.contract.decoder import Decoder, Rejection
from stream.contract.partitioner import partitions_of, wrong_partition_detail
from stream.state import archive, records
from stream.state.aggregates import Aggregates, CellKey, Merged, frozen, merged_cell
from stream.state.facts import FactContext
from stream.state.families import facts_of
from stream.state.progress import is_marker
from stream.state.timeliness import OpenWork
from stream.worker.metrics import PipelineMetrics, observe_many

TP = tuple[str, int]
log = logging.getLogger("cspa.worker")

#: ``merge_some`` reads the clock once per this many cells (a cell merges in 0.05-0.2 ms)
CLOCK_EVERY = 16


class CellState:
    """Cells per (topic, partition) of the partitions being served: the cell state."""

    def __init__(self) -> None:
        self.parts: dict[TP, Aggregates] = {}
        #: the last merge ``current`` returned, and the partitions it was made of
        self._served = Merged()
        self._served_from: dict[TP, Aggregates] = {}
        #: changed cells gathered but not merged yet (``merge_some`` ran out of time)
        self._unmerged: set[CellKey] = set()
        #: cells ``current`` has merged since the start (a first merge: every owned
        #: partition's cells): what scrapes spent merging, counted rather than timed
        self.merged_cells = 0

    def part(self, topic: str, partition: int) -> Aggregates:
        key = (topic, partition)
        agg = self.parts.get(key)
        if agg is None:
            agg = self.parts[key] = Aggregates()
        return agg

    def rebuild(self, topic: str, items: Iterable[tuple[str, bytes]], held: set[int],
                ctx: FactContext, work: OpenWork | None = None) -> Counter[int]:
        """Bring the cells (and open work) of ``topic``'s held partitions up to date.

        A partition whose cells are kept (a checkpoint's, or kept in step with every
        record restored since: ``restored``) stays as it is; the others are recomputed
        from the records, which ``items`` is only iterated for. Partitions no longer
        held are dropped. Returns records counted per recomputed partition.
        """
        for tp in [tp for tp in self.parts if tp[0] == topic and tp[1] not in held]:
            del self.parts[tp]
        stale = {p for p in held if (topic, p) not in self.parts}
        if work is not None:
            work.drop_topic(topic, keep={(topic, p) for p in held - stale})
        fresh = {p: self.part(topic, p) for p in stale}
        counted: Counter[int] = Counter()
        if not fresh:
            return counted
        for key, raw in items:
            if archive.is_archive(key):  # erased cases' cells (stream.state.archive)
                part = fresh.get(int(key[len(archive.PREFIX):]))
                if part is not None:
                    archive.apply(part, raw, +1)
                continue
            record = records.loads(raw)
            agg = fresh.get(record["p"])
            if agg is not None:
                agg.apply(facts_of(record, ctx), +1)
                if work is not None:
                    work.update((topic, record["p"]), key, record)
                counted[record["p"]] += 1
        return counted

    def restored(self, topic: str, partition: int, key: str, old: bytes | None,
                 new: bytes | None, ctx: FactContext, work: OpenWork | None = None) -> None:
        """A record the changelog changed in the store: its cells follow, if kept.

        (A partition without cells is recomputed whole by ``rebuild``.)
        """
        agg = self.parts.get((topic, partition))
        if agg is None or is_marker(key):
            return
        if archive.is_archive(key):
            archive.apply(agg, old, -1)
            archive.apply(agg, new, +1)
            return
        before = records.loads(old) if old is not None else None
        after = records.loads(new) if new is not None else None
        agg.replace(facts_of(before, ctx), facts_of(after, ctx))
        if work is not None:
            work.update((topic, partition), key, after)

    def export(self) -> dict[TP, Aggregates]:
        """What a checkpoint keeps: every partition's cells (the live objects)."""
        return self.parts

    def restore(self, parts: dict[TP, Aggregates]) -> None:
        """Take a checkpoint's cells: kept by the next ``rebuild`` if still held."""
        for agg in parts.values():
            agg.changed.clear()
        self.parts.update(parts)

    def current(self, owned: set[TP]) -> Aggregates:
        """The merged cells of the owned partitions only. Read-only: it is kept.

        Merging every partition's cells took most of a scrape (95 ms with the
        benchmark's 300,000 events, the event loop blocked meanwhile). The merge is
        kept and only the cells a partition changed since are merged again; a cell
        changed is a new ``Cell`` object, an unchanged one the same object, so
        readers may cache what they derive from it by identity. Its cells' value
        multisets are ``SortedValues`` (``aggregates.frozen``): sorted, compact, and
        never changed. A partition gained, lost or rebuilt has each cell it held merged
        again (merging all afresh took seconds with a national year whenever a partition
        was first written to). What ``merge_some`` left unmerged is merged first.
        """
        self.merge_some(owned, float("inf"))
        return self._served

    def merge_some(self, owned: set[TP], seconds: float) -> bool:
        """Merge cells changed since the last merge for about ``seconds`` (CPU on the
        caller's thread); True when none is left unmerged.

        The event loop's caller (``Worker.merge``) yields between calls: a national
        year's cells all changed (the first scrape after a replay) took 2-3 s in one
        go. Between two calls, partitions may move and cells change: each call first
        gathers what changed since the last one, so the merge ends the same.
        """
        parts = self._gather(owned)
        ends = time.monotonic() + seconds
        served, unmerged, merged = self._served, self._unmerged, 0
        while unmerged:
            key = unmerged.pop()
            # cell by cell, each frozen at once: a merged Counter of every cell at a time
            # was 170 MB more at a national year's restart peak
            cell = merged_cell(parts.values(), key)
            if cell is None:
                served.drop(key)
            else:
                served.put(key, frozen(cell))
            merged += 1
            if merged % CLOCK_EVERY == 0 and time.monotonic() >= ends:
                break
        self.merged_cells += merged
        return not unmerged

    def _gather(self, owned: set[TP]) -> dict[TP, Aggregates]:
        """The owned partitions' cells; what changed since the last merge (each cell of
        a partition gained, lost or rebuilt: before a first merge, all) to unmerged."""
        parts = {tp: agg for tp, agg in self.parts.items() if tp in owned}
        keys = self._unmerged
        for side in self._moved(parts):
            keys.update(side.cells)
            keys |= side.changed
        for agg in parts.values():
            keys |= agg.changed
            agg.changed.clear()
        if not self._served_from and parts:  # a first merge: nothing kept
            self._served = Merged()
        self._served_from = parts
        return parts

    def _moved(self, parts: dict[TP, Aggregates]) -> Iterator[Aggregates]:
        """Partitions gained, lost or rebuilt since the last merge, old and new objects.

        (Aggregates compare by identity; before a first merge every one is gained.)
        """
        was = self._served_from
        for tp in was.keys() | parts.keys():
            old, new = was.get(tp), parts.get(tp)
            if old is not new:
                yield from (side for side in (old, new) if side is not None)

    def backlog(self, owned: set[TP]) -> int:
        """Values the next ``current(owned)`` merges at the least: every value of each
        cell of a partition gained, lost or rebuilt (of every owned one, before a first
        merge). Merging costs about 0.4-0.9 us a value; this only counts them (the
        entries a merge reads: a live cell's changes not yet summed count each)."""
        parts = {tp: agg for tp, agg in self.parts.items() if tp in owned}
        return sum(cell.values.entry_count() for side in self._moved(parts)
                   for cell in side.cells.values())


class Applied(NamedTuple):
    """One message folded: its event type, whether its record changed, the record's key.

    A named tuple, not a frozen dataclass: one is made per event, and a frozen
    dataclass sets each field through ``object.__setattr__`` (1.4 % of the loop).
    """

    event_type: str
    changed: bool
    table_key: str


class FamilyProcessor:
    """Turns the messages of one topic into record updates and figure changes.

    With ``partitions`` (the topic's partition count in the contract), every keyed
    message is checked to be in the partition the contract's partitioner gives its
    key (``misplaced``); without it (unit tests of the fold) nothing is checked.
    """

    def __init__(self, topic: str, decoder: Decoder, ctx: FactContext, state: CellState,
                 metrics: PipelineMetrics, work: OpenWork | None = None,
                 partitions: int | None = None) -> None:
        self.topic = topic
        self.partitions = partitions
        self.work = work
        self.decoder = decoder
        self.ctx = ctx
        self.state = state
        self.metrics = metrics
        self._latest = 0.0  # greatest event time seen (POSIX s)
        self._children = _Children.of(metrics, topic)
        self._applied: dict[str, Any] = {}  # event type -> labelled child
        #: events applied per type, and duplicates, since the last ``_count``: the
        #: counters move once per batch (a labelled inc costs ~1 us an event)
        self.tally: Counter[str] = Counter()

    def process(self, key: bytes | None, value: bytes | None, partition: int,
                timestamp_ms: float | None, table: MutableMapping[str, bytes],
                now: float | None = None) -> Applied | Rejection:
        """Apply one message and count it (``fold`` and ``batch_done`` in one call).

        The worker folds whole batches with ``fold`` and counts them once with
        ``batch_done``; this is the same for a single message.
        """
        now = time.time() if now is None else now
        wrong = self.misplaced([key], partition)
        result = wrong[0] if wrong else self.fold(key, value, partition, table, now)
        self._count(1, now)
        if timestamp_ms is not None:
            self._children.latency.observe(max(0.0, now - timestamp_ms / 1000.0))
        return result

    def misplaced(self, keys: Sequence[bytes | None], partition: int) -> dict[int, Rejection]:
        """The messages (by index) whose key belongs to another partition, counted.

        A case split across partitions is folded twice, half in each, and never
        joins: such a message is refused before it is decoded. A message without a
        key is left to the decoder (``key_mismatch``).
        """
        if self.partitions is None:
            return {}
        expected = partitions_of(keys, self.partitions)
        if expected.count(partition) == len(expected):  # the usual batch: all in place
            return {}
        wrong = {i: Rejection("wrong_partition", wrong_partition_detail(p, partition))
                 for i, p in enumerate(expected) if p is not None and p != partition}
        if wrong:
            self.metrics.rejected.labels(self.topic, "wrong_partition").inc(len(wrong))
        return wrong

    def settle(self, partition: int, pending: dict[str, records.Record],
               before: dict[str, records.Record | None]) -> None:
        """Count a batch's changed cases: figures and open work, once per case."""
        self.recount(partition, pending, before.items())
        before.clear()

    def recount(self, partition: int, pending: dict[str, records.Record],
                changed: Iterable[tuple[str, records.Record | None]]) -> None:
        """Count some of a batch's changed cases: (table key, its record before the batch)
        pairs, each taken to its record in ``pending`` (``settle`` in slices)."""
        for tkey, old in changed:
            try:
                self._recount(partition, tkey, old, pending[tkey])
            except Exception as exc:  # noqa: BLE001 - a bug must not stop the stream
                log.error("figures not recounted topic=%s partition=%d error=%s",
                          self.topic, partition, type(exc).__name__)  # never the key
                self.metrics.rejected.labels(self.topic, "internal_error").inc()

    def _recount(self, partition: int, tkey: str, old: records.Record | None,
                 new: records.Record) -> None:
        self.state.part(self.topic, partition).replace(
            facts_of(old, self.ctx), facts_of(new, self.ctx))
        if self.work is not None:
            self.work.update((self.topic, partition), tkey, new)

    def batch_done(self, batch: Sequence[Any]) -> None:
        """Count a folded batch of aiokafka records: consumed and latency."""
        now = time.time()
        self._count(len(batch), now)
        observe_many(self._children.latency, [max(0.0, now - r.timestamp / 1000.0)
                                              for r in batch if r.timestamp is not None])

    def _count(self, n: int, now: float) -> None:
        m = self._children
        m.consumed.inc(n)
        m.last_processed.set(now)
        duplicates = self.tally.pop("duplicate", 0)
        if duplicates:
            m.duplicates.inc(duplicates)
        for event_type, count in self.tally.items():
            applied = self._applied.get(event_type)
            if applied is None:
                applied = self._applied[event_type] = self.metrics.applied.labels(
                    self.topic, event_type)
            applied.inc(count)
        self.tally.clear()

    def fold(self, key: bytes | None, value: bytes | None, partition: int,
             table: MutableMapping[str, bytes], now: float | None = None,
             pending: dict[str, records.Record] | None = None,
             before: dict[str, records.Record | None] | None = None) -> Applied | Rejection:
        """Decode one message and fold it into its case record; the caller counts it.

        A Rejection goes to the dead-letter topic (the caller sends it). With
        ``pending`` (a batch), changed records are kept there, decoded, and written
        to the table once by the caller: a case touched several times in a batch
        costs one changelog write. With ``before`` as well, the figures and open work
        wait for ``settle`` at the end of the batch, which counts each changed case
        once (``before`` keeps what it was when the batch first touched it).
        """
        now = time.time() if now is None else now
        result = self.decoder.decode(key, value, now)
        if isinstance(result, Rejection):
            self.metrics.rejected.labels(self.topic, result.reason).inc()
            return result
        if result.timestamp > self._latest:
            self._latest = result.timestamp
            self._children.last_event_time.set(self._latest)
        kind, slot, slot_value = records.slot_of(result)
        tkey = records.table_key(kind, result.key)
        if pending is not None and tkey in pending:
            old: records.Record | None = pending[tkey]
        else:
            raw = table.get(tkey)
            old = records.loads(raw) if raw is not None else None
        new = records.fold(old, kind, slot, slot_value, partition)
        event_type: str = result.event_type  # type: ignore[attr-defined]
        return self.keep(event_type, tkey, old, new, partition, table, pending, before)

    def keep(self, event_type: str, tkey: str, old: records.Record | None,
             new: records.Record | None, partition: int, table: MutableMapping[str, bytes],
             pending: dict[str, records.Record] | None,
             before: dict[str, records.Record | None] | None) -> Applied:
        """Keep a folded record (None: a duplicate): written now, or with the batch."""
        if new is None:
            self.tally["duplicate"] += 1
            return Applied(event_type, False, tkey)
        if pending is None:
            table[tkey] = records.dumps(new)
        else:
            pending[tkey] = new
        if before is None:
            self._recount(partition, tkey, old, new)
        elif tkey not in before:
            before[tkey] = old
        self.tally[event_type] += 1
        return Applied(event_type, True, tkey)

@dataclass(frozen=True)
class _Children:
    """Labelled metric children of one topic, resolved once (labels() costs ~1 us)."""

    consumed: Any
    last_processed: Any
    latency: Any
    last_event_time: Any
    duplicates: Any

    @classmethod
    def of(cls, m: PipelineMetrics, topic: str) -> _Children:
        return cls(m.consumed.labels(topic), m.last_processed.labels(topic),
                   m.latency.labels(topic), m.last_event_time.labels(topic),
                   m.duplicates.labels(topic))


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
