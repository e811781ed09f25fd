"""Contacts re-keyed by child: the hop from the contact fold to the children table.

Contacts are keyed by contact, so one child's contacts sit in different partitions.
When a batch of the contacts topic folds a ``contact.received`` or a
``contact.progressed`` into a contact whose receipt names a ``child_key``, ``Rekey``
makes a *hop*: the contact's receipt and its referral (``stream.state.children.Hop``),
keyed by ``child_key``, onto the worker's own repartition topic
(``{app_id}-children-repartition``). ``ChildProcessor`` folds the hops into each child's record
there, with its own records table and progress markers, like every source topic.

Why a crash cannot count a contact twice or lose it (docs/architecture.md, "The hop"):

* a hop is the contact record's *current* view, so it is deterministic; it is made for
  every such event folded, a duplicate too: a batch read again after a crash (its
  contacts already in the restored records) sends its hops again;
* the hops go in the same producer flight as the batch's changelog records
  (``ChangelogWriter``), and the contacts' progress marker waits for Kafka to have them
  all: a marker never vouches for a contact whose hop is missing;
* the child side keeps, per contact key, the greatest version of each part (its rank),
  so a hop delivered twice, or an old one after a new one, changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

import orjson

from stream.contract.decoder import Rejection
from stream.contract.partitioner import partitions_of
from stream.state import children, records
from stream.state.contacts import REFERRAL
from stream.state.facts import FactContext
from stream.state.records import Progression, Receipt, Record
from stream.worker.processor import Applied, FamilyProcessor
from stream.worker.turn import WHOLE, Turn

#: the events that change a hop: the receipt (child, time, source) and a progression
HOP_EVENTS = frozenset({"contact.received", "contact.progressed"})
#: the applied-event type of a hop folded into a child's record (a closed set's member)
HOP_TYPE = "child.hop"
_REFERRAL_KEY = Progression.key(REFERRAL)
_CONTACT = "contact:"
#: (partition of the repartition topic, key, value)
Hop = tuple[int, bytes, bytes]


def hops_of(record: Record, contact_key: str, ctx: FactContext) -> list[tuple[str, bytes]]:
    """(child key, hop value) of each child a contact record tells: the child its receipt
    names now, and a withdrawal for each other child an earlier version of the receipt
    named (``Receipt.children_before``: a correction moved the contact). Made from the
    record alone, so a batch read again after a crash sends the same hops again."""
    rcv = record.get(Receipt.KEY)
    if rcv is None:
        return []
    child, before = Receipt.child_key(rcv), records.children_before(rcv)
    if child is None and not before:
        return []
    group = ctx.taxonomy.group_of(Receipt.source_code(rcv))
    rank = list(records.order(rcv))
    referral = None
    ref = record.get(_REFERRAL_KEY)
    if ref:  # its rank extends the receipt's: a corrected receipt moves its referral
        referral = [Progression.occurred_at(ref), [*records.order(ref), *rank], group]
    at, first = Receipt.occurred_at(rcv), records.first_at(rcv)
    hop = children.Hop(contact_key, [at, rank, group], referral,
                       first if first < at else None)
    out = [(child, orjson.dumps(hop.to_json()))] if child is not None else []
    if before:  # the same versions, no source group: the contact is no longer theirs
        gone = orjson.dumps(hop.withdrawn().to_json())
        out += [(other, gone) for other in before]
    return out


class Rekey:
    """The hops of one contacts batch: noted while folding, made once at its end."""

    def __init__(self, partitions: int, ctx: FactContext) -> None:
        self.partitions = partitions  # of the repartition topic
        self.ctx = ctx
        self.touched: set[str] = set()  # contact table keys of the batch

    def note(self, applied: Applied) -> None:
        """An event folded (a duplicate too: a re-read batch sends its hops again)."""
        if applied.event_type in HOP_EVENTS:
            self.touched.add(applied.table_key)

    async def hops(self, pending: Mapping[str, Record], table: Mapping[str, bytes],
                   turn: Turn = WHOLE) -> list[Hop]:
        """The batch's hops, from each touched contact as the batch leaves it; made
        ``CHUNK`` contacts between two of the turn's ticks."""
        def of(tkey: str) -> list[tuple[bytes, bytes]]:
            record = pending.get(tkey)
            if record is None:
                raw = table.get(tkey)
                record = records.loads(raw) if raw is not None else None
            if not record:
                return []
            return [(child.encode(), value)
                    for child, value in hops_of(record, tkey[len(_CONTACT):], self.ctx)]
        made = [hop for each in await turn.map(of, list(self.touched)) for hop in each]
        self.touched.clear()
        where = partitions_of([k for k, _ in made], self.partitions)
        return [(p, k, v) for p, (k, v) in zip(where, made, strict=True) if p is not None]


class ChildProcessor(FamilyProcessor):
    """Folds the repartition topic's hops into each child's record (``child:<key>``).

    A hop older than its child's window is refused (``child_window_passed``) and
    dead-lettered like any rejected message; a malformed one is ``invalid_value``.
    """

    def __init__(self, topic: str, grace_days: float, *args: Any, **kwargs: Any) -> None:
        super().__init__(topic, None, *args, **kwargs)  # type: ignore[arg-type]  # no decoder
        self.grace_days = grace_days

    def fold(self, key: bytes | None, value: bytes | None, partition: int,
             table: MutableMapping[str, bytes], now: float | None = None,
             pending: dict[str, Record] | None = None,
             before: dict[str, Record | None] | None = None) -> Applied | Rejection:
        try:
            hop = children.Hop.from_json(orjson.loads(value or b""))
            child = (key or b"").decode()
        except (KeyError, TypeError, ValueError):
            return self._refuse(Rejection("invalid_value", "not a hop"))
        tkey = records.table_key(children.KIND, child)
        if pending is not None and tkey in pending:
            old: Record | None = pending[tkey]
        else:
            raw = table.get(tkey)
            old = records.loads(raw) if raw is not None else None
        new, passed = children.merge(old, hop, partition, self.grace_days, self.ctx)
        if new is None and passed:
            return self._refuse(Rejection("child_window_passed", "older than the window"))
        return self.keep(HOP_TYPE, tkey, old, new, partition, table, pending, before)

    def _refuse(self, rejection: Rejection) -> Rejection:
        self.metrics.rejected.labels(self.topic, rejection.reason).inc()
        return rejection


def pairs(hops: Iterable[Hop]) -> dict[int, list[tuple[bytes, bytes]]]:
    """Hops by partition of the repartition topic, in the order made."""
    out: dict[int, list[tuple[bytes, bytes]]] = {}
    for partition, key, value in hops:
        out.setdefault(partition, []).append((key, value))
    return out
