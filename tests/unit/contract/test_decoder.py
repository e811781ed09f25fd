from __future__ import annotations

from datetime import datetime

import orjson
import pytest

from stream.contract.decoder import REASONS, Decoder, Limits, Rejection
from stream.contract.events import ContactReceived
from tests.conftest import LONDON
from tests.factories import decided, key, received

NOW = datetime(2026, 11, 26, 12, tzinfo=LONDON).timestamp()
K = key("child-A")
SECRET = "Jane Example 1985-04-01"  # something that must never be echoed back


@pytest.fixture
def decoder(taxonomy):
    return Decoder("contacts", taxonomy, Limits(max_payload_bytes=4096))


def run(decoder, event, k=K):
    value = event if isinstance(event, bytes) else orjson.dumps(event)
    return decoder.decode(k.encode() if isinstance(k, str) else k, value, NOW)


def test_valid_event_becomes_frozen_model(decoder):
    event = run(decoder, received(K, datetime(2019, 8, 1, 10, tzinfo=LONDON)))
    assert isinstance(event, ContactReceived)
    assert event.occurred_at.utcoffset() is not None
    with pytest.raises(Exception):
        event.channel = "phone"  # type: ignore[misc]


GOOD = received(K, datetime(2019, 8, 1, 10, tzinfo=LONDON))


@pytest.mark.parametrize(("mutate", "reason"), [
    ({"channel": "fax"}, "unknown_category"),
    ({"source_code": "99"}, "unknown_category"),
    ({"occurred_at": "2019-08-01T10:00:00"}, "naive_timestamp"),
    ({"occurred_at": "1999-12-31T23:00:00+00:00"}, "timestamp_out_of_range"),
    ({"occurred_at": "2030-01-01T00:00:00+00:00"}, "timestamp_out_of_range"),
    ({"schema_version": 2}, "unsupported_schema_version"),
    ({"schema_version": 7, "new_field": 1}, "unsupported_schema_version"),
    ({"schema_version": True}, "wrong_type"),  # equals 1 in Python, yet not a version
    ({"schema_version": 1.0}, "wrong_type"),
    ({"event_type": "contact.deleted"}, "unknown_event_type"),
    ({"source_code": 6}, "wrong_type"),
    ({"occurred_at": 1564650000}, "wrong_type"),
    ({SECRET: 1}, "unexpected_field"),
    ({"contact_key": SECRET}, "invalid_value"),
])
def test_bad_events_get_a_reason_and_never_echo_values(decoder, mutate, reason):
    result = run(decoder, {**GOOD, **mutate})
    assert isinstance(result, Rejection)
    assert result.reason == reason
    assert result.reason in REASONS
    assert SECRET not in result.detail and "fax" not in result.detail


def test_missing_field(decoder):
    event = dict(GOOD)
    del event["channel"]
    result = run(decoder, event)
    assert result == Rejection("missing_field", "channel: missing")


@pytest.mark.parametrize(("raw", "reason"), [
    (b"", "empty_payload"),
    (b"\xff\xfe{}", "invalid_utf8"),
    (b"{not json", "invalid_json"),
    (b"[1, 2]", "not_an_object"),
    (b"x" * 5000, "payload_too_large"),
])
def test_broken_bytes(decoder, raw, reason):
    result = run(decoder, raw)
    assert isinstance(result, Rejection) and result.reason == reason


def test_key_must_match_the_case(decoder):
    assert run(decoder, GOOD, k=key("someone-else")).reason == "key_mismatch"
    assert run(decoder, GOOD, k=None).reason == "key_mismatch"


def test_completion_before_opening_is_valid(decoder):
    # Out-of-order arrival is matched later, never rejected.
    event = decided(K, datetime(2019, 8, 1, 9, tzinfo=LONDON))
    assert not isinstance(run(decoder, event), Rejection)


def test_other_family_type_is_unknown_here(decoder):
    call = {**GOOD, "event_type": "call.answered"}
    assert run(decoder, call).reason == "unknown_event_type"
