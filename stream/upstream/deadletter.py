"""Dead letters for operators: list them, show one, replay them exactly once.

The worker writes every rejected message to the dead-letter topic
(``stream.worker.processor.deadletter_message``): where it came from, why, and the
original key and value in base64. This module reads them back:

* ``list`` prints where each came from and why, never its key or value;
* ``show`` decodes one, for the operator who asked (pseudonymous keys only);
* ``replay`` sends the original key and value back to the source topic, at the
  original Kafka timestamp. A replay *marker* naming the dead letter goes to the
  dead-letter topic in the same Kafka transaction as the re-sent record, so what
  has been replayed is recorded on Kafka, atomically with the replay itself.

Exactly once, also with two operators at once: every replayer uses one
transactional id. Starting a producer with it fences the previous holder (its open
transaction is aborted, its next commit fails); only then does the new replayer read
the markers (``read_committed``), so it sees every replay committed before it and
none can commit after it. A fenced replayer stops and says so; the other carries on.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import ProducerFenced  # type: ignore[import-untyped,unused-ignore]

from stream.contract.topics import DEADLETTER, is_internal, load_topics
from stream.settings import Settings

#: Records re-sent per transaction (each with its marker).
BATCH = 100


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter, where it sits on the dead-letter topic and what it holds."""

    partition: int
    offset: int
    source_topic: str
    source_partition: int
    source_offset: int
    timestamp_ms: float | None
    reason: str
    detail: str
    rejected_at: float
    key: bytes | None
    value: bytes | None

    @property
    def where(self) -> tuple[int, int]:
        """(partition, offset) on the dead-letter topic: the dead letter's identity."""
        return self.partition, self.offset


@dataclass(frozen=True)
class Filter:
    """Which dead letters a command applies to (``None``: any)."""

    reason: str | None = None
    since: float | None = None  # rejected_at, POSIX seconds

    def __call__(self, letter: DeadLetter) -> bool:
        return ((self.reason is None or letter.reason == self.reason)
                and (self.since is None or letter.rejected_at >= self.since))


def parse_since(text: str) -> float:
    """An ISO date or instant (naive: UTC) -> POSIX seconds."""
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _b64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def parse(partition: int, offset: int, value: bytes) -> DeadLetter | tuple[int, int] | None:
    """A dead-letter topic record -> a dead letter, the (partition, offset) a replay
    marker names, or None for anything else."""
    try:
        body = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict):
        return None
    if "replayed" in body:
        marked = body["replayed"]
        return int(marked["partition"]), int(marked["offset"])
    return DeadLetter(partition, offset, str(body["source_topic"]), int(body["partition"]),
                      int(body["offset"]), body.get("timestamp_ms"), str(body["reason"]),
                      str(body["detail"]), float(body["rejected_at"]),
                      _b64(body.get("key_b64")), _b64(body.get("value_b64")))


def marker(letter: DeadLetter) -> bytes:
    """The record saying a dead letter has been replayed."""
    return orjson.dumps({"replayed": {"partition": letter.partition, "offset": letter.offset},
                         "replayed_at": datetime.now(UTC).timestamp()})


@dataclass
class Contents:
    """The dead-letter topic read to its end: the dead letters and the replayed ones."""

    letters: list[DeadLetter]
    replayed: set[tuple[int, int]]

    def pending(self, wanted: Filter) -> list[DeadLetter]:
        """Letters the filter selects that have not been replayed, in topic order."""
        return [d for d in self.letters if wanted(d) and d.where not in self.replayed]


def topic_name() -> str:
    return load_topics()[DEADLETTER].name


def _partitions() -> int:
    # As created by ensure_topics from the catalogue (and fixed since).
    return load_topics()[DEADLETTER].partitions


async def read_all(settings: Settings, topic: str | None = None) -> Contents:
    """Every committed record of the dead-letter topic up to its end now."""
    topic = topic or topic_name()
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.broker, enable_auto_commit=False,
                                isolation_level="read_committed", auto_offset_reset="earliest",
                                **settings.kafka_client_kwargs())
    await consumer.start()
    contents = Contents([], set())
    try:
        partitions = [TopicPartition(topic, p) for p in range(_partitions())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, records in batch.items():
                for r in records:
                    if r.offset < ends[tp] and r.value is not None:
                        _add(contents, parse(tp.partition, r.offset, r.value))
    finally:
        await consumer.stop()
    return contents


def _add(contents: Contents, item: DeadLetter | tuple[int, int] | None) -> None:
    if isinstance(item, DeadLetter):
        contents.letters.append(item)
    elif item is not None:
        contents.replayed.add(item)


def listing(contents: Contents, wanted: Filter) -> Iterator[str]:
    """One tab-separated line per selected dead letter: no key, no value."""
    yield "dl_partition\tdl_offset\trejected_at\ttopic\tpartition\toffset\treason\treplayed\tdetail"
    for d in contents.letters:
        if wanted(d):
            at = datetime.fromtimestamp(d.rejected_at, UTC).isoformat(timespec="seconds")
            done = "yes" if d.where in contents.replayed else "no"
            yield (f"{d.partition}\t{d.offset}\t{at}\t{d.source_topic}\t{d.source_partition}\t"
                   f"{d.source_offset}\t{d.reason}\t{done}\t{d.detail}")


def showing(letter: DeadLetter) -> str:
    """One dead letter in full, its value decoded (JSON pretty-printed when it parses)."""
    try:
        value = orjson.dumps(orjson.loads(letter.value or b""),
                             option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        value = repr(letter.value)
    key = letter.key.decode("utf-8", "replace") if letter.key is not None else "(none)"
    return (f"source: {letter.source_topic} partition {letter.source_partition} offset "
            f"{letter.source_offset}\nreason: {letter.reason}\ndetail: {letter.detail}\n"
            f"key: {key}\nvalue:\n{value}")


@dataclass
class ReplayResult:
    """What one replay did."""

    sent: int = 0
    skipped_empty: int = 0
    #: from a repartition topic (``child_window_passed``): a worker's own hop, judged
    #: too late for its child's window; sent again it would only be rejected again
    skipped_internal: int = 0
    fenced: bool = False


def sendable(pending: list[DeadLetter], result: ReplayResult) -> list[DeadLetter]:
    """The letters a replay re-sends: each has a value and came from an event topic.
    The others are counted in ``result`` and left as they are."""
    # the catalogue read once per source topic, not once per letter
    internal = {t: is_internal(t) for t in {d.source_topic for d in pending}}
    out = []
    for d in pending:
        if d.value is None:
            result.skipped_empty += 1
        elif internal[d.source_topic]:
            result.skipped_internal += 1
        else:
            out.append(d)
    return out


def _chunks(letters: list[DeadLetter], size: int) -> Iterable[list[DeadLetter]]:
    for start in range(0, len(letters), size):
        yield letters[start:start + size]


async def replay(settings: Settings, wanted: Filter) -> ReplayResult:
    """Re-send the selected, not yet replayed dead letters to their source topics."""
    topic = topic_name()
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.broker, acks="all", enable_idempotence=True,
        transactional_id=f"{settings.app_id}-deadletter-replay",
        **settings.kafka_client_kwargs())
    await producer.start()  # init_transactions: fences any other replayer first
    result = ReplayResult()
    try:
        pending = (await read_all(settings, topic)).pending(wanted)
        for chunk in _chunks(sendable(pending, result), BATCH):
            async with producer.transaction():
                for d in chunk:
                    await producer.send(d.source_topic, d.value, key=d.key,
                                        timestamp_ms=None if d.timestamp_ms is None
                                        else int(d.timestamp_ms))
                    await producer.send(topic, marker(d), key=d.key, partition=d.partition)
            result.sent += len(chunk)
    except ProducerFenced:
        result.fenced = True
    finally:
        try:
            await producer.stop()
        except ProducerFenced:
            result.fenced = True
    return result
