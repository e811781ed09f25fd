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
times). Facts read only ``occurred_at``: durations and months are business
time, whenever the version was recorded.

Records are plain JSON-able dicts (stored as bytes in a Faust table), and a slot
is a JSON list. Its fields are read by name, through the slot classes below
(``Receipt.channel(slot)``), and by nobody else by position: each class documents
its slot, and ``slot_of`` writes the fields in the order the class reads them. All
the figures are a pure function of the records (``stream.state.families``), which is
why a replay after a crash cannot double count.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from operator import itemgetter
from typing import Any

import orjson

from stream.contract.events import (
    AdvisorJoined,
    AdvisorLeft,
    AuditGraded,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallQueued,
    ComplaintExtended,
    ComplaintResponded,
    ContactDecided,
    ContactProgressed,
    ContactReceived,
    DipSampleTaken,
    EarlyHelpAllocated,
    EmailResolved,
    Event,
    FeedbackQuoteApproved,
    FeedbackReceived,
    FeedbackWithdrawn,
    LearningReviewHeld,
    MapAgencyRequested,
    MapAgencyResponded,
    MapEnquiryCompleted,
    MapEnquiryOpened,
)

Record = dict[str, Any]
#: A slot: [occurred_at (POSIX s), version, *fields] (a JSON list; read it through the
#: slot classes). The version is the event id, or [recorded_at (POSIX s), event id] for
#: an event recorded after it occurred: old records and uncorrected events stay as they
#: were, and only corrections pay the extra bytes.
Slot = list[Any]
#: A named field of a slot: called on the slot, gives the field's value. An
#: ``itemgetter`` (C): a field read costs about what an index does.
Field = Callable[[Slot], Any]


class SlotFields:
    """The two fields every slot starts with."""

    #: the slot's record kind and its key in the record
    KIND = ""
    KEY = ""
    #: business time of the event (POSIX seconds, UTC)
    occurred_at: Field = itemgetter(0)
    #: the event id, or [recorded_at, event id] for a correction (see ``order``)
    version: Field = itemgetter(1)


class Receipt(SlotFields):
    """``rcv`` of a contact record: the contact was received (``contact.received``)."""

    KIND, KEY = "contact", "rcv"
    channel: Field = itemgetter(2)  #: how it came in (taxonomy ``channel``)
    source_code: Field = itemgetter(3)  #: CIN referral source (taxonomy ``source_code``)
    team: Field = itemgetter(4)  #: the team that took it (taxonomy ``team``)

    @staticmethod
    def child_key(slot: Slot) -> str | None:
        """The child's pseudonymous key (None: not sent, or a slot written before it was
        kept, which has no sixth field): ``stream.worker.rekey`` hops it to the child."""
        return slot[5] if len(slot) > 5 else None


class Decision(SlotFields):
    """``dec`` of a contact record: the contact was decided (``contact.decided``)."""

    KIND, KEY = "contact", "dec"
    outcome: Field = itemgetter(2)  #: RFS outcome level (taxonomy ``contact_outcome``)
    #: the case system's actual outcome (taxonomy ``pathway``); None: not yet recorded
    pathway: Field = itemgetter(3)


class Allocation(SlotFields):
    """``alloc`` of a contact record: allocated by the Early Help Hub
    (``early_help.allocated``)."""

    KIND, KEY = "contact", "alloc"


class Progression(SlotFields):
    """``prog:<destination>`` of a contact record, one per destination
    (``contact.progressed``): the destination is in the key, not a field."""

    KIND, KEY = "contact", "prog:"

    @staticmethod
    def key(destination: str) -> str:
        """The record key of the progression to ``destination``."""
        return "prog:" + destination


class Resolution(SlotFields):
    """``res`` of an email record: an email enquiry resolved (``email.resolved``)."""

    KIND, KEY = "email", "res"


class Opening(SlotFields):
    """``open`` of a MAP record: the MAP enquiry opened (``map_enquiry.opened``)."""

    KIND, KEY = "map", "open"


class Completion(SlotFields):
    """``done`` of a MAP record: the MAP enquiry completed (``map_enquiry.completed``)."""

    KIND, KEY = "map", "done"
    agencies: Field = itemgetter(2)  #: agencies consulted, sorted, each once (``agency``)
    outcome: Field = itemgetter(3)  #: the level reached (taxonomy ``map_outcome``)
    #: the Level 3 service (taxonomy ``level3_service``); None below Level 3
    level3_service: Field = itemgetter(4)


class PartnerRequest(SlotFields):
    """``asked:<agency>`` of a MAP record, one per agency asked
    (``map_enquiry.agency_requested``): the agency is in the key, not a field. It opens
    that agency's ``partner_response`` item (``stream.state.partner_responses``)."""

    KIND, KEY = "map", "asked:"

    @staticmethod
    def key(agency: str) -> str:
        """The record key of the request to ``agency``."""
        return "asked:" + agency


class PartnerResponse(SlotFields):
    """``answered:<agency>`` of a MAP record (``map_enquiry.agency_responded``): the
    agency answered; it closes the item its ``asked:<agency>`` opened."""

    KIND, KEY = "map", "answered:"

    @staticmethod
    def key(agency: str) -> str:
        """The record key of the response of ``agency``."""
        return "answered:" + agency


class Queueing(SlotFields):
    """``q`` of a call record: the call joined a queue (``call.queued``)."""

    KIND, KEY = "call", "q"
    queue: Field = itemgetter(2)  #: taxonomy ``call_queue``


class Answer(SlotFields):
    """``ans`` of a call record: the call was answered (``call.answered``)."""

    KIND, KEY = "call", "ans"
    queue: Field = itemgetter(2)  #: taxonomy ``call_queue``
    wait_seconds: Field = itemgetter(3)  #: time in the queue before the answer


class Abandon(SlotFields):
    """``abn`` of a call record: the caller hung up in the queue (``call.abandoned``)."""

    KIND, KEY = "call", "abn"
    queue: Field = itemgetter(2)  #: taxonomy ``call_queue``
    wait_seconds: Field = itemgetter(3)  #: time in the queue before hanging up


class Ending(SlotFields):
    """``end`` of a call record: an answered call ended (``call.ended``)."""

    KIND, KEY = "call", "end"
    queue: Field = itemgetter(2)  #: taxonomy ``call_queue``
    handle_seconds: Field = itemgetter(3)  #: answer to end


class Grading(SlotFields):
    """``g`` of an audit record: a case audit graded (``audit.graded``)."""

    KIND, KEY = "audit", "g"
    team: Field = itemgetter(2)  #: the team audited (taxonomy ``team``)
    grade: Field = itemgetter(3)  #: taxonomy ``grade``

    @staticmethod
    def advisor_key(slot: Slot) -> str | None:
        """The audited advisor's pseudonymous key (None: not sent, or a slot written
        before ``advisor_key`` existed, which has no fifth field)."""
        return slot[4] if len(slot) > 4 else None


class Review(SlotFields):
    """``lr`` of a QA record: a learning review held (``learning_review.held``)."""

    KIND, KEY = "qa", "lr"
    team: Field = itemgetter(2)  #: the team that held it (taxonomy ``team``)
    theme: Field = itemgetter(3)  #: taxonomy ``qa_theme``


class DipSample(SlotFields):
    """``dip`` of a QA record: a dip sample taken (``dip_sample.taken``)."""

    KIND, KEY = "qa", "dip"
    sampler_role: Field = itemgetter(2)  #: taxonomy ``sampler_role``
    theme: Field = itemgetter(3)  #: taxonomy ``qa_theme``
    cases_sampled: Field = itemgetter(4)  #: cases looked at (1-1000)


class TeamSlots(SlotFields):
    """Slots kept one per team, ``<KEY>:<team>``; ``<KEY>`` alone is the one slot of
    records written before they were kept per team, read as its own team's (no
    migration) unless a later version of that team's is kept."""

    team: Field = itemgetter(2)  #: taxonomy ``team``

    @classmethod
    def key(cls, team: str) -> str:
        """The record key of the latest slot of ``team``."""
        return f"{cls.KEY}:{team}"

    @classmethod
    def slots(cls, record: Record) -> dict[str, Slot]:
        """team -> the latest slot of that team."""
        return _per_team(record, cls.KEY)


class Joining(TeamSlots):
    """``join:<team>`` of an advisor record: the latest ``advisor.joined`` of that team
    (a move to another team is a leave and a later join, so the spell in the team left
    keeps its own slots and still counts in the months it covered)."""

    KIND, KEY = "qa", "join"
    #: the record's own key (facts see the record, not its key): ``quality.advisor_tag``
    advisor_key: Field = itemgetter(3)


class Leaving(TeamSlots):
    """``left:<team>`` of an advisor record: the latest ``advisor.left`` of that team."""

    KIND, KEY = "qa", "left"


def _per_team(record: Record, key: str) -> dict[str, Slot]:
    """The slots ``<key>:<team>`` by team, with a legacy ``<key>`` slot as its team's
    when no later version of that team's is kept."""
    prefix = key + ":"
    slots = {k[len(prefix):]: v for k, v in record.items() if k.startswith(prefix)}
    legacy = record.get(key)
    if legacy is not None:
        team = legacy[2]
        if team not in slots or order(legacy) > order(slots[team]):
            slots[team] = legacy
    return slots


class FeedbackReceipt(SlotFields):
    """``rcv`` of a feedback record: feedback received (``feedback.received``)."""

    KIND, KEY = "feedback", "rcv"
    from_whom: Field = itemgetter(2)  #: taxonomy ``feedback_from``
    #: the partner agency (taxonomy ``agency``) for partner_agency feedback; else None
    agency: Field = itemgetter(3)
    kind: Field = itemgetter(4)  #: taxonomy ``feedback_kind``
    channel: Field = itemgetter(5)  #: taxonomy ``channel``


class QuoteApproval(SlotFields):
    """``quote`` of a feedback record: a quote approved (``feedback.quote_approved``).

    The sealed quote itself is not kept: the records, their changelog and checkpoints
    never hold a quote, sealed or not (the report reads it from the source topic).
    """

    KIND, KEY = "feedback", "quote"
    attribution: Field = itemgetter(2)  #: taxonomy ``quote_attribution``
    consent_to_publish: Field = itemgetter(3)  #: consent to publish (bool)
    approver_role: Field = itemgetter(4)  #: taxonomy ``approver_role``


class Withdrawal(SlotFields):
    """``wd`` of a feedback record: consent withdrawn (``feedback.withdrawn``)."""

    KIND, KEY = "feedback", "wd"


class ComplaintResponse(SlotFields):
    """``resp`` of a feedback record: the complaint's stage 1 response was sent
    (``complaint.responded``); it closes the ``complaint_stage1`` item."""

    KIND, KEY = "feedback", "resp"


class ComplaintExtension(SlotFields):
    """``ext`` of a feedback record: the stage 1 response time was extended
    (``complaint.extended``; ``Rule.extended_by`` of ``complaint_stage1``)."""

    KIND, KEY = "feedback", "ext"


#: event type -> (its slot class, the field a rule's ``:code`` narrows; None: none). A
#: progression's code names its destination, which is part of the slot's key.
SLOTS: Mapping[str, tuple[type[SlotFields], Field | None]] = {
    "contact.received": (Receipt, None),
    "contact.decided": (Decision, Decision.outcome),
    "contact.progressed": (Progression, None),
    "early_help.allocated": (Allocation, None),
    "email.resolved": (Resolution, None),
    "map_enquiry.opened": (Opening, None),
    "map_enquiry.completed": (Completion, Completion.outcome),
    "map_enquiry.agency_requested": (PartnerRequest, None),
    "map_enquiry.agency_responded": (PartnerResponse, None),
    "call.queued": (Queueing, None),
    "call.answered": (Answer, Answer.queue),
    "call.abandoned": (Abandon, Abandon.queue),
    "call.ended": (Ending, Ending.queue),
    "audit.graded": (Grading, Grading.grade),
    "learning_review.held": (Review, None),
    "dip_sample.taken": (DipSample, None),
    "advisor.joined": (Joining, None),
    "advisor.left": (Leaving, None),
    "feedback.received": (FeedbackReceipt, FeedbackReceipt.kind),
    "feedback.quote_approved": (QuoteApproval, None),
    "feedback.withdrawn": (Withdrawal, None),
    "complaint.responded": (ComplaintResponse, None),
    "complaint.extended": (ComplaintExtension, None),
}


def _version(event: Event) -> str | list[Any]:
    recorded = event.recorded_timestamp
    return event.event_id if recorded is None else [recorded, event.event_id]


def order(value: Slot) -> tuple[float, float, str]:
    """(recorded, occurred, event id) of a slot: the greatest is the version kept."""
    occurred, version = value[0], value[1]
    if isinstance(version, str):
        return occurred, occurred, version
    return version[0], occurred, version[1]


def _sent(value: str | None) -> tuple[str, ...]:
    # an optional last field only when sent: a slot without it is byte for byte as before
    return (value,) if value else ()


#: event type -> (its event, occurred POSIX s, version) -> (record kind, slot key, slot):
#: looked up once by type, where a ``match`` tried the classes in turn (1.2 us an event)
_SLOTTERS: dict[type[Event], Callable[[Any, float, Any], tuple[str, str, Slot]]] = {
    ContactReceived: lambda e, ts, eid: (
        "contact", "rcv", [ts, eid, e.channel, e.source_code, e.team, *_sent(e.child_key)]),
    ContactDecided: lambda e, ts, eid: ("contact", "dec", [ts, eid, e.outcome, e.pathway]),
    EarlyHelpAllocated: lambda e, ts, eid: ("contact", "alloc", [ts, eid]),
    ContactProgressed: lambda e, ts, eid: ("contact", Progression.key(e.destination), [ts, eid]),
    EmailResolved: lambda e, ts, eid: ("email", "res", [ts, eid]),
    MapEnquiryOpened: lambda e, ts, eid: ("map", "open", [ts, eid]),
    MapEnquiryCompleted: lambda e, ts, eid: (
        "map", "done", [ts, eid, sorted(set(e.agencies_consulted)), e.outcome,
                        e.level3_service]),
    MapAgencyRequested: lambda e, ts, eid: ("map", PartnerRequest.key(e.agency), [ts, eid]),
    MapAgencyResponded: lambda e, ts, eid: ("map", PartnerResponse.key(e.agency), [ts, eid]),
    CallQueued: lambda e, ts, eid: ("call", "q", [ts, eid, e.queue]),
    CallAnswered: lambda e, ts, eid: ("call", "ans", [ts, eid, e.queue, e.wait_seconds]),
    CallAbandoned: lambda e, ts, eid: ("call", "abn", [ts, eid, e.queue, e.wait_seconds]),
    CallEnded: lambda e, ts, eid: ("call", "end", [ts, eid, e.queue, e.handle_seconds]),
    AuditGraded: lambda e, ts, eid: (
        "audit", "g", [ts, eid, e.team, e.grade, *_sent(e.advisor_key)]),
    LearningReviewHeld: lambda e, ts, eid: ("qa", "lr", [ts, eid, e.team, e.theme]),
    DipSampleTaken: lambda e, ts, eid: (
        "qa", "dip", [ts, eid, e.sampler_role, e.theme, e.cases_sampled]),
    AdvisorJoined: lambda e, ts, eid: (
        "qa", Joining.key(e.team), [ts, eid, e.team, e.advisor_key]),
    AdvisorLeft: lambda e, ts, eid: ("qa", Leaving.key(e.team), [ts, eid, e.team]),
    FeedbackReceived: lambda e, ts, eid: (
        "feedback", "rcv", [ts, eid, e.from_whom, e.agency, e.kind, e.channel]),
    FeedbackQuoteApproved: lambda e, ts, eid: (
        "feedback", "quote", [ts, eid, e.attribution, e.consent_to_publish, e.approver_role]),
    FeedbackWithdrawn: lambda e, ts, eid: ("feedback", "wd", [ts, eid]),
    ComplaintResponded: lambda e, ts, eid: ("feedback", "resp", [ts, eid]),
    ComplaintExtended: lambda e, ts, eid: ("feedback", "ext", [ts, eid]),
}


def slot_of(event: Event) -> tuple[str, str, Slot]:
    """(record kind, slot key, slot value) of an event; fields in the slot class's order."""
    slotter = _SLOTTERS.get(type(event)) or _inherited(type(event))
    return slotter(event, event.timestamp, _version(event))


def _inherited(kind: type[Event]) -> Callable[[Any, float, Any], tuple[str, str, Slot]]:
    """The slot maker of an event type's nearest known base, kept for the type: a model
    extended with an optional field (an additive change, docs/contract.md) slots as the
    type it extends."""
    for base in kind.__mro__:
        slotter = _SLOTTERS.get(base)
        if slotter is not None:
            _SLOTTERS[kind] = slotter
            return slotter
    raise TypeError(f"no record slot for {kind.__name__}")


#: where a rule's clock starts or stops: (record kind, slot key, the field a code narrows,
#: the code; None: any), resolved from an ``opens``/``closes`` spec by ``timeliness.endpoint``
Endpoint = tuple[str, str, Field | None, str | None]


def occurred(record: Record, end: Endpoint) -> float | None:
    """``occurred_at`` of the endpoint's slot if the record is of its kind and holds it
    (and, with a code, the narrowed field is that code); None otherwise. Open work asks
    this for every rule of every changed record, so it reads the slot here, by position,
    and takes the endpoint whole (unpacking it at the call costs more than here)."""
    kind, key, narrows, code = end
    if record.get("k") != kind:
        return None
    value = record.get(key)
    if value is None or (narrows is not None and code is not None and narrows(value) != code):
        return None
    return float(value[0])


def occurred_keyed(record: Record, opens: Endpoint,
                   closes: Endpoint) -> list[tuple[str, float, float | None]]:
    """(key, opened, closed or None) for each slot of a keyed opening family (``asked:``):
    the slot of the closing family with the same key (``answered:``) closes it, whichever
    arrived first. Sorted by key; empty for a record of another kind."""
    if record.get("k") != opens[0]:
        return []
    prefix, closing, cut = opens[1], closes[1], len(opens[1])
    out: list[tuple[str, float, float | None]] = []
    for key, value in record.items():
        if key.startswith(prefix):
            closed = record.get(closing + key[cut:])
            out.append((key[cut:], float(value[0]),
                        None if closed is None else float(closed[0])))
    return sorted(out)


def table_key(kind: str, case_key: str) -> str:
    """Key of a record in the records table (kinds share a table per topic)."""
    return f"{kind}:{case_key}"


def children_before(receipt: Slot) -> list[str]:
    """The other children earlier versions of a receipt named, sorted (its seventh field,
    there once a correction has changed the child): ``stream.worker.rekey`` withdraws the
    contact from each of them."""
    return receipt[6] if len(receipt) > 6 else []


def first_at(receipt: Slot) -> float:
    """The earliest time (POSIX s) any version of the receipt gave while it named the
    child it names now: its eighth field, there once a correction moved the contact's
    time but not its child; else its own time. The child may have settled that version
    (``stream.state.children``), so a later one must not be counted again."""
    first: float = receipt[7] if len(receipt) > 7 else Receipt.occurred_at(receipt)
    return first


#: a correction moves its contact to another child only while every version that named
#: the old child is younger than this before the correction was recorded (52 weeks:
#: less than any calendar year back, whatever the leap day or the clock change)
MOVE_WITHIN_S = 364 * 86_400.0


def moves_child(current: Slot, value: Slot) -> bool:
    """Whether the receipt ``value`` may take the contact from the child ``current`` names
    (``current`` naming none, or the same child: nothing to move).

    The old child settles a contact (``stream.state.children``) once its latest event is a
    year and the grace past it; the withdrawal could then find nothing to take back, and
    the new child would count the contact a second time. A child's latest event, when the
    withdrawal reaches it, is before the correction's recorded time plus the grace (events
    are at most minutes in the future; a backlog or rebuild lags by less than the grace),
    so a contact whose versions for the old child are all within 52 weeks of the
    correction is still held there. An older one stays the old child's: the rest of the
    correction applies, and its hops go to the old child."""
    was = Receipt.child_key(current)
    if was is None or Receipt.child_key(value) == was:
        return True
    return first_at(current) >= order(value)[0] - MOVE_WITHIN_S


def _carried(current: Slot, value: Slot) -> Slot:
    """The receipt ``value`` replacing ``current``, carrying the children ``current`` and
    its earlier versions named, less the one ``value`` names, and the earliest time a
    version naming ``value``'s child gave. ``value`` itself when there are none: a receipt
    corrected with the same child and no earlier time is stored as before. A correction
    that may not move the contact (``moves_child``) keeps ``current``'s child."""
    if not moves_child(current, value):
        value = [*value[:5], Receipt.child_key(current)]
    child = Receipt.child_key(value)
    named = {*children_before(current), Receipt.child_key(current)}
    named.discard(None)
    named.discard(child)
    first = Receipt.occurred_at(value)
    if child is not None and Receipt.child_key(current) == child:
        first = min(first, first_at(current))
    if first < Receipt.occurred_at(value):
        return [*value[:5], child, sorted(named), first]
    if not named:
        return value
    return [*value[:5], child, sorted(named)]


def fold(record: Record | None, kind: str, slot: str, value: Slot,
         partition: int) -> Record | None:
    """The record with ``value`` merged into ``slot``; None if nothing changed.

    ``p`` remembers the partition so that figures can be rebuilt per partition
    after a restart or rebalance.
    """
    if record is None:
        return {"k": kind, "p": partition, slot: value}
    current = record.get(slot)
    if current is not None:
        if order(current) >= order(value):
            return None
        if slot == Receipt.KEY and kind == Receipt.KIND:  # a corrected receipt
            value = _carried(current, value)
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
