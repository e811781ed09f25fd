"""Events and their Kafka messages: ``Message``, ``Dataset`` and ``Builder``."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from tests.reportgen.workdays import TOPICS


@dataclass
class Message:
    """One Kafka message (duck-typed for tests.integration.harness.produce)."""

    topic: str
    key: bytes | None
    value: bytes
    timestamp_ms: int | None
    valid: bool = True


@dataclass
class Dataset:
    """Messages in send order; ``valid`` ones are what the worker must count."""

    messages: list[Message] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def bad(self) -> int:
        return sum(not m.valid for m in self.messages)

    def events(self) -> list[dict[str, Any]]:
        """Every valid event as sent (re-deliveries included)."""
        return [orjson.loads(m.value) for m in self.messages if m.valid]

    def without(self, case_key: str) -> Dataset:
        """The same data with every event of one case left out."""
        kept = [m for m in self.messages if m.key != case_key.encode()]
        return Dataset(kept, dict(self.notes))


_FAMILY_OF = {"contact": "contacts", "early_help": "contacts", "email": "contacts",
              "map_enquiry": "map_enquiries", "call": "calls", "audit": "audits",
              "learning_review": "audits", "dip_sample": "audits", "advisor": "audits",
              "feedback": "feedback", "complaint": "feedback"}
_KEY_OF = {"contact.received": "contact_key", "contact.decided": "contact_key",
           "contact.progressed": "contact_key", "early_help.allocated": "contact_key",
           "email.resolved": "enquiry_key", "map_enquiry.opened": "enquiry_key",
           "map_enquiry.completed": "enquiry_key", "call.queued": "call_key",
           "call.answered": "call_key", "call.abandoned": "call_key", "call.ended": "call_key",
           "audit.graded": "audit_key", "learning_review.held": "review_key",
           "dip_sample.taken": "sample_key", "advisor.joined": "advisor_key",
           "advisor.left": "advisor_key", "feedback.received": "feedback_key",
           "feedback.quote_approved": "feedback_key", "feedback.withdrawn": "feedback_key",
           "complaint.responded": "feedback_key", "complaint.extended": "feedback_key",
           "map_enquiry.agency_requested": "enquiry_key",
           "map_enquiry.agency_responded": "enquiry_key"}
_SOURCE_SYSTEM = {"contacts": "lcs", "map_enquiries": "lcs", "calls": "telephony",
                  "audits": "ehm", "feedback": "lcs"}


class Builder:
    """Event dicts with unique, increasing event ids, and their messages."""

    def __init__(self, prefix: str, rng: random.Random | None = None) -> None:
        self.prefix, self.n, self.rng = prefix, 0, rng

    def key(self, *parts: object) -> str:
        text = ":".join(str(p) for p in (self.prefix, *parts))
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()

    def event(self, event_type: str, at: datetime, **fields: Any) -> dict[str, Any]:
        self.n += 1
        family = _FAMILY_OF[event_type.split(".")[0]]
        # Some producers send UTC, some local time with its offset: the same instant.
        stamp = at.astimezone(UTC) if self.rng is not None and self.rng.random() < 0.25 else at
        return {"event_id": f"{self.prefix}-{self.n:08d}", "event_type": event_type,
                "schema_version": 1, "occurred_at": stamp.isoformat(),
                "source_system": _SOURCE_SYSTEM[family],
                **{k: v for k, v in fields.items() if v is not None}}

    @staticmethod
    def message(event: dict[str, Any]) -> Message:
        family = _FAMILY_OF[event["event_type"].split(".")[0]]
        at = datetime.fromisoformat(event["occurred_at"])
        return Message(TOPICS[family], event[_KEY_OF[event["event_type"]]].encode(),
                       orjson.dumps(event), int(at.timestamp() * 1000))
