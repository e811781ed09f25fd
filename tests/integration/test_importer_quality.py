"""Issue 27's upstream exports end to end: ``python -m stream import`` (a subprocess) sends
the shipped staff roster, audit log, QA activity sheets (learning reviews, dip samples) and
the feedback log with its complaint answers through a real broker into a real worker.
``/metrics`` and ``python -m stream report`` must say what this file works out by itself
from the CSV rows (csv module, the mappings' tables, the taxonomy; reportgen's plain fold
and calendar): report section 5 (grades, learning reviews and dip samples, the share of
advisors in post audited), the complaints row, section 6, and the advisors in post without
an audit this month. The samples with errors then name each bad row and why, without an
identifier, and their good rows (copies) change nothing.

The worker's clock says Monday 30 December 2019, noon.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests import reportgen as rg
from tests.integration.harness import total, wait_for
from tests.integration.reporting import Pipeline, pipeline
from tests.integration.test_importer_feedback import _import
from tests.integration.test_importer_roundtrip import _mapping, _time, _translate
from tests.integration.test_quality_live import unaudited_by_hand
from tests.reportgen.workdays import complaint_timescales

pytestmark = pytest.mark.integration

SAMPLES = rg.ROOT / "topics" / "samples"
MAPPINGS = rg.ROOT / "topics" / "mappings"
#: imported in this order (the roster first, as a council would)
NAMES = ("staff_roster", "audit_log", "learning_reviews", "dip_samples", "feedback_log")
MONTHS = "2019-08..2019-12"
MONTH_LIST = ("2019-08", "2019-09", "2019-10", "2019-11", "2019-12")
NOW = "2019-12-30T12:00:00+00:00"
TABLES = ("qa_activity", "audit_coverage", "audits_", "feedback")


# ------------------------------------------------------------ the CSVs, read by hand

def _rows(name: str) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    m = _mapping(MAPPINGS / f"{name}.toml")
    with (SAMPLES / f"{name}.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            yield m, {f: row[c] for f, c in m["columns"].items()}


def _event(event_type: str, at: datetime | None, key_field: str, key: str,
           **fields: Any) -> dict[str, Any]:
    assert at is not None and all(v is not None for v in fields.values()), fields
    return {"event_type": event_type, "occurred_at": at.isoformat(), key_field: key,
            "event_id": f"{event_type}:{key}:{at.isoformat()}", **fields}


def _code(m: dict[str, Any], row: dict[str, str], name: str, category: str) -> str:
    code = _translate(m, name, category, row[name])
    assert code, (name, row[name])  # the samples have no bad row
    return code


def qa_events() -> list[dict[str, Any]]:
    """The audits topic's events the samples stand for, keyed by the raw ids."""
    out: list[dict[str, Any]] = []
    for m, r in _rows("staff_roster"):
        team = _code(m, r, "team", "team")
        out.append(_event("advisor.joined", _time(m, r["joined"]), "advisor_key",
                          r["advisor_id"], team=team))
        if r["left"]:
            out.append(_event("advisor.left", _time(m, r["left"]), "advisor_key",
                              r["advisor_id"], team=team))
    for m, r in _rows("audit_log"):
        out.append(_event("audit.graded", _time(m, r["graded"]), "audit_key", r["audit_id"],
                          team=_code(m, r, "team", "team"), grade=_code(m, r, "grade", "grade"),
                          **({"advisor_key": r["advisor_id"]} if r["advisor_id"] else {})))
    for m, r in _rows("learning_reviews"):
        out.append(_event("learning_review.held", _time(m, r["held"]), "review_key",
                          r["review_id"], team=_code(m, r, "team", "team"),
                          theme=_code(m, r, "theme", "qa_theme")))
    for m, r in _rows("dip_samples"):
        out.append(_event("dip_sample.taken", _time(m, r["taken"]), "sample_key",
                          r["sample_id"], sampler_role=_code(m, r, "sampler_role",
                                                             "sampler_role"),
                          theme=_code(m, r, "theme", "qa_theme"), cases_sampled=int(r["cases"])))
    return out


def feedback_events() -> list[dict[str, Any]]:
    out = []
    for m, r in _rows("feedback_log"):
        agency = {"agency": _code(m, r, "agency", "agency")} if r["agency"] else {}
        out.append(_event("feedback.received", _time(m, r["received"]), "feedback_key",
                          r["feedback_id"], from_whom=_code(m, r, "from_whom", "feedback_from"),
                          kind=_code(m, r, "kind", "feedback_kind"), **agency))
    return out


def _clock_start(at: datetime) -> datetime:
    """Working-day time accrues only on working days: one received on a weekend or bank
    holiday starts at the next working day's midnight."""
    day = at.astimezone(rg.LONDON).date()
    if rg.is_working(day):
        return at
    while not rg.is_working(day):
        day += timedelta(days=1)
    return rg.local(day.year, day.month, day.day)


def complaints() -> list[tuple[str, bool]]:
    """(month answered, within timescale) of each answered complaint: 10 working days from
    receipt, 20 when extended no later than the 10-day deadline and the response."""
    base, extended = complaint_timescales()
    out = []
    for m, r in _rows("feedback_log"):
        if not r["responded"]:
            continue
        assert _code(m, r, "kind", "feedback_kind") == "complaint"
        received, answered = _time(m, r["received"]), _time(m, r["responded"])
        assert received is not None and answered is not None
        start = _clock_start(received)
        deadline = rg.add_working_days(start, base)
        ext = _time(m, r["extended"]) if r["extended"] else None
        if ext is not None and ext <= deadline and ext <= answered:
            deadline = rg.add_working_days(start, extended)
        out.append((rg.month_of(answered), answered <= deadline))
    return out


def ground_truth() -> rg.Facts:
    facts = rg.facts_of(qa_events() + feedback_events())
    facts.complaints = complaints()
    return facts


# ------------------------------------------------------------ the real thing

@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    tmp = tmp_path_factory.mktemp("importer-quality")
    (tmp / "clock.txt").write_text(NOW + "\n")
    (tmp / "pseudonym.key").write_text("27" * 32)
    with pipeline(tmp, CSPA_CLOCK_FILE=str(tmp / "clock.txt")) as p:
        for name in NAMES:
            status, stderr = _import(p, SAMPLES / f"{name}.csv", tmp / "pseudonym.key",
                                     tmp / f"{name}.errors.csv", MAPPINGS / f"{name}.toml")
            assert status == 0 and " 0 rejected" in stderr, stderr[-2000:]
        yield p


def _section_5_and_6(doc: Any) -> dict[tuple[str, ...], Any]:
    return {k: v for k, v in rg.flatten(doc).items()
            if k[0].startswith(TABLES) or k[:2] == ("progressions", "within_complaint_stage1")}


def _expected(facts: rg.Facts) -> dict[tuple[str, ...], rg.Fig]:
    return {k: v for k, v in rg.expected_report(facts, MONTH_LIST).items()
            if k[0].startswith(TABLES) or k[:2] == ("progressions", "within_complaint_stage1")}


def test_the_data_has_what_the_comparison_is_meant_to_cover() -> None:
    facts = ground_truth()
    assert {within for _, within in facts.complaints} == {True, False}
    staff = Counter(e["advisor_key"] for e in qa_events() if e["event_type"] == "advisor.joined")
    assert max(staff.values()) == 2  # advisors with two spells: a move, a return
    assert any(left for *_, left in facts.advisors)
    assert any(m in MONTH_LIST for m, _ in facts.audited)


def test_metrics_equal_the_csv_rows(loaded: Pipeline) -> None:
    facts = ground_truth()
    want = unaudited_by_hand(facts, "2019-12")
    assert sum(want.values()) > 0

    def unaudited() -> dict[str, float]:
        s = loaded.worker.samples()
        return {team: total(s, "cspa_advisors_unaudited", team=team) for team in want}

    wait_for(lambda: unaudited() == want, 60, "unaudited advisors")
    s = loaded.worker.samples()
    assert total(s, "cspa_learning_reviews") == len(facts.reviews) == 24
    assert total(s, "cspa_dip_sample_cases_count") == len(facts.dips)
    assert total(s, "cspa_dip_sample_cases_sum") == sum(n for _, n in facts.dips)
    assert total(s, "cspa_complaints_responded") == len(facts.complaints)
    assert total(s, "cspa_complaints_responded", within_timescale="true") == sum(
        within for _, within in facts.complaints)


def test_report_sections_5_and_6_equal_ground_truth(loaded: Pipeline) -> None:
    want = _expected(ground_truth())
    got = _section_5_and_6(loaded.report_json(MONTHS))
    assert {k[0] for k in want} >= {"qa_activity", "audit_coverage", "audits_rfs", "feedback"}
    assert set(got) == set(want)
    assert [(k, got[k], want[k].value) for k in want if rg.mismatch(got[k], want[k])] == []


ERRORS = {
    "staff_roster": ["End date in team: before Start date in team", "Staff number: empty",
                     "Team: value not in", "Start date in team: not a date/time"],
    "audit_log": ["Grade: value not in", "Date graded: empty", "Date graded: not a date/time",
                  "Audit ref: empty", "Team audited: value not in"],
    "dip_samples": ["Cases sampled: not a whole number", "Cases sampled: not a whole number",
                    "Sampled by: value not in", "Theme: value not in"],
    "feedback_log": ["Response sent: set for feedback that is not a complaint",
                     "Response sent: before Date received",
                     "Extended on: set for feedback that is not a complaint",
                     "Extended on: before Date received", "Response sent: not a date/time"],
}


def test_bad_rows_are_named_and_good_rows_count_once(loaded: Pipeline) -> None:
    tmp = loaded.tmp
    for name, reasons in ERRORS.items():
        errors = tmp / f"{name}.bad.csv"
        status, stderr = _import(loaded, SAMPLES / f"{name}_with_errors.csv",
                                 tmp / "pseudonym.key", errors, MAPPINGS / f"{name}.toml")
        assert status == 1, stderr[-2000:]
        rows = list(csv.reader(errors.open(encoding="utf-8")))
        assert rows[0] == ["row", "reason"]
        assert [int(r[0]) for r in rows[1:]] == list(range(5, 5 + len(reasons)))
        assert all(r[1].startswith(want) for r, want in zip(rows[1:], reasons, strict=True))
        text = errors.read_text() + stderr
        assert not re.search(r"\b(S1\d{4}|QA-2019|DS-19|FB-19)", text), name
    got = _section_5_and_6(loaded.report_json(MONTHS))
    want = _expected(ground_truth())
    assert [k for k in want if rg.mismatch(got[k], want[k])] == []
