"""The report's section 6 counts against the independent expectation of tests/reportgen
(``facts._feedback``, ``expected``): generated feedback with corrections, approvals with
and without consent, re-approvals, withdrawals and re-deliveries, through the worker's
processors (no broker; ``tests/integration/test_report_accuracy.py`` does it end to end)."""

from __future__ import annotations

import orjson
import pytest

from stream.report import ReportDefinitions, compute_report, render
from tests.processing import processed
from tests.reportgen import Defs, expected_report
from tests.reportgen import facts_of as plain_facts
from tests.reportgen.comparing import flatten, mismatch
from tests.reportgen.generated import MONTHS, generate


@pytest.fixture(scope="module")
def generated(taxonomy, ctx):  # type: ignore[no-untyped-def]
    data = generate(contacts=40, emails=10, calls=20, enquiries=10, audits=10, feedback=True)
    return data, processed(data.messages, taxonomy, ctx)


def test_section_6_equals_independent_ground_truth(generated, taxonomy) -> None:  # type: ignore[no-untyped-def]
    data, agg = generated
    report = compute_report(agg, MONTHS, taxonomy, ReportDefinitions())
    got = {k: v for k, v in flatten(orjson.loads(render(report, "json"))).items()
           if k[0] == "feedback"}
    want = {k: v for k, v in expected_report(plain_facts(data), MONTHS, Defs()).items()
            if k[0] == "feedback"}
    assert got and set(got) == set(want)
    assert [k for k in want if mismatch(got[k], want[k])] == []
    f = plain_facts(data)
    # the data covers what the figures must get right
    assert f.quotes and f.withdrawals and len(f.feedback) > 80
    assert sum(1 for e in data.events() if e["event_type"] == "feedback.quote_approved"
               and not e["consent_to_publish"]) > 0
