"""Retention and erasure: a council's retention schedule on every topic the product writes.

``python -m stream retention --older-than DURATION [--apply]``, run with the workers
stopped (``--apply`` refuses while the worker group has members):

* **Source topics**: every record whose Kafka timestamp is before the cut-off, up to
  the first one at or after it, is deleted (Kafka DeleteRecords: a log loses only a
  prefix). The product's producers stamp a record with its event time (occurred_at),
  so the cut-off is business time; a producer that leaves the send time is judged
  later, never earlier. An event that arrived after a newer one in its partition is
  deleted at the first run after every record before it has expired.
* **Dead letters**: deleted once older than the dead-letter topic's own retention
  (``topics/topics.toml``), by the time they were rejected.
* **Changelogs**: the records of cases whose every event occurred before the cut-off
  are erased. Kafka cannot delete single records of a compacted log, so the
  partition is copied forward without them (live records and progress markers
  rewritten at its end), then everything before the copy is deleted. The erased
  cases' cells go to the partition's archive first (``stream.state.archive``): the
  figures of past months stay as they were published, as aggregates only.
* **The children table** (``stream.state.children``): a child's record whose every
  entry is before the cut-off is erased like a case; otherwise its entries before the
  cut-off are settled into its tally (their facts kept, no contact key kept). The
  repartition topic's hops are deleted up to the children table's progress markers
  (every hop before them is folded; they carry contact keys).
* **Checkpoints**: a checkpoint taken before the run has offsets below the rewritten
  changelogs' start, and the worker refuses it (``checkpoint.usable``): it restores
  from the changelogs, and its next checkpoint holds no erased case.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import for_code

from stream.contract.topics import CHILDREN, DEADLETTER, TopicSpec, event_families
from stream.state import archive, children, progress, records
from stream.state.aggregates import Aggregates
from stream.state.facts import FactContext
from stream.state.families import facts_of


@dataclass(frozen=True)
class Deletion:
    """A prefix of one partition to delete: offsets ``start`` up to ``before``."""

    topic: str
    partition: int
    start: int
    before: int

    @property
    def offsets(self) -> int:
        return max(0, self.before - self.start)


@dataclass
class Rewrite:
    """One changelog partition copied forward without its erased cases."""

    topic: str
    partition: int
    start: int
    end: int  # the copy starts here; everything before it is deleted
    kept: dict[bytes, bytes] = field(default_factory=dict)  # raw key -> raw value
    erased: int = 0  # case records left out
    archive: bytes | None = None  # the partition's new archive value

    @property
    def deletion(self) -> Deletion:
        return Deletion(self.topic, self.partition, self.start, self.end)


@dataclass
class Plan:
    """What a run deletes, per topic and partition."""

    cutoff: float  # POSIX s
    deletions: list[Deletion] = field(default_factory=list)
    rewrites: list[Rewrite] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The plan as the command prints it: counts only, never a key."""
        out = [f"delete\t{d.topic}\t{d.partition}\t{d.offsets} offsets"
               for d in self.deletions if d.offsets]
        out += [f"erase\t{r.topic}\t{r.partition}\t{r.erased} cases\t"
                f"{len(r.kept)} records copied forward" for r in self.rewrites]
        return out or ["nothing to delete"]


def expired(record: records.Record, cutoff: float) -> bool:
    """True when every event of the case occurred before ``cutoff`` (POSIX s)."""
    if record.get("k") == children.KIND:  # the child's latest contact or referral
        return bool(record.get(children.LATEST, cutoff) < cutoff)
    times = [slot[0] for name, slot in record.items() if name not in ("k", "p")]
    return bool(times) and max(times) < cutoff


async def _offsets(consumer: AIOKafkaConsumer, meta: Any, topic: str,
                   cutoff_ms: int) -> list[Deletion]:
    """Per partition: the prefix of records stamped before ``cutoff_ms``."""
    tps = [TopicPartition(topic, p) for p in sorted(meta.partitions_for_topic(topic) or ())]
    starts = await consumer.beginning_offsets(tps)
    ends = await consumer.end_offsets(tps)
    found = await consumer.offsets_for_times({tp: cutoff_ms for tp in tps})
    return [Deletion(topic, tp.partition, starts[tp],
                     ends[tp] if found[tp] is None else found[tp].offset) for tp in tps]


async def _read(consumer: AIOKafkaConsumer, tp: TopicPartition, start: int,
                end: int) -> dict[bytes, tuple[int, bytes | None]]:
    """The latest (offset, value) of every key in ``[start, end)`` of a partition.

    An empty range is not assigned at all: a fetch of a partition with nothing to read,
    still in flight when the consumer stopped, left ``AIOKafkaConsumer.stop`` waiting
    for ever (aiokafka 0.14: the fetch task cancelled, its request never answered), and
    the retention run hung after its plan was complete.
    """
    latest: dict[bytes, tuple[int, bytes | None]] = {}
    if start >= end:
        return latest
    consumer.assign([tp])
    consumer.seek(tp, start)
    while await consumer.position(tp) < end:
        batch = await consumer.getmany(tp, timeout_ms=1000)
        for message in batch.get(tp, []):
            if message.offset < end and message.key is not None:
                latest[message.key] = (message.offset, message.value)
    return latest


def rewrite(topic: str, partition: int, start: int, end: int,
            latest: Mapping[bytes, tuple[int, bytes | None]], cutoff: float,
            ctx: FactContext) -> Rewrite:
    """The copy of one changelog partition without the cases expired at ``cutoff``.

    If the partition's archive says an earlier run copied it forward but did not get
    to delete (``through`` past the start), that deletion is finished first: only
    records from ``through`` on are judged, so nothing is archived twice.
    """
    key = orjson.dumps(archive.archive_key(partition))
    cells, through = Aggregates(), start
    if key in latest and latest[key][1] is not None:
        cells, through = archive.decode(latest[key][1])  # type: ignore[arg-type]
    through = max(through, start)
    plan = Rewrite(topic, partition, start, through)
    live = {k: v for k, (o, v) in latest.items() if o >= through and v is not None and k != key}
    for raw_key, value in live.items():
        name = orjson.loads(raw_key)
        if not progress.is_marker(name):
            record = records.loads(value)
            if expired(record, cutoff):
                cells.apply(facts_of(record, ctx), +1)
                plan.erased += 1
                continue
            if record.get("k") == children.KIND:  # its old entries settled: same facts
                kept = children.erased(record, cutoff, ctx)
                if kept is not None:
                    plan.erased += 1
                    value = records.dumps(kept)
        plan.kept[raw_key] = value
    if plan.erased:
        plan.end = end
        plan.archive = archive.encode(cells, end)
    else:
        plan.kept = {}
    return plan


async def plan(bootstrap: str, sources: Mapping[str, TopicSpec], changelogs: Mapping[str, str],
               cutoff: float, now: float, ctx: FactContext, **kwargs: Any) -> Plan:
    """What a run with this cut-off (POSIX s) deletes; reads every changelog whole.

    ``sources``: the topic catalogue; ``changelogs``: source topic -> its changelog.
    """
    result = Plan(cutoff)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", **kwargs)
    await consumer.start()
    try:
        meta = await consumer._client.fetch_all_metadata()  # every topic, not only assigned
        for spec in event_families(sources).values():
            result.deletions += await _offsets(consumer, meta, spec.name, int(cutoff * 1000))
        dead = sources.get(DEADLETTER)
        if dead is not None and dead.retention_ms >= 0:
            result.deletions += await _offsets(consumer, meta, dead.name,
                                               int(now * 1000) - dead.retention_ms)
        for name in changelogs.values():
            for deletion in await _offsets(consumer, meta, name, 0):  # start and end only
                tp = TopicPartition(name, deletion.partition)
                end = (await consumer.end_offsets([tp]))[tp]
                latest = await _read(consumer, tp, deletion.start, end)
                step = rewrite(name, deletion.partition, deletion.start, end, latest,
                               cutoff, ctx)
                if step.erased or step.end > step.start:
                    result.rewrites.append(step)
                if CHILDREN in sources and name.endswith(f"-{sources[CHILDREN].name}-changelog"):
                    result.deletions += await _folded_hops(consumer, meta, sources[CHILDREN],
                                                           latest)
    finally:
        await consumer.stop()
    return result


async def _folded_hops(consumer: AIOKafkaConsumer, meta: Any, spec: TopicSpec,
                       latest: Mapping[bytes, tuple[int, bytes | None]]) -> list[Deletion]:
    """The repartition topic's hops before the children table's progress markers: folded,
    so deleted (each carries a contact key); hops not yet folded are left."""
    out = []
    for deletion in await _offsets(consumer, meta, spec.name, 0):
        marker = latest.get(orjson.dumps(progress.marker_key(deletion.partition)))
        if marker is not None and marker[1] is not None:
            out.append(Deletion(spec.name, deletion.partition, deletion.start,
                                max(deletion.start, int(marker[1]))))
    return out


async def workers_running(bootstrap: str, group: str, **kwargs: Any) -> int:
    """How many members the worker group has (0: no worker is running)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kwargs)
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    return sum(len(g[5]) for r in responses for g in r.groups)


async def _allow_deletion(admin: AIOKafkaAdminClient, topics: list[str]) -> None:
    """Let DeleteRecords act on the changelogs: Kafka refuses it on a log whose
    cleanup policy is ``compact`` alone. ``compact,delete`` with the retention left
    at -1 (forever) deletes nothing by time. The topic's other settings are kept
    (AlterConfigs replaces the whole set)."""
    described = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
    for response in described:
        for _, _, _, name, entries in response.resources:
            dynamic = {e[0]: e[1] for e in entries if _is_dynamic(e)}
            if "delete" in dynamic.get("cleanup.policy", ""):
                continue
            dynamic |= {"cleanup.policy": "compact,delete", "retention.ms": "-1",
                        "retention.bytes": "-1"}
            altered = await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name,
                                                                configs=dynamic)])
            for error, *_ in (r for response in altered for r in response.resources):
                if error:
                    raise for_code(error)(f"cleanup.policy of {name} not altered")


def _is_dynamic(entry: tuple[Any, ...]) -> bool:
    """A topic's own setting (DescribeConfigs v1+: config_source 1 = DYNAMIC_TOPIC_CONFIG)."""
    return entry[3] == 1 if not isinstance(entry[3], bool) else not entry[3]


async def apply(bootstrap: str, result: Plan, **kwargs: Any) -> int:
    """Carry out a plan: changelog copies first (acknowledged), then every deletion.

    Returns the offsets deleted. Safe to run again after a failure part-way.
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                enable_idempotence=True, **kwargs)
    await producer.start()
    try:
        sent = []
        for step in result.rewrites:
            items = [*step.kept.items()]
            if step.archive is not None:
                items.append((orjson.dumps(archive.archive_key(step.partition)), step.archive))
            for key, value in items:
                sent.append(await producer.send(step.topic, value, key=key,
                                                partition=step.partition))
        await asyncio.gather(*sent)  # raises if Kafka refused one: nothing is deleted
    finally:
        await producer.stop()
    deletions = [d for d in result.deletions + [r.deletion for r in result.rewrites]
                 if d.offsets]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kwargs)
    await admin.start()
    try:
        if result.rewrites:
            await _allow_deletion(admin, sorted({r.topic for r in result.rewrites}))
        if deletions:
            await admin.delete_records({TopicPartition(d.topic, d.partition):
                                        RecordsToDelete(d.before) for d in deletions})
    finally:
        await admin.close()
    return sum(d.offsets for d in deletions)
