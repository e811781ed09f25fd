"""Fixtures and helpers of the fault tests (crashes, broker restarts, scale-out, hostile input).

The broker and worker fixtures are the integration ones (imported, so pytest
registers them here too); the helpers below look at Kafka itself (committed
offsets of the worker's consumer group, end offsets, the dead-letter topic) so
a test knows when the stream is really done, independently of the worker.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import murmur2

from stream.contract.topics import folded, load_topics
from stream.dev.broker import LocalBroker
from tests.groundtruth import APP_ID, TOPICS, Dataset, Message, expected
from tests.integration.conftest import broker, start_worker, workers  # noqa: F401
from tests.integration.harness import ROOT, WorkerProcess, total

#: every topic the workers fold and own: the event topics and the repartition topic
SOURCE_TOPICS = tuple(spec.name for spec in folded(load_topics(app_id=APP_ID)).values())
DEADLETTER = TOPICS["deadletter"]
PARTITIONS = {spec.name: spec.partitions for spec in load_topics(app_id=APP_ID).values()}
RESULTS = ROOT / "results"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

#: figures that count events (cases): what "lost" and "double counted" are measured on
COUNT_FIGURES = ("cspa_contacts_received", "cspa_contacts_decided", "cspa_calls_offered",
                 "cspa_calls_answered", "cspa_calls_abandoned", "cspa_map_enquiries_completed",
                 "cspa_map_enquiry_workdays_count", "cspa_contact_completion_workdays_count",
                 "cspa_audits", "cspa_child_contacts", "cspa_child_referrals",
                 "cspa_contacts_without_child_key", "cspa_referrals_without_child_key")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# --- Kafka's view ---------------------------------------------------------------------------

async def _end_offsets(bootstrap: str, topics: Iterable[str],
                       **kw: Any) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                request_timeout_ms=10_000, **kw)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS[t])]
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def _committed(bootstrap: str, group: str, **kw: Any) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000, **kw)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return {tp: meta.offset for tp, meta in offsets.items()}
    finally:
        await admin.close()


def end_offsets(bootstrap: str, topics: Iterable[str] = SOURCE_TOPICS,
                **kw: Any) -> dict[TopicPartition, int]:
    """High-water mark of every partition of ``topics``."""
    return run(_end_offsets(bootstrap, list(topics), **kw))


def behind(bootstrap: str, group: str = "cspa", topics: Iterable[str] = SOURCE_TOPICS,
           **kw: Any) -> dict[TopicPartition, int]:
    """Messages not yet committed by the consumer group, per partition (Kafka's view)."""
    ends = end_offsets(bootstrap, topics, **kw)
    committed = run(_committed(bootstrap, group, **kw))
    return {tp: end - max(committed.get(tp, 0), 0) for tp, end in ends.items()
            if end > max(committed.get(tp, 0), 0)}


def backlog(bootstrap: str, group: str = "cspa", topics: Iterable[str] = SOURCE_TOPICS,
            **kw: Any) -> int:
    """Messages of ``topics`` not yet committed by the consumer group."""
    return sum(behind(bootstrap, group, topics, **kw).values())


async def _produce_tracked(bootstrap: str, messages: list[Message],
                           **kw: Any) -> list[tuple[int, int]]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True,
                                linger_ms=5, max_request_size=2_000_000, **kw)
    await producer.start()
    try:
        futures = [await producer.send(m.topic, m.value, key=m.key, timestamp_ms=m.timestamp_ms)
                   for m in messages]
        await producer.flush()
        return [((md := await f).partition, md.offset) for f in futures]
    finally:
        await producer.stop()


def produce_tracked(bootstrap: str, messages: list[Message], **kw: Any) -> list[tuple[int, int]]:
    """Produce in order; return (partition, offset) of every message."""
    return run(_produce_tracked(bootstrap, messages, **kw))


async def _read_topic(bootstrap: str, topic: str, n: int, timeout: float,
                      **kw: Any) -> list[Any]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                fetch_max_bytes=8 * 2**20, **kw)
    await consumer.start()
    out: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            out += [r for records in batch.values() for r in records]
            # To the end, not to the first empty poll: a poll can come back empty while a
            # fetch is still on its way (a loaded machine), and the records it would have
            # brought are the newest, the ones a test counts against the last incarnation.
            if len(out) >= n and await _read_to_end(consumer):
                break
    finally:
        await consumer.stop()
    return out


async def _read_to_end(consumer: AIOKafkaConsumer) -> bool:
    """Whether every partition of the topic has been read up to its end offset now."""
    parts = consumer.assignment()
    if not parts:
        return False
    ends = await consumer.end_offsets(list(parts))
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


def read_deadletter(bootstrap: str, n: int, timeout: float = 60, **kw: Any) -> list[dict]:
    """At least ``n`` dead-letter records, decoded: every one on the topic once ``n`` are
    in (read up to the end offsets of that moment)."""
    records = run(_read_topic(bootstrap, DEADLETTER, n, timeout, **kw))
    out = []
    for r in records:
        body = orjson.loads(r.value)
        body["_key"] = r.key
        out.append(body)
    return out


def b64(value: str | None) -> bytes | None:
    return None if value is None else base64.b64decode(value)


# --- the worker's view ----------------------------------------------------------------------

def figures_state(w: WorkerProcess) -> tuple[set[tuple[str, int]], bool]:
    body = w.get_json("/cells")
    return {(t, p) for t, p in body["owned"]}, bool(body["recovering"])


def caught_up(*ws: WorkerProcess) -> bool:
    """Every partition owned by exactly one worker, none recovering, no lag on any."""
    owned: list[tuple[str, int]] = []
    lag = 0.0
    for w in ws:
        body = w.get_json("/cells")
        if body["recovering"]:
            return False
        owned += [(t, p) for t, p in body["owned"]]
        lag += total(w.samples(), "cspa_consumer_lag")
    everything = {(t, p) for t in SOURCE_TOPICS for p in range(PARTITIONS[t])}
    return lag == 0 and len(owned) == len(everything) and set(owned) == everything


def wait_caught_up(*ws: WorkerProcess, timeout: float = 240, stable: float = 3.0) -> None:
    """Wait until the workers have processed everything (their own view, see ``caught_up``)
    and stay so for ``stable`` seconds.

    The worker's view, not the group's committed offsets: those can stall after a restart
    (see the report), which says nothing about the figures.
    """
    deadline = time.monotonic() + timeout
    since: float | None = None
    while time.monotonic() < deadline:
        try:
            ok = caught_up(*ws)
        except OSError:
            ok = False
        now = time.monotonic()
        if not ok:
            since = None
        elif since is None:
            since = now
        elif now - since >= stable:
            return
        time.sleep(0.5)
    raise AssertionError(f"workers not caught up in {timeout}s: "
                         + "; ".join(w.log_tail(5) for w in ws))


def commit_backlog(bootstrap: str, timeout: float = 20, *,
                   lag: Callable[..., dict[TopicPartition, int]] = behind,
                   **kw: Any) -> dict[str, int]:
    """Partitions whose committed offset still lags the end after ``timeout`` seconds.

    ``lag`` is ``behind`` (a test may hand in another). A look that raises (the broker
    busy) is tried again; if none succeeds before the deadline this fails: an empty
    answer always means Kafka was asked and said so.
    """
    deadline = time.monotonic() + timeout
    left: dict[TopicPartition, int] | None = None
    error: Exception | None = None
    while True:
        try:
            left = lag(bootstrap, **kw)
        except Exception as exc:  # noqa: BLE001 - broker busy: try again
            error = exc
        else:
            if not left:
                return {}
        if time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    if left is None:
        raise AssertionError(f"committed offsets never read in {timeout}s: {error!r}")
    return {f"{tp.topic}[{tp.partition}]": n for tp, n in left.items()}


#: the worker's repartition topic (app id "cspa"): a child's contacts hop there, keyed by
#: the child
REKEY = TOPICS["children"]
#: figures the children table holds: a worker has those of the children whose key falls
#: in its partitions of ``REKEY``, whichever worker folded their contacts
CHILD_FIGURES = frozenset({"cspa_child_contacts", "cspa_child_referrals"})


def kafka_partition(key: bytes, partitions: int) -> int:
    """Kafka's default partition of a keyed record (aiokafka's murmur2, not the worker's)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def _of_children(sent: Iterable[Message], rekey: set[int]) -> list[Message]:
    """The contacts-topic messages of the contacts whose child hops into ``rekey``."""
    sent = list(sent)
    receipts = sorted((e["occurred_at"], e["event_id"], m.key, e.get("child_key"))
                      for m in sent if m.topic == TOPICS["contacts"]
                      and (e := orjson.loads(m.value))["event_type"] == "contact.received")
    # the child the latest receipt names (a corrected receipt may name another: the
    # contact was withdrawn from the first), latest as the ground truth's ``_latest``
    child = {k: c for _, _, k, c in receipts}
    mine = {k for k, c in child.items()
            if c is not None and kafka_partition(c.encode(), PARTITIONS[REKEY]) in rekey}
    return [m for m in sent if m.topic == TOPICS["contacts"] and m.key in mine]


def owned_truth(sent: list[Message], places: list[tuple[int, int]],
                mine: set[tuple[str, int]]) -> Samples:
    """What a worker owning ``mine`` holds: the figures of the source partitions it owns,
    and the children's figures of the repartition partitions it owns."""
    source = expected(Dataset([m for m, (p, _) in zip(sent, places, strict=True)
                               if (m.topic, p) in mine]))
    kids = expected(Dataset(_of_children(sent, {p for t, p in mine if t == REKEY})))
    return {**{k: v for k, v in source.items() if k[0] not in CHILD_FIGURES},
            **{k: v for k, v in kids.items() if k[0] in CHILD_FIGURES}}


def counted(samples: Samples, truth: Samples,
            names: Iterable[str] = COUNT_FIGURES) -> tuple[int, int]:
    """(lost, double counted): how far the count figures are below / above the truth."""
    lost = double = 0
    for name in names:
        keys = {ls for (n, ls) in samples if n == name} | {ls for (n, ls) in truth if n == name}
        for ls in keys:
            diff = samples.get((name, ls), 0.0) - truth.get((name, ls), 0.0)
            if diff > 1e-9:
                double += round(diff)
            elif diff < -1e-9:
                lost += round(-diff)
    return lost, double


def differences(samples: Samples, truth: Samples, limit: int = 15,
                names: Iterable[str] = COUNT_FIGURES) -> list[str]:
    """The first ``limit`` count cells that differ, for failure messages."""
    out = []
    for name in names:
        keys = {ls for (n, ls) in samples if n == name} | {ls for (n, ls) in truth if n == name}
        for ls in sorted(keys, key=sorted):
            got, want = samples.get((name, ls), 0.0), truth.get((name, ls), 0.0)
            if abs(got - want) > 1e-9:
                out.append(f"{name}{dict(ls)}: got {got:g}, want {want:g}")
    return out[:limit]


def summed(*many: Samples) -> Samples:
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for samples in many:
        for key, value in samples.items():
            out[key] = out.get(key, 0.0) + value
    return out


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(f"\n{name}: {json.dumps(data, sort_keys=True)}")
    return path


def rejected(w: WorkerProcess) -> float:
    return total(w.samples(), "cspa_events_rejected_total")


@pytest.fixture
def fresh_worker(broker: LocalBroker, tmp_path: Path,  # noqa: F811
                 workers: list[WorkerProcess]):  # noqa: F811
    """Start (and later stop) a worker on the test's broker: ``fresh_worker(name, **env)``."""
    def start(name: str = "w1", **env: str) -> WorkerProcess:
        return start_worker(broker, tmp_path, workers, name, **env)
    return start
