"""The report's section 9 (partner agencies' responses) against the independent expectation
of tests/reportgen (``facts._partners``, ``expected._partners``: office hours counted day by
day, the deadline walked by hand): generated requests, answers within minutes or days, no
answer, requests sent again, answers before their requests and re-deliveries, through the
worker's processors (no broker), in every format and published."""

from __future__ import annotations

import csv
import io

import orjson
import pytest

from stream.report import ReportDefinitions, compute_report, render
from tests.processing import processed
from tests.reportgen import Defs, expected_report
from tests.reportgen import facts_of as plain_facts
from tests.reportgen.comparing import flatten, mismatch
from tests.reportgen.generated import MONTHS, generate

TABLES = ("partner_requests", "partner_response_median", "partner_response_p90",
          "partner_responses_late", "partner_requests_open")


@pytest.fixture(scope="module")
def generated(taxonomy, ctx):  # type: ignore[no-untyped-def]
    data = generate(contacts=20, emails=5, calls=10, enquiries=10, audits=5, partners=260)
    return data, processed(data.messages, taxonomy, ctx)


def test_section_9_equals_independent_ground_truth(generated, taxonomy) -> None:  # type: ignore[no-untyped-def]
    data, agg = generated
    report = compute_report(agg, MONTHS, taxonomy, ReportDefinitions())
    got = {k: v for k, v in flatten(orjson.loads(render(report, "json"))).items()
           if k[0] in TABLES}
    want = {k: v for k, v in expected_report(plain_facts(data), MONTHS, Defs()).items()
            if k[0] in TABLES}
    assert got and set(got) == set(want)
    assert [k for k in want if mismatch(got[k], want[k])] == []
    f = plain_facts(data)
    # the data covers what the figures must get right
    assert sum(late for *_, late in f.partner_responses) > 20 and len(f.partner_open) > 20
    assert any(h == 0.0 for _, _, h, _ in f.partner_responses)  # an answer before its request


def test_section_9_in_every_format(generated, taxonomy) -> None:  # type: ignore[no-untyped-def]
    _, agg = generated
    report = compute_report(agg, MONTHS, taxonomy, ReportDefinitions())
    for fmt in ("text", "markdown", "html"):
        text = render(report, fmt)
        assert "9. Partner agencies" in text and "Median working hours" in text, fmt
    rows = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    assert {r["figure"] for r in rows if r["section"] == "partners"} == set(TABLES)
    sections = [s["key"] for s in orjson.loads(render(report, "json"))["sections"]]
    assert sections[-1] == "partners" and "8" not in "".join(sections)


def test_no_partner_data_no_section(taxonomy, ctx) -> None:  # type: ignore[no-untyped-def]
    data = generate(contacts=20, emails=5, calls=10, enquiries=10, audits=5)
    report = compute_report(processed(data.messages, taxonomy, ctx), MONTHS, taxonomy,
                            ReportDefinitions())
    assert "partners" not in [key for key, _, _ in report.sections()]


def test_published_section_9_hides_small_counts(generated, taxonomy) -> None:  # type: ignore[no-untyped-def]
    _, agg = generated
    report = compute_report(agg, MONTHS, taxonomy, ReportDefinitions(), publish=True)
    cells = {k: v for k, v in flatten(orjson.loads(render(report, "json"))).items()
             if k[0] in TABLES}
    shown = [v for k, v in cells.items() if isinstance(v, int) and k[0] != TABLES[1]]
    assert shown and not any(1 <= v <= 5 for v in shown)
    assert "*" in cells.values()
