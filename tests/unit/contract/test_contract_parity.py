"""The Python API accepts exactly what the wire accepts (issue 14, part 3).

Every document of ``tests.contract_cases`` gets the same verdict from
``EventValidator.build`` (given the document as the integrator has it) and from
the worker's decoder (given its JSON bytes); accepted ones become the same
event. The CLI joins the comparison in ``tests/integration/test_contract_cli.py``.
"""

from __future__ import annotations

import json
import time

import pytest
from pydantic import ValidationError

from stream.contract.decoder import Decoder, Rejection
from stream.contract.events import Event
from stream.upstream.producer import EventValidator, encode
from tests.contract_cases import CASES, Case


@pytest.fixture(scope="module")
def validator(taxonomy):
    return EventValidator(taxonomy)


def by_build(validator: EventValidator, case: Case) -> Event | None:
    try:
        return validator.build(case.family, case.doc)
    except ValidationError:
        return None


def by_decoder(taxonomy, case: Case) -> Event | None:
    result = Decoder(case.family, taxonomy).decode(case.kafka_key(), case.wire(), time.time())
    return None if isinstance(result, Rejection) else result


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_build_and_decoder_agree(case, validator, taxonomy):
    built, decoded = by_build(validator, case), by_decoder(taxonomy, case)
    assert (built is not None) == case.accepted
    assert (decoded is not None) == case.accepted
    if built is not None and decoded is not None:
        assert encode(built) == encode(decoded)
        assert built.timestamp == decoded.timestamp


@pytest.mark.parametrize("case", [c for c in CASES if c.accepted], ids=lambda c: c.name)
def test_build_takes_a_json_line_as_loaded(case, validator):
    # The integrator's own path: json.loads of a line, straight into build.
    assert validator.build(case.family, json.loads(case.wire())) is not None


def test_build_refuses_what_json_cannot_carry(validator):
    doc = dict(CASES[0].doc, pathway={"map_enquiry"})
    with pytest.raises(ValidationError) as info:
        validator.build("contacts", doc)
    assert info.value.errors()[0]["type"] == "wrong_type"


def test_out_of_range_times_raise_validation_errors_naming_the_field(validator):
    doc = dict(CASES[0].doc, recorded_at="2999-01-01T00:00:00Z")
    with pytest.raises(ValidationError) as info:
        validator.build("contacts", doc)
    error = info.value.errors()[0]
    assert error["type"] == "timestamp_out_of_range"
    assert error["msg"] == "recorded_at in the future"
