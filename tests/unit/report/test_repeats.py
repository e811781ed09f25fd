"""Section 8, repeat contacts and re-referrals: every figure worked out by hand.

Police contacts naming a child: Aug 30 repeats of 100 (30.0%), Sep 10 of 40 (25.0%);
schools: Aug 0 of 20. All sources: Aug 30 of 120 (25.0%), Sep 10 of 40, total 40 of 160
(25.0%). Referrals: Aug 9 re-referrals of 40 police referrals (22.5%). No child key:
7 contacts in Aug, 2 referrals in Sep.
"""

from __future__ import annotations

import csv
import io

import orjson

from stream.contract.taxonomy import load_taxonomy
from stream.report import ReportDefinitions, compute_report, render
from stream.settings import Settings
from stream.state.aggregates import Aggregates, Cell

TAX = load_taxonomy()
MONTHS = ("2019-08", "2019-09")


def _report(publish: bool = False):  # type: ignore[no-untyped-def]
    agg = Aggregates()
    for key, n in {
        ("child_contacts", ("2019-08", "police", "yes")): 30,
        ("child_contacts", ("2019-08", "police", "no")): 70,
        ("child_contacts", ("2019-09", "police", "yes")): 10,
        ("child_contacts", ("2019-09", "police", "no")): 30,
        ("child_contacts", ("2019-08", "schools", "no")): 20,
        ("child_contacts", ("2019-10", "police", "yes")): 999,  # outside the months
        ("child_referrals", ("2019-08", "police", "yes")): 9,
        ("child_referrals", ("2019-08", "police", "no")): 31,
        ("contacts_without_child_key", ("2019-08", "police")): 7,
        ("referrals_without_child_key", ("2019-09", "schools")): 2,
    }.items():
        agg.cells[key] = Cell(count=n)
    return compute_report(agg, MONTHS, TAX, ReportDefinitions.of(Settings()), publish=publish)


def _rows(doc: dict, table: str) -> dict[str, list]:  # type: ignore[type-arg]
    [section] = [s for s in doc["sections"] if s["key"] == "repeats"]
    [found] = [t for t in section["tables"] if t["key"] == table]
    return {r["key"]: r["values"] for r in found["rows"]}


def test_counts_and_shares_by_month_and_source_group() -> None:
    doc = orjson.loads(render(_report(), "json"))
    contacts = _rows(doc, "repeat_contacts")
    assert contacts["repeat_contacts"] == [30, 10, 40]
    assert contacts["repeat_contacts_share"] == [25.0, 25.0, 25.0]
    assert contacts["police"] == [30, 10, 40]
    assert contacts["police_share"] == [30.0, 25.0, 28.5714]  # 40 / 140, 4 dp in data
    assert contacts["schools"] == [0, 0, 0]
    assert contacts["contacts_without_child_key"] == [7, 0, 7]
    referrals = _rows(doc, "re_referrals")
    assert referrals["re_referrals"] == [9, 0, 9]
    assert referrals["re_referrals_share"][0] == 22.5
    assert referrals["referrals_without_child_key"] == [0, 2, 2]


def test_every_format_has_section_8_and_the_national_figure() -> None:
    report = _report()
    for fmt in ("text", "markdown", "html"):
        text = render(report, fmt)
        assert "8. Repeat contacts and re-referrals" in text, fmt
        assert "22.4%" in text and "139,080" in text, fmt
    rows = list(csv.reader(io.StringIO(render(report, "csv"))))
    ids = {(r[0], r[1]) for r in rows}
    assert {("repeats", "repeat_contacts"), ("repeats", "re_referrals_share"),
            ("repeats", "contacts_without_child_key")} <= ids


def test_a_published_report_hides_small_counts() -> None:
    text = render(_report(publish=True), "text")
    line = next(x for x in text.splitlines() if x.startswith("Referrals with no child key"))
    assert " 2 " not in f" {line} "
