"""Per-case records: every event folds into the record of its case.

A record holds one *slot* per event type (a progression has one slot per
destination). Folding is a commutative, idempotent merge: a slot keeps the
latest recorded *version*, the event with the greatest
``(recorded_at or occurred_at, occurred_at, event_id)`` (``order``), so

* the same event delivered twice changes nothing (counted once),
* a correction replaces the earlier version: one sent with a later
  ``recorded_at`` keeps the business time (``occurred_at``) it corrects, while
  one without ``recorded_at`` is simply a later event of the same type,
* arrival order does not matter: a completion that arrives before its opening
  is kept and matched when the opening arrives, a correction that arrives
  before the version it corrects still wins.

Keeping the maximum of a total order is commutative, associative and
idempotent; two events only tie when they are the same version (same id and
times). Figures read only ``occurred_at`` (slot[0]): durations and months are
business time, whenever the version was recorded.

Records are plain JSON-able dicts (stored as bytes in a Faust table). All the
figures are a pure function of the records (``stream.state.figures``), which is why
a replay after a crash cannot double count.
"""

from __future__ import annotations

from typing import Any

import orjson

from stream.contract.events import (
    AuditGraded,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallQueued,
    ContactDecided,
    ContactProgressed,
    ContactReceived,
    EarlyHelpAllocated,
    EmailResolved,
    Event,
    MapEnquiryCompleted,
    MapEnquiryOpened,
)

Record = dict[str, Any]
#: A slot: [occurred_at (POSIX s), version, *fields]. The version is the event id,
#: or [recorded_at (POSIX s), event id] for an event recorded after it occurred:
#: old records and uncorrected events stay as they were, and only corrections
#: pay the extra bytes.
Slot = list[Any]


def _version(event: Event) -> str | list[Any]:
    recorded = event.recorded_timestamp
    return event.event_id if recorded is None else [recorded, event.event_id]


def order(value: Slot) -> tuple[float, float, str]:
    """(recorded, occurred, event id) of a slot: the greatest is the version kept."""
    version = value[1]
    if isinstance(version, str):
        return value[0], value[0], version
    return version[0], value[0], version[1]


def slot_of(event: Event) -> tuple[str, str, Slot]:
    """(record kind, slot name, slot value) of an event."""
    ts, eid = event.timestamp, _version(event)
    match event:
        case ContactReceived():
            return "contact", "rcv", [ts, eid, event.channel, event.source_code, event.team]
        case ContactDecided():
            return "contact", "dec", [ts, eid, event.outcome, event.pathway]
        case EarlyHelpAllocated():
            return "contact", "alloc", [ts, eid]
        case ContactProgressed():
            return "contact", "prog:" + event.destination, [ts, eid]
        case EmailResolved():
            return "email", "res", [ts, eid]
        case MapEnquiryOpened():
            return "map", "open", [ts, eid]
        case MapEnquiryCompleted():
            return "map", "done", [ts, eid, sorted(set(event.agencies_consulted)),
                                   event.outcome, event.level3_service]
        case CallQueued():
            return "call", "q", [ts, eid, event.queue]
        case CallAnswered():
            return "call", "ans", [ts, eid, event.queue, event.wait_seconds]
        case CallAbandoned():
            return "call", "abn", [ts, eid, event.queue, event.wait_seconds]
        case CallEnded():
            return "call", "end", [ts, eid, event.queue, event.handle_seconds]
        case AuditGraded():
            return "audit", "g", [ts, eid, event.team, event.grade]
    raise TypeError(f"no record slot for {type(event).__name__}")


def table_key(kind: str, case_key: str) -> str:
    """Key of a record in the records table (kinds share a table per topic)."""
    return f"{kind}:{case_key}"


def fold(record: Record | None, kind: str, slot: str, value: Slot,
         partition: int) -> Record | None:
    """The record with ``value`` merged into ``slot``; None if nothing changed.

    ``p`` remembers the partition so that figures can be rebuilt per partition
    after a restart or rebalance.
    """
    if record is None:
        return {"k": kind, "p": partition, slot: value}
    current = record.get(slot)
    if current is not None and order(current) >= order(value):
        return None
    updated = dict(record)
    updated[slot] = value
    return updated


def dumps(record: Record) -> bytes:
    """Compact JSON; POSIX floats round-trip exactly, so ``order`` survives storage.

    The bytes are a right-sized copy. orjson 3.12 and later hand back their whole
    write buffer (4 KiB at least) with only the JSON's length set, and the table keeps
    every record for the life of the worker: 4 KiB per record instead of about 180 B,
    which was most of the worker's memory (ijl/orjson buffer, BENCHMARKS.md step 19).
    The join of two parts always allocates exactly what the parts hold.
    """
    return b"".join((orjson.dumps(record), b""))


def loads(raw: bytes) -> Record:
    """A stored record, as written (records from before ``recorded_at`` need no migration)."""
    value: Record = orjson.loads(raw)
    return value
