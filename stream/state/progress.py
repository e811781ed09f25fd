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
whatever Faust committed (stream/worker/batches.py), and the consumer group's commits
follow the markers. Replaying from an earlier offset is harmless: the fold is
idempotent by event id.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import TypeVar

#: a partition as the caller names it (Faust's ``TP`` in the worker)
TP = TypeVar("TP", bound=Hashable)

#: Record keys are ``kind:case-key`` with an alphabetic kind, so this cannot clash.
PREFIX = "!offset:"


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
    """Next offset to process per source partition: where its progress marker points.

    An assignment sets it from the state's marker (``reset``); each processed batch
    moves it past its last record (``advance``). The consumer delivers a partition's
    records in order from that offset (stream/worker/batches.py), so the frontier never
    passes a record that was not processed.
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

    def advance(self, partition: int, last_offset: int) -> None:
        """Every offset up to ``last_offset`` of ``partition`` has been processed."""
        self.next[partition] = last_offset + 1
