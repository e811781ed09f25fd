"""Plain dict builders for contract events (test data, independent of the worker)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime
from itertools import count
from typing import Any

_ids = count(1)


def key(name: str) -> str:
    """A pseudonymous key: 32 hex chars derived from a readable test name."""
    return hashlib.blake2b(name.encode(), digest_size=16).hexdigest()


def base(event_type: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {"event_id": f"test-{next(_ids):08d}", "event_type": event_type,
            "schema_version": 1, "occurred_at": at.isoformat(), "source_system": "lcs",
            **fields}


def received(k: str, at: datetime, channel: str = "email", source_code: str = "6",
             team: str = "rfs", child: str | None = None) -> dict[str, Any]:
    extra = {"child_key": child} if child else {}
    return base("contact.received", at, contact_key=k, channel=channel,
                source_code=source_code, team=team, **extra)


def decided(k: str, at: datetime, outcome: str = "level_1",
            pathway: str | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {"contact_key": k, "outcome": outcome}
    if pathway:
        fields["pathway"] = pathway
    return base("contact.decided", at, **fields)


def queued(k: str, at: datetime, queue: str = "rfs") -> dict[str, Any]:
    return base("call.queued", at, call_key=k, queue=queue, source_system="telephony")


def answered(k: str, at: datetime, wait: float, queue: str = "rfs") -> dict[str, Any]:
    return base("call.answered", at, call_key=k, queue=queue, wait_seconds=wait,
                source_system="telephony")


def abandoned(k: str, at: datetime, wait: float, queue: str = "rfs") -> dict[str, Any]:
    return base("call.abandoned", at, call_key=k, queue=queue, wait_seconds=wait,
                source_system="telephony")


def map_opened(k: str, at: datetime) -> dict[str, Any]:
    return base("map_enquiry.opened", at, enquiry_key=k)


def map_completed(k: str, at: datetime, agencies: list[str], outcome: str = "level_4",
                  service: str | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {"enquiry_key": k, "agencies_consulted": agencies,
                              "outcome": outcome}
    if service:
        fields["level3_service"] = service
    return base("map_enquiry.completed", at, **fields)


def partner_requested(k: str, at: datetime, agency: str) -> dict[str, Any]:
    """A ``map_enquiry.agency_requested`` event: the enquiry asked one partner agency."""
    return base("map_enquiry.agency_requested", at, enquiry_key=k, agency=agency)


def partner_responded(k: str, at: datetime, agency: str) -> dict[str, Any]:
    """A ``map_enquiry.agency_responded`` event: the partner agency answered."""
    return base("map_enquiry.agency_responded", at, enquiry_key=k, agency=agency)


def audit(k: str, at: datetime, team: str = "ehh", grade: str = "good",
          advisor: str | None = None) -> dict[str, Any]:
    extra = {"advisor_key": advisor} if advisor else {}
    return base("audit.graded", at, audit_key=k, team=team, grade=grade, **extra)


def review(k: str, at: datetime, team: str = "ehh",
           theme: str = "threshold_decisions") -> dict[str, Any]:
    return base("learning_review.held", at, review_key=k, team=team, theme=theme)


def dip_sample(k: str, at: datetime, cases: int, role: str = "service_manager",
               theme: str = "consent") -> dict[str, Any]:
    return base("dip_sample.taken", at, sample_key=k, sampler_role=role, theme=theme,
                cases_sampled=cases)


def advisor(k: str, at: datetime, team: str = "rfs", joined: bool = True) -> dict[str, Any]:
    return base("advisor.joined" if joined else "advisor.left", at, advisor_key=k, team=team)


def strings(value: Any) -> Iterator[str]:
    """Every string in a JSON-like value, dict keys included (for leak checks)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def feedback(k: str, at: datetime, from_whom: str = "parent_carer", kind: str = "compliment",
             channel: str = "email", agency: str | None = None) -> dict[str, Any]:
    """A ``feedback.received`` event (a partner agency's names its ``agency``)."""
    extra = {"agency": agency} if agency is not None else {}
    return base("feedback.received", at, feedback_key=k, from_whom=from_whom, kind=kind,
                channel=channel, **extra)


def quote_approved(k: str, at: datetime, sealed_quote: str,
                   attribution: str = "parent_feedback", consent: bool = True,
                   approver_role: str = "service_manager") -> dict[str, Any]:
    """A ``feedback.quote_approved`` event carrying a quote sealed with its own key."""
    return base("feedback.quote_approved", at, feedback_key=k, sealed_quote=sealed_quote,
                attribution=attribution, consent_to_publish=consent,
                approver_role=approver_role)


def withdrawn(k: str, at: datetime) -> dict[str, Any]:
    """A ``feedback.withdrawn`` event."""
    return base("feedback.withdrawn", at, feedback_key=k)


def complaint_responded(k: str, at: datetime) -> dict[str, Any]:
    """A ``complaint.responded`` event: the complaint's stage 1 response was sent."""
    return base("complaint.responded", at, feedback_key=k)


def complaint_extended(k: str, at: datetime) -> dict[str, Any]:
    """A ``complaint.extended`` event: the stage 1 response time was extended."""
    return base("complaint.extended", at, feedback_key=k)
