"""Where each partition's state ends: progress markers kept beside the records.

Faust commits consumer offsets from its own acknowledgement bookkeeping, and in
faust-streaming 0.15 that bookkeeping can run ahead of the state: its commit
check tolerates a one-message gap at the head of a partition and skips the
check entirely while the committed offset is still unknown (zero or not yet
loaded after a rebalance). After a SIGKILL the worker then resumes past events
that never reached the records table, and they are lost.

So the state carries its own position. Each batch writes, after its records,
one marker per source partition it read from: the next offset to process.
The marker goes to the same changelog partition as the records it follows,
and a Kafka partition keeps order, so whatever the changelog holds, the marker
restored from it never claims an event whose record is missing. After every
assignment (start, restart, rebalance) the consumer is moved to the marker,
whatever Faust committed. Replaying from an earlier offset is harmless: the
fold is idempotent by event id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

#: Record keys are ``kind:case-key`` with an alphabetic kind, so this cannot clash.
PREFIX = "!offset:"

#: Where each assigned source partition resumes (``start_offset``): TP -> the next
#: offset to process, or None when the state knows nothing of the partition.
ResumeOffsets = Callable[[Iterable[TP]], Mapping[TP, int | None]]


def marker_key(partition: int) -> str:
    """Table key of the progress marker of one source partition."""
    return f"{PREFIX}{partition}"


def is_marker(key: str) -> bool:
    """True for progress markers, which are not case records."""
    return key.startswith(PREFIX)


def encode(next_offset: int) -> bytes:
    return b"%d" % next_offset


def resume_offset(table: Mapping[str, bytes], partition: int) -> int | None:
    """The next offset to process for ``partition`` according to the state."""
    raw = table.get(marker_key(partition))
    return int(raw) if raw is not None else None


def start_offset(table: Mapping[str, bytes], partition: int, has_records: bool) -> int | None:
    """Where a partition resumes after recovery.

    Its marker; else, if the state holds records of it, the start of the log (they
    were written before any marker, so Faust's commit may have run ahead of them);
    else None: the state knows nothing of the partition, and the consumer group's
    committed offset (an operator may have set it) stands.
    """
    marker = resume_offset(table, partition)
    if marker is not None:
        return marker
    return 0 if has_records else None


def rewind_plan(assigned: Iterable[TP], committed: Mapping[TP, int | None],
                resume: Mapping[TP, int | None]) -> dict[TP, int]:
    """Seeks that make consumption start where the state ends.

    ``committed`` is Faust's committed offset (None: none, or zero); ``resume`` is
    ``start_offset`` per partition. Seeking to 0 is safe: the broker resets an offset
    below the log start to the earliest one.
    """
    plan: dict[TP, int] = {}
    for tp in assigned:
        target = resume.get(tp)
        if target is None:
            continue  # not a source topic of ours, or nothing known: Faust's offset stands
        if target != (committed.get(tp) or 0):
            plan[tp] = target
    return plan


class Frontier:
    """Next offset to process per partition, advanced only over offsets actually seen.

    A partition has no frontier until an assignment sets one from the state's marker
    (``reset``): messages Faust delivers before that start from its own committed
    offset, which cannot be trusted, so they are processed (harmless: the fold is
    idempotent) but move nothing.

    Faust can also hand the agent a partition's messages with a hole in them (messages
    it fetched and then dropped around a seek or a rebalance). ``see`` reports the hole
    instead of moving past it; the caller reads the missing range itself
    (``HoleFiller``), processes it, and closes the hole with ``filled``.
    """

    def __init__(self) -> None:
        self.next: dict[int, int] = {}

    def reset(self, partition: int, offset: int) -> None:
        """Start again at ``offset`` (after an assignment)."""
        self.next[partition] = offset

    def drop(self, keep: Iterable[int]) -> None:
        """Forget partitions no longer assigned."""
        for partition in set(self.next) - set(keep):
            del self.next[partition]

    def see(self, partition: int, offset: int) -> int | None:
        """Record one processed offset; on a hole, return its first offset and move nothing."""
        nxt = self.next.get(partition)
        if nxt is None or offset < nxt:
            return None  # no frontier yet, or delivered again (a replay)
        if offset > nxt:
            return nxt
        self.next[partition] = offset + 1
        return None

    def filled(self, partition: int, end: int) -> None:
        """Every offset below ``end`` has been read (those without a message hold none)."""
        if self.next.get(partition, end) < end:
            self.next[partition] = end


class HoleFiller:
    """Reads a range of a partition directly from Kafka (no consumer group).

    ``read`` returns the messages with ``start <= offset < end``; offsets in between
    that hold no message (transaction markers, compaction, retention) are simply
    absent, which is how a hole is known to be complete.
    """

    def __init__(self, bootstrap: str, client_kwargs: Mapping[str, Any],
                 timeout_s: float = 60.0) -> None:
        self.bootstrap = bootstrap
        self.client_kwargs = dict(client_kwargs)
        self.timeout_s = timeout_s

    async def read(self, topic: str, partition: int, start: int, end: int) -> list[Any]:
        tp = TopicPartition(topic, partition)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    isolation_level="read_committed", **self.client_kwargs)
        await consumer.start()
        try:
            consumer.assign([tp])
            consumer.seek(tp, start)
            out: list[Any] = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.timeout_s
            while await consumer.position(tp) < end:
                if loop.time() > deadline:
                    raise TimeoutError(f"reading {topic}[{partition}] {start}-{end}")
                batch = await consumer.getmany(tp, timeout_ms=500)
                out += [r for r in batch.get(tp, []) if start <= r.offset < end]
            return out
        finally:
            await consumer.stop()


class ResumingConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, moved to the state's markers after every seek."""

    async def perform_seek(self) -> None:
        await super().perform_seek()
        app = self.app
        resume_offsets: ResumeOffsets | None = getattr(app, "resume_offsets", None)
        if resume_offsets is None:
            return
        assigned = self.assignment()
        committed: Any = self._committed_offset
        resume = resume_offsets(assigned)
        plan = rewind_plan(assigned, committed, resume)
        before = {tp: committed.get(tp) for tp in plan}
        # where each partition now starts: its resume offset, else Faust's committed one
        starts = {tp: start if start is not None else (committed.get(tp) or 0)
                  for tp, start in resume.items()}
        for tp, offset in plan.items():
            await self.seek(tp, offset)
            if offset > (committed.get(tp) or 0):
                # Forward: Faust refuses to commit past an unacknowledged head,
                # so tell it where acknowledgements now start.
                committed[tp] = offset
        on_resume = getattr(app, "on_resume_seek", None)
        if on_resume is not None:
            on_resume(plan, before, starts)


class ResumingTransport(faust_aiokafka.Transport):
    Consumer: ClassVar[Any] = ResumingConsumer


class ResumingApp(faust.App):
    """A Faust app whose consumer resumes from the state's progress markers.

    Set ``resume_offsets`` (and optionally ``on_resume_seek``) after building it.
    """

    resume_offsets: ResumeOffsets | None = None
    on_resume_seek: Callable[[Mapping[TP, int], Mapping[TP, int | None], Mapping[TP, int]],
                             None] | None = None

    def _new_transport(self) -> Any:
        return ResumingTransport(self.conf.broker_consumer, self)
