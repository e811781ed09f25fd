"""One table of documents, each accepted or refused by every way into the pipeline.

Integrators reach the contract three ways: ``EventValidator.build`` (Python API),
``python -m stream send`` (CLI) and the worker's decoder (the wire). The same
document must get the same verdict on all three; the tests that check it
(``tests/unit/contract/test_contract_parity.py`` for the API and the decoder,
``tests/integration/test_contract_cli.py`` adding the CLI) share this table.

A document is given in the form an integrator has it: JSON form (times as
RFC 3339 strings, as ``json.loads`` gives) or Python form (``datetime``
objects, tuples). ``wire`` renders it as JSON bytes with the standard library,
independently of the code under test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.factories import key

LONDON = ZoneInfo("Europe/London")
CONTACT = key("parity-contact")
ENQUIRY = key("parity-enquiry")
KEY_FIELDS = ("contact_key", "enquiry_key", "call_key", "audit_key", "review_key",
                      "sample_key", "advisor_key")


@dataclass(frozen=True)
class Case:
    name: str
    family: str
    doc: dict[str, Any]
    accepted: bool

    def wire(self) -> bytes:
        """The document as JSON bytes (``datetime`` -> ``isoformat``, tuple -> array)."""
        return json.dumps(self.doc, default=_iso).encode()

    def kafka_key(self) -> bytes:
        """The case key the producer would put on the message."""
        return next(str(self.doc[k]) for k in KEY_FIELDS if k in self.doc).encode()


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _decided(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "event_id": "parity-decided-01", "event_type": "contact.decided", "schema_version": 1,
        "occurred_at": "2019-09-20T10:15:00+01:00", "source_system": "lcs",
        "contact_key": CONTACT, "outcome": "map", "pathway": "map_enquiry"}
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not _DROP}


def _completed(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "event_id": "parity-map-0001", "event_type": "map_enquiry.completed",
        "schema_version": 1, "occurred_at": datetime(2019, 9, 20, 16, tzinfo=LONDON),
        "source_system": "lcs", "enquiry_key": ENQUIRY,
        "agencies_consulted": ["police", "gp"], "outcome": "level_3",
        "level3_service": "tys"}
    doc.update(changes)
    return doc


_DROP = object()
AWARE = datetime(2019, 9, 20, 10, 15, tzinfo=LONDON)
THURSDAY = datetime(2019, 9, 26, 14, tzinfo=LONDON)

CASES = (
    Case("valid, JSON-form time", "contacts", _decided(), True),
    Case("JSON-form time in UTC (Z)", "contacts", _decided(occurred_at="2019-09-20T09:15:00Z"),
         True),
    Case("Python datetime (zoneinfo)", "contacts", _decided(occurred_at=AWARE), True),
    Case("Python datetime (UTC)", "contacts",
         _decided(occurred_at=datetime(2019, 9, 20, 9, 15, tzinfo=UTC)), True),
    Case("naive JSON-form time", "contacts", _decided(occurred_at="2019-09-20T10:15:00"), False),
    Case("naive Python datetime", "contacts",
         _decided(occurred_at=datetime(2019, 9, 20, 10, 15)), False),
    Case("date only", "contacts", _decided(occurred_at="2019-09-20"), False),
    Case("true as the version", "contacts", _decided(schema_version=True), False),
    Case("1.0 as the version", "contacts", _decided(schema_version=1.0), False),
    Case("'1' as the version", "contacts", _decided(schema_version="1"), False),
    Case("version 2", "contacts", _decided(schema_version=2), False),
    Case("unknown field", "contacts", _decided(note="called back"), False),
    Case("key not lower-case hex", "contacts", _decided(contact_key=CONTACT.upper()), False),
    Case("key too short", "contacts", _decided(contact_key="abc123"), False),
    Case("unknown outcome", "contacts", _decided(outcome="maybe"), False),
    Case("missing outcome", "contacts", _decided(outcome=_DROP), False),
    Case("null optional field", "contacts", _decided(pathway=None), True),
    Case("occurred before 2000", "contacts", _decided(occurred_at="1999-12-31T23:00:00Z"), False),
    Case("occurred next year", "contacts",
         _decided(occurred_at=datetime.now(UTC) + timedelta(days=365)), False),
    Case("recorded later, JSON form", "contacts",
         _decided(recorded_at="2019-09-26T14:00:00+01:00"), True),
    Case("recorded later, Python form", "contacts", _decided(recorded_at=THURSDAY), True),
    Case("recorded at the same instant", "contacts",
         _decided(recorded_at="2019-09-20T09:15:00Z"), True),
    Case("recorded null", "contacts", _decided(recorded_at=None), True),
    Case("recorded naive", "contacts", _decided(recorded_at="2019-09-26T14:00:00"), False),
    Case("recorded before it occurred", "contacts",
         _decided(recorded_at="2019-09-20T10:14:59+01:00"), False),
    Case("recorded next year", "contacts",
         _decided(recorded_at=datetime.now(UTC) + timedelta(days=365)), False),
    Case("list given as a tuple", "map_enquiries",
         _completed(agencies_consulted=("police", "gp")), True),
    Case("string for a list", "map_enquiries", _completed(agencies_consulted="police"), False),
)
