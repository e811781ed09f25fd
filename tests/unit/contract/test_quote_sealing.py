"""Feedback quotes: sealed with their own key, refused in clear, never echoed."""

from __future__ import annotations

import orjson
import pytest

from stream.contract.decoder import Decoder, Rejection
from stream.contract.events import FeedbackQuoteApproved, FeedbackReceived
from stream.contract.quotes import MAX_QUOTE_CHARS, QuoteError, new_key, seal, unseal

FK = "7c4a1e0b9d2f36a85e10c3b7f4d29a61"
CANARY = "CANARY-quote-Zq7xP"


def _approved(sealed: str) -> bytes:
    return orjson.dumps({
        "event_id": "fb-approve-01", "event_type": "feedback.quote_approved",
        "schema_version": 1, "occurred_at": "2019-09-20T16:00:00+01:00",
        "source_system": "lcs", "feedback_key": FK, "sealed_quote": sealed,
        "attribution": "parent_feedback", "consent_to_publish": True,
        "approver_role": "service_manager"})


def test_a_sealed_quote_opens_only_with_its_own_key_and_feedback_key():
    key = new_key()
    sealed = seal(f"Thank you {CANARY}", key, FK)
    assert CANARY not in sealed
    assert unseal(sealed, key, FK) == f"Thank you {CANARY}"
    assert unseal(sealed, new_key(), FK) is None  # another quote's key
    assert unseal(sealed, key, "0" * 32) is None  # moved to another feedback
    assert unseal(sealed, None, FK) is None  # withdrawn: the key is gone
    assert unseal(sealed[:-4], key, FK) is None  # damaged


def test_the_longest_quote_fits_the_contract_and_a_longer_one_is_refused_without_echo():
    longest = "\U0001f600" * MAX_QUOTE_CHARS  # 4 UTF-8 bytes each: the longest sealed form
    sealed = seal(longest, new_key(), FK)
    decoder = Decoder("feedback", _taxonomy())
    assert isinstance(decoder.decode(FK.encode(), _approved(sealed), 2e9), FeedbackQuoteApproved)
    with pytest.raises(QuoteError) as raised:
        seal(CANARY * 200, new_key(), FK)
    assert CANARY not in str(raised.value)
    with pytest.raises(QuoteError):
        seal("   ", new_key(), FK)


def test_a_quote_sent_in_clear_is_rejected_and_the_detail_does_not_echo_it():
    decoder = Decoder("feedback", _taxonomy())
    for clear in (f"Thank you {CANARY}", f"v1.{CANARY}-but not base64 at all"):
        rejected = decoder.decode(FK.encode(), _approved(clear), 2e9)
        assert isinstance(rejected, Rejection)
        assert rejected.reason == "invalid_value"
        assert CANARY not in rejected.detail and "sealed_quote" in rejected.detail


def test_partner_agency_feedback_names_its_agency_and_only_it_does():
    decoder = Decoder("feedback", _taxonomy())

    def received(**fields: str) -> object:
        body = {"event_id": "fb-recv-0001", "event_type": "feedback.received",
                "schema_version": 1, "occurred_at": "2019-09-12T10:15:00+01:00",
                "source_system": "lcs", "feedback_key": FK, "kind": "compliment",
                "channel": "email", **fields}
        return decoder.decode(FK.encode(), orjson.dumps(body), 2e9)

    assert isinstance(received(from_whom="partner_agency", agency="police"), FeedbackReceived)
    assert isinstance(received(from_whom="parent_carer"), FeedbackReceived)
    assert received(from_whom="partner_agency").reason == "invalid_value"  # type: ignore[attr-defined]
    assert received(from_whom="staff", agency="police").reason == "invalid_value"  # type: ignore[attr-defined]
    assert received(from_whom="a named person").reason == "unknown_category"  # type: ignore[attr-defined]


def _taxonomy():  # type: ignore[no-untyped-def]
    from stream.contract.taxonomy import load_taxonomy

    return load_taxonomy()
