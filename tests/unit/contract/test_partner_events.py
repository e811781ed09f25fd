"""The partner events (issue 29.2), added under the contract's change policy: new event
types on an existing topic, with the MAP enquiry's key, one agency each from the closed
set MAP completions already use. Additive: everything valid before is valid and folds as
before; the new events are refused, with a reason and without echoing values, when they
break the contract."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from stream.contract.decoder import Decoder, Rejection
from stream.contract.events import MapAgencyRequested, MapAgencyResponded
from stream.contract.topics import load_topics
from tests.conftest import LONDON
from tests.factories import key, map_completed, map_opened, partner_requested, partner_responded

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 11, 26, 12, tzinfo=LONDON).timestamp()
K = key("enquiry-A")
AT = datetime(2026, 11, 23, 10, tzinfo=LONDON)
SCHEMA = "topics/schemas/cspa.map-enquiries.v1.schema.json"


@pytest.fixture
def decoder(taxonomy):
    return Decoder("map_enquiries", taxonomy)


def run(decoder, event, k=K):
    return decoder.decode(k.encode(), orjson.dumps(event), NOW)


def test_same_topic_and_key_as_the_enquiry(decoder) -> None:
    spec = load_topics()["map_enquiries"]
    assert {"map_enquiry.agency_requested", "map_enquiry.agency_responded"} <= set(
        spec.event_types)
    asked = run(decoder, partner_requested(K, AT, "police"))
    answered = run(decoder, partner_responded(K, AT, "police"))
    assert isinstance(asked, MapAgencyRequested) and isinstance(answered, MapAgencyResponded)
    assert asked.key == answered.key == K  # the partition of the enquiry's other events


def test_agency_is_the_completions_closed_set(decoder, taxonomy) -> None:
    schema = json.loads((ROOT / SCHEMA).read_text())
    text = json.dumps(schema)
    assert "map_enquiry.agency_requested" in text and "map_enquiry.agency_responded" in text
    for agency in taxonomy.ordered("agency"):
        assert isinstance(run(decoder, partner_requested(K, AT, agency)), MapAgencyRequested)


@pytest.mark.parametrize(("mutate", "reason"), [
    ({"agency": "Mrs Smith's surgery"}, "unknown_category"),
    ({"agency": None}, "wrong_type"),
    ({"note": "called twice"}, "unexpected_field"),
    ({"enquiry_key": "not a key"}, "invalid_value"),
])
def test_bad_partner_events_get_a_reason(decoder, mutate, reason) -> None:
    result = run(decoder, {**partner_requested(K, AT, "gp"), **mutate})
    assert isinstance(result, Rejection) and result.reason == reason
    assert "Smith" not in result.detail and "twice" not in result.detail


def test_a_request_needs_its_agency(decoder) -> None:
    event = partner_responded(K, AT, "gp")
    del event["agency"]
    assert run(decoder, event) == Rejection("missing_field", "agency: missing")


#: sha256 of the canonical JSON of the MAP schema's two definitions and their oneOf
#: entries as committed before issue 29.2 (commit 879ce2e): the previous contract
PREVIOUS_MAP_SCHEMA = "69c3b7c581216a94429f22116a13b4b2fe362b25e16064962288243ce02f4883"


def test_additive_the_old_events_are_unchanged(decoder) -> None:
    """Every MAP event of the previous contract decodes as before, and the previous
    schema's two event types are still in the committed schema, word for word."""
    for event in (map_opened(K, AT), map_completed(K, AT, ["police", "gp"], "level_3", "tys")):
        assert not isinstance(run(decoder, event), Rejection)
    now = json.loads((ROOT / SCHEMA).read_text())
    old = ("MapEnquiryCompleted", "MapEnquiryOpened")
    kept = {"defs": {name: now["$defs"][name] for name in old},
            "oneOf": [c for c in now["oneOf"] if c["$ref"].rpartition("/")[2] in old]}
    digest = hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()
    assert digest == PREVIOUS_MAP_SCHEMA
