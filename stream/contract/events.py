"""The event contract: one frozen pydantic model per event type.

These models are the single source of the published JSON Schemas in
``topics/schemas`` (``python -m stream schemas``). Events are validated once, at
the edge (``stream.contract.decoder``); inside the worker nothing re-checks them.

Category fields are plain strings checked against the configured taxonomy,
which the decoder passes in the validation context as ``{"taxonomy": ...}``.
Error messages never quote the offending value: it may describe a child.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Annotated, Any, Generic, Literal, TypeVar, Union, overload

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from stream.contract.quotes import SEALED_PATTERN
from stream.contract.taxonomy import Taxonomy

SCHEMA_VERSION = 1

#: A pseudonymous key: a keyed hash made upstream, lower-case hex. The pattern
#: keeps names, NHS numbers and other identifiers out by construction.
PseudoKey = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16,64}$")]
EventId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{8,80}$")]
Seconds = Annotated[float, Field(ge=0, le=86_400)]

_T = TypeVar("_T")


class _once(cached_property[_T], Generic[_T]):
    """``functools.cached_property`` without its lock.

    On Python 3.11 the stock one takes an ``RLock`` on every first read, once per event
    (a lock per decoded event, in the worker's hottest path); events are built and read
    on one thread, and the value is a pure function of a frozen model, so a lost race
    could only compute the same value twice. (Python 3.12 dropped the lock too.)
    """

    @overload
    def __get__(self, instance: None, owner: type[Any] | None = None) -> _once[_T]: ...
    @overload
    def __get__(self, instance: object, owner: type[Any] | None = None) -> _T: ...

    def __get__(self, instance: object | None, owner: type[Any] | None = None) -> Any:
        if instance is None:
            return self
        value = instance.__dict__[self.attrname] = self.func(instance)  # type: ignore[index]
        return value


@dataclass(frozen=True)
class Category:
    """Marks a string field as a code of one taxonomy set (``x-category`` in the schema)."""

    name: str

    def _check(self, value: str, info: ValidationInfo) -> str:
        taxonomy: Taxonomy | None = (info.context or {}).get("taxonomy")
        if taxonomy is None:
            raise PydanticCustomError("no_taxonomy", "validation needs a taxonomy in context")
        if value not in taxonomy.labels[self.name]:
            raise PydanticCustomError(
                "unknown_category", "not a code of the '{category}' set", {"category": self.name})
        return value

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.with_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["x-category"] = self.name
        return json_schema


Channel = Annotated[str, Category("channel")]
SourceSystem = Annotated[str, Category("source_system")]
Team = Annotated[str, Category("team")]
SourceCode = Annotated[str, Category("source_code")]
ContactOutcome = Annotated[str, Category("contact_outcome")]
Pathway = Annotated[str, Category("pathway")]
Destination = Annotated[str, Category("destination")]
MapOutcome = Annotated[str, Category("map_outcome")]
Level3Service = Annotated[str, Category("level3_service")]
Agency = Annotated[str, Category("agency")]
CallQueue = Annotated[str, Category("call_queue")]
Grade = Annotated[str, Category("grade")]
QaTheme = Annotated[str, Category("qa_theme")]
SamplerRole = Annotated[str, Category("sampler_role")]
FeedbackFrom = Annotated[str, Category("feedback_from")]
FeedbackKind = Annotated[str, Category("feedback_kind")]
QuoteAttribution = Annotated[str, Category("quote_attribution")]
ApproverRole = Annotated[str, Category("approver_role")]
#: a quote sealed with its own key (``stream.contract.quotes``): base64url, never clear text
SealedQuote = Annotated[str, StringConstraints(pattern=SEALED_PATTERN)]


class Event(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True,
                              ignored_types=(_once,))

    event_id: EventId = Field(description="unique per event; a re-sent event keeps its id")
    schema_version: Literal[1] = Field(description="contract version of this event")
    occurred_at: AwareDatetime = Field(
        description="when it happened upstream, RFC 3339 with its UTC offset")
    recorded_at: AwareDatetime | None = Field(None, description=(
        "when this version was recorded upstream (a correction made after the fact), RFC 3339 "
        "with its UTC offset, not before occurred_at; absent means occurred_at. Of two "
        "versions of one fact the later recorded wins; figures keep its occurred_at"))
    source_system: SourceSystem

    @field_validator("schema_version", mode="before")
    @classmethod
    def _integer_version(cls, value: object) -> object:
        # Literal[1] also matches True and 1.0 (they equal 1): a version is an integer.
        if type(value) is not int:
            raise PydanticCustomError("int_type", "schema_version must be an integer")
        return value

    @field_validator("recorded_at")
    @classmethod
    def _recorded_after_occurred(cls, value: datetime | None,
                                 info: ValidationInfo) -> datetime | None:
        # A version recorded before its fact happened cannot be a correction, and
        # would lose to the uncorrected version: refuse it rather than ignore it.
        # (Runs only when recorded_at is sent: no cost to other events.)
        occurred = info.data.get("occurred_at")
        if value is not None and occurred is not None and value < occurred:
            raise PydanticCustomError("recorded_before_occurred",
                                      "recorded_at is earlier than occurred_at")
        return value

    @property
    def key(self) -> str:
        """The Kafka message key: the case this event belongs to."""
        raise NotImplementedError

    @_once
    def timestamp(self) -> float:
        """Event time as POSIX seconds (the Kafka record timestamp / 1000).

        Cached: records, facts and the decoder's bounds all ask (datetime.timestamp
        costs about 1.5 us, a tenth of the decode).
        """
        return self.occurred_at.timestamp()

    @property
    def recorded_timestamp(self) -> float | None:
        """When this version was recorded (POSIX s), if later than it occurred; else None."""
        if self.recorded_at is None or self.recorded_at == self.occurred_at:
            return None
        return self.recorded_at.timestamp()


class ContactEvent(Event):
    contact_key: PseudoKey

    @property
    def key(self) -> str:
        return self.contact_key


class ContactReceived(ContactEvent):
    """A worry about a child reached the front door and was recorded as a contact."""

    event_type: Literal["contact.received"]
    child_key: PseudoKey | None = None
    channel: Channel
    source_code: SourceCode = Field(description="Children in Need census referral source")
    team: Team


class ContactDecided(ContactEvent):
    """The contact was decided (completed) with an outcome."""

    event_type: Literal["contact.decided"]
    outcome: ContactOutcome
    pathway: Pathway | None = Field(None, description="case system's actual outcome, if recorded")


class EmailResolved(Event):
    """The RFS team resolved one email enquiry (whether or not it became a contact)."""

    event_type: Literal["email.resolved"]
    enquiry_key: PseudoKey

    @property
    def key(self) -> str:
        return self.enquiry_key


class EarlyHelpAllocated(ContactEvent):
    """The Early Help Hub allocated the request to a service."""

    event_type: Literal["early_help.allocated"]


class ContactProgressed(ContactEvent):
    """The contact progressed to early help or to children's social care."""

    event_type: Literal["contact.progressed"]
    destination: Destination


class MapEnquiryEvent(Event):
    enquiry_key: PseudoKey

    @property
    def key(self) -> str:
        return self.enquiry_key


class MapEnquiryOpened(MapEnquiryEvent):
    """A MAP enquiry was opened."""

    event_type: Literal["map_enquiry.opened"]
    contact_key: PseudoKey | None = None


class MapEnquiryCompleted(MapEnquiryEvent):
    """A MAP enquiry was completed, with the agencies consulted and the level decided."""

    event_type: Literal["map_enquiry.completed"]
    agencies_consulted: Annotated[list[Agency], Field(max_length=64)]
    outcome: MapOutcome
    level3_service: Level3Service | None = None


class MapAgencyRequested(MapEnquiryEvent):
    """The MAP enquiry asked one partner agency for what it knows (one event per agency
    consulted): it starts that agency's clock (rule ``partner_response``)."""

    event_type: Literal["map_enquiry.agency_requested"]
    agency: Agency


class MapAgencyResponded(MapEnquiryEvent):
    """The partner agency answered the MAP enquiry's request: it stops that agency's
    clock. May arrive before its request; matched on (enquiry, agency)."""

    event_type: Literal["map_enquiry.agency_responded"]
    agency: Agency


class CallEvent(Event):
    call_key: PseudoKey
    queue: CallQueue

    @property
    def key(self) -> str:
        return self.call_key


class CallQueued(CallEvent):
    """A call entered the queue (was offered)."""

    event_type: Literal["call.queued"]


class CallAnswered(CallEvent):
    """A call was answered after waiting ``wait_seconds`` in the queue."""

    event_type: Literal["call.answered"]
    wait_seconds: Seconds


class CallAbandoned(CallEvent):
    """The caller hung up after waiting ``wait_seconds`` in the queue."""

    event_type: Literal["call.abandoned"]
    wait_seconds: Seconds


class CallEnded(CallEvent):
    """An answered call ended after ``handle_seconds`` of conversation and wrap-up."""

    event_type: Literal["call.ended"]
    handle_seconds: Seconds


class AuditGraded(Event):
    """A quality-assurance audit of a team's work was graded."""

    event_type: Literal["audit.graded"]
    audit_key: PseudoKey
    team: Team
    grade: Grade
    advisor_key: PseudoKey | None = Field(None, description=(
        "pseudonymous key of the advisor whose work was audited (the monthly-audit "
        "standard); absent: not known"))

    @property
    def key(self) -> str:
        return self.audit_key


class LearningReviewHeld(Event):
    """A team held a learning review of a case on a theme."""

    event_type: Literal["learning_review.held"]
    review_key: PseudoKey
    team: Team
    theme: QaTheme

    @property
    def key(self) -> str:
        return self.review_key


class DipSampleTaken(Event):
    """A manager dip-sampled ``cases_sampled`` cases on an agreed theme."""

    event_type: Literal["dip_sample.taken"]
    sample_key: PseudoKey
    sampler_role: SamplerRole
    theme: QaTheme
    cases_sampled: Annotated[int, Field(ge=1, le=1000)]

    @property
    def key(self) -> str:
        return self.sample_key


class AdvisorEvent(Event):
    advisor_key: PseudoKey
    team: Team

    @property
    def key(self) -> str:
        return self.advisor_key


class AdvisorJoined(AdvisorEvent):
    """An advisor joined a team (from then on the monthly-audit standard applies)."""

    event_type: Literal["advisor.joined"]


class AdvisorLeft(AdvisorEvent):
    """An advisor left a team."""

    event_type: Literal["advisor.left"]
class FeedbackEvent(Event):
    feedback_key: PseudoKey

    @property
    def key(self) -> str:
        return self.feedback_key


class FeedbackReceived(FeedbackEvent):
    """Feedback (a compliment, complaint or comment) reached the service."""

    event_type: Literal["feedback.received"]
    from_whom: FeedbackFrom
    agency: Agency | None = Field(None, description=(
        "the partner agency's code: sent when from_whom is partner_agency, and only then"))
    kind: FeedbackKind
    channel: Channel

    @model_validator(mode="after")
    def _agency_iff_partner(self) -> FeedbackReceived:
        if (self.agency is None) == (self.from_whom == "partner_agency"):
            raise PydanticCustomError("agency_mismatch",
                                      "agency is sent for partner_agency feedback only")
        return self


class FeedbackQuoteApproved(FeedbackEvent):
    """A quote from the feedback was approved for the report's section 6."""

    event_type: Literal["feedback.quote_approved"]
    sealed_quote: SealedQuote = Field(description=(
        "the quote (at most 1,200 characters) sealed with AES-256-GCM under its own key, "
        "which is on the compacted key topic (stream.contract.quotes; docs/contract.md)"))
    attribution: QuoteAttribution
    consent_to_publish: bool = Field(description="the giver consented to publication")
    approver_role: ApproverRole


class FeedbackWithdrawn(FeedbackEvent):
    """Consent to publish the feedback's quote was withdrawn (its key is tombstoned)."""

    event_type: Literal["feedback.withdrawn"]


class ComplaintResponded(FeedbackEvent):
    """The stage 1 response to a complaint was sent: it stops the complaint's clock
    (rule ``complaint_stage1``). Keyed by the ``feedback_key`` of the complaint's
    ``feedback.received``; no text: the response itself stays in the case system."""

    event_type: Literal["complaint.responded"]


class ComplaintExtended(FeedbackEvent):
    """The stage 1 response time was extended (regulation 14: up to 20 working days in
    all), decided before the response and within the first 10 working days to count.
    Keyed by the complaint's ``feedback_key``; no reason is carried (none is reported)."""

    event_type: Literal["complaint.extended"]


ContactsFamily = Annotated[
    Union[ContactReceived, ContactDecided, EmailResolved, EarlyHelpAllocated, ContactProgressed],
    Field(discriminator="event_type")]
MapFamily = Annotated[Union[MapEnquiryOpened, MapEnquiryCompleted, MapAgencyRequested,
                            MapAgencyResponded],
                      Field(discriminator="event_type")]
CallsFamily = Annotated[Union[CallQueued, CallAnswered, CallAbandoned, CallEnded],
                        Field(discriminator="event_type")]
AuditsFamily = Annotated[
    Union[AuditGraded, LearningReviewHeld, DipSampleTaken, AdvisorJoined, AdvisorLeft],
    Field(discriminator="event_type")]
FeedbackFamily = Annotated[Union[FeedbackReceived, FeedbackQuoteApproved, FeedbackWithdrawn,
                                 ComplaintResponded, ComplaintExtended],
                           Field(discriminator="event_type")]

#: Event family (topics.toml section) -> its discriminated union.
FAMILIES: dict[str, Any] = {
    "contacts": ContactsFamily,
    "map_enquiries": MapFamily,
    "calls": CallsFamily,
    "audits": AuditsFamily,
    "feedback": FeedbackFamily,
}


def family_types(family: str) -> tuple[type[Event], ...]:
    """The model classes of one family."""
    union = FAMILIES[family].__origin__
    return tuple(union.__args__) if hasattr(union, "__args__") else (union,)


def event_type_of(model: type[Event]) -> str:
    """The ``event_type`` literal of a model class."""
    annotation = model.model_fields["event_type"].annotation
    return str(annotation.__args__[0])  # type: ignore[union-attr]
