"""The December 2019 committee report, reproduced figure for figure through Kafka.

Events built from the seed's own tables (tests/reportgen/ ``seed_dataset``; call
counts from tests/unit/report/test_report.py) go through the real broker into a real worker;
``python -m stream report`` must then print the seed's figures (shared/seed/000_...txt):
sections 1 (RFS), 2 (MAP text), 3 (Level 3), 4 (average days to complete contacts) and 5
(EHH audits), including its N/A cells and its legacy mean-of-months totals. Its HTML is
also opened in headless Chromium, on screen and printed on A4, as committee members read it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import reportgen as rg
from tests.integration import browser
from tests.integration.harness import ROOT
from tests.integration.reporting import Pipeline, pipeline

pytestmark = pytest.mark.integration

#: The definitions under which integer call counts reproduce the seed's percentages: the
#: worker's settings, so every report takes them from it (not from its own environment).
CALL_SETTINGS = {"CSPA_SERVICE_LEVEL_VARIANT": "offered_less_short_abandons",
                 "CSPA_SHORT_ABANDON_SECONDS": "5"}
LEGACY = rg.Defs(variant="offered_less_short_abandons", short_abandon_seconds=5.0,
                 combination="mean_of_months")

#: Section 1 of the seed, as printed (tab separated): Aug, Sep, Oct, Total.
SEED_RFS = """\
Calls:	1763	2412	2503	6678
Service Level	63.97%	59.62%	63.68%	62.42%
Abandoned call rate	3.91%	3.22%	2.97%	3.37%
Emails resolved total	3921	4185	4854	12960
Level 1	497	506	579	1582
Level 2 FIS	45	48	54	147
CWD	0	15	22	37
OT	N/A	N/A	5	5
Level 2 EH	321	409	432	1162
Level 3	170	174	264	608
MAP	402	461	513	1376
Level 4	159	195	210	564
No consent	28	23	40	91
OLA	155	144	173	472
Missing Not Open	0	0	0	0
Info request	544	539	739	1822
Outcome chaser	40	28	55	123
Open cases	861	763	818	2442
Open contacts	205	271	342	818
Inappropriate	108	205	266	579
LADO	N/A	9	9	18"""
#: The seed's row labels where the report's differ only in case or punctuation.
LABELS = {"Calls:": "Calls", "Service Level": "Service level"}

#: Section 3 of the seed: TYS, FSP, CC, Total per month, then the Total row.
SEED_LEVEL3 = """\
July	35	30	28	93
August	27	19	12	58
September	44	32	24	100
October	57	45	29	131
Total	163	126	93	382"""

#: Section 5 of the seed, Early Help Hub (Outstanding is blank there): Good, RI,
#: Inadequate. The seed's Total row says Good 19 where its months add to 18.
SEED_EHH = """\
Aug-19		7	9	8
Sep-19		8	8	1
Oct-19		3	10	3"""


def _rows(text: str) -> list[list[str]]:
    return [line.split("\t") for line in text.splitlines()]


@dataclass
class Loaded:
    p: Pipeline
    data: rg.Dataset
    facts: rg.Facts
    seconds: float


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    data = rg.seed_dataset()
    with pipeline(tmp_path_factory.mktemp("report-seed"), **CALL_SETTINGS) as p:
        seconds = p.send(data.messages)
        yield Loaded(p, data, rg.facts_of(data), seconds)


def test_event_count_is_modest(loaded: Loaded) -> None:
    assert 30_000 < len(loaded.data.messages) < 40_000
    print(f"\nseed: {len(loaded.data.messages)} events through the worker in "
          f"{loaded.seconds:.1f} s")


def test_rfs_section_as_printed_in_the_seed(loaded: Loaded) -> None:
    """Section 1 under the legacy mean of months (--legacy-mean-of-months)."""
    text = loaded.p.report("2019-08..2019-10", "text", "--legacy-mean-of-months")
    table = rg.text_table(text, "Request for Support team")
    assert table[""] == ["Aug 2019", "Sep 2019", "Oct 2019", "Total"]
    for label, *cells in _rows(SEED_RFS):
        assert table[LABELS.get(label, label)] == cells, label
    assert table["Total enquiries (calls + emails)"][-1] == "19638"
    assert ("The RFS Team processed a total of 19,638 enquiries during this period; "
            "66% of them were received via email.") in text
    assert "mean of the monthly percentages (legacy, as the 2019 report)" in text
    assert "variant offered_less_short_abandons" in text and "within 5 s" in text


def test_the_report_takes_the_workers_definitions_not_its_own(loaded: Loaded) -> None:
    """The one running the report has other settings: the worker's are used (and printed);
    a flag sets one for that report only."""
    mine = {"CSPA_SERVICE_LEVEL_VARIANT": "answered", "CSPA_SHORT_ABANDON_SECONDS": "0",
            "CSPA_SERVICE_LEVEL_SECONDS": "30", "CSPA_PERIOD_COMBINATION": "mean_of_months"}
    defs = loaded.p.report_json("2019-08..2019-10", **mine)["definitions"]
    assert (defs["service_level_variant"], defs["short_abandon_seconds"],
            defs["service_level_seconds"], defs["period_combination"]) == (
        "offered_less_short_abandons", 5.0, 20.0, "ratio_of_sums")
    defs = loaded.p.report_json("2019-08..2019-10", "--service-level-seconds", "30",
                                **mine)["definitions"]
    assert (defs["service_level_variant"], defs["service_level_seconds"]) == (
        "offered_less_short_abandons", 30.0)


def test_rfs_totals_pooled_are_the_call_weighted_values(loaded: Loaded) -> None:
    """Ratio of sums (the default) gives the domain brief's 62.29% and 3.31%."""
    table = rg.text_table(loaded.p.report("2019-08..2019-10", "text"),
                          "Request for Support team")
    assert table["Service level"] == ["63.97%", "59.62%", "63.68%", "62.29%"]
    assert table["Abandoned call rate"] == ["3.91%", "3.22%", "2.97%", "3.31%"]


def test_information_and_advice_as_printed_in_the_seed(loaded: Loaded) -> None:
    text = loaded.p.report("2019-07..2019-10", "text")
    table = rg.text_table(text, "Level 3 outcomes by service")
    assert table[""] == ["TYS", "FSP", "CC", "Total"]
    names = {"July": "Jul 2019", "August": "Aug 2019", "September": "Sep 2019",
             "October": "Oct 2019", "Total": "Total"}
    for label, *cells in _rows(SEED_LEVEL3):
        assert table[names[label]] == cells, label


def test_audits_as_printed_in_the_seed(loaded: Loaded) -> None:
    text = loaded.p.report("2019-08..2019-10", "text")
    table = rg.text_table(text, "Early Help Hub")
    assert table[""] == ["Outstanding", "Good", "Requires Improvement", "Inadequate",
                              "Total"]
    for label, outstanding, *cells in _rows(SEED_EHH):
        month = {"Aug-19": "Aug 2019", "Sep-19": "Sep 2019", "Oct-19": "Oct 2019"}[label]
        assert outstanding == "" and table[month][0] == "0"
        assert table[month][1:4] == cells, label
    # The seed prints Good 19 and "58 audits since August"; its own months add to 18, 57.
    assert table["Total"] == ["0", "18", "27", "12", "57"]


def test_map_section_text(loaded: Loaded) -> None:
    """Section 2: 697 completed 1 Jul - 29 Nov, 6.8 agencies (the chart's figure; the text
    says 6.6), 79% within 1 working day, 2.0 working days on average, 44% to Level 4."""
    text = loaded.p.report("2019-07..2019-11", "text")
    assert ("697 MAP enquiries completed. On average C-SPA consulted 6.8 agencies to "
            "complete a MAP enquiry; 79% were completed within 1 working day (average 2.0 "
            "working days); 44% progressed to Level 4.") in text
    page = loaded.p.tmp / "seed.html"
    loaded.p.report("2019-07..2019-11", "html", "--output", str(page))
    assert "Number of agencies consulted (average 6.8)" in page.read_text(encoding="utf-8")
    assert "(average = 2.0 working days)" in page.read_text(encoding="utf-8")


def test_average_days_to_complete_contacts(loaded: Loaded) -> None:
    """Section 4's table (contacts completed 1-26 Nov 2019): means to 1 decimal, counts."""
    doc = loaded.p.report_json("2019-11")
    flat = rg.flatten(doc)
    table = "contact_completion_average"
    columns = (*rg.SEED_PATHWAYS, "total")
    for group, cells in [*rg.SEED_COMPLETION.items(), ("total", rg.SEED_COMPLETION_TOTALS)]:
        for pathway, cell in zip(columns, cells, strict=True):
            value, count = flat[(table, group, pathway)], flat[(table, group, pathway, "count")]
            if cell is None:
                assert (value, count) == (None, 0), (group, pathway)
            else:
                assert count == cell[1], (group, pathway)
                assert f"{value:.1f}" == f"{cell[0]:.1f}", (group, pathway)
    text = loaded.p.report("2019-11", "text")
    rows = rg.text_table(text, "Average working days to complete contacts, by source and "
                               "outcome")
    assert rows["Anonymous"] == ["", "1.8 (6)", "1.0 (38)", "2.1 (42)", "1.0 (17)", "1.5 (103)"]
    assert rows["Grand Total"] == ["3.1 (10)", "1.8 (357)", "1.0 (165)", "1.4 (1339)",
                                   "1.2 (147)", "1.5 (2018)"]


@pytest.mark.parametrize(("months", "flags", "defs"), [
    (rg.QUARTER, ("--legacy-mean-of-months",), LEGACY),
    (("2019-07", "2019-08", "2019-09", "2019-10", "2019-11"), (), rg.Defs(
        variant="offered_less_short_abandons", short_abandon_seconds=5.0)),
], ids=["quarter-legacy", "jul-nov"])
def test_every_figure_equals_the_independent_expectation(
        loaded: Loaded, months: tuple[str, ...], flags: tuple[str, ...], defs: rg.Defs) -> None:
    doc = loaded.p.report_json(f"{months[0]}..{months[-1]}", *flags)
    assert rg.compare(doc, rg.expected_report(loaded.facts, months, defs)) == []


#: The six sections of the committee report, by their HTML ids.
SECTIONS = ("rfs", "map", "info_advice", "commentary", "audits", "feedback")
SCREENSHOT = ROOT / "docs" / "report-seed-months.png"


def test_html_report_in_a_real_browser(loaded: Loaded, tmp_path: Path) -> None:
    """The seed months' HTML, as analysts forward it, in headless Chromium at 1280 px and
    printed to an A4 PDF: six sections, drawn charts, tables within the width, no row cut
    by a page break, no console error (tests/integration/browser.py). With
    UPDATE_SCREENSHOT=1 its screenshot replaces docs/report-seed-months.png."""
    page = tmp_path / "report.html"
    loaded.p.report("2019-08..2019-10", "html", "--output", str(page))
    seen = browser.inspect(page, tmp_path / "browser")
    assert browser.problems(seen, SECTIONS) == []
    assert {c["id"] for c in seen.screen["charts"]} == {
        "chart-map_by_month", "chart-map_agencies", "chart-map_by_agency",
        "chart-map_by_outcome", "chart-map_days_working", "chart-map_days_calendar",
        "chart-progress_early_help", "chart-progress_childrens_social_care"}
    _check_timeliness_charts_and_empty_tables(page.read_text())
    # 94 table rows: the tables the seed months leave empty print one line, not rows
    assert len(seen.pdf.page_sizes) > 1 and len(seen.pdf.rows) > 80
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(seen.screenshot, SCREENSHOT)
    print(f"\nbrowser: {len(seen.pdf.page_sizes)} A4 pages, {len(seen.pdf.rows)} rows, "
          f"screenshot {seen.screenshot}, PDF {seen.pdf_path}")


def _check_timeliness_charts_and_empty_tables(page: str) -> None:
    """The seed's "CSPA Progress to ..." charts over Aug-Oct 2019: early help 77% in
    August (the seed's own figure, 77 of 100 within 3 working days), nothing to draw in
    September and October; no progressions to children's social care in the seed data.
    The seed months allocate nothing: that table is one line, not an empty grid."""
    within, late = rg.SEED_EARLY_HELP_TIMELINESS[rg.AUG]
    share = f"{100 * within / (within + late):.0f}%"
    early_help = page.split('id="chart-progress_early_help"', 1)[1].split("</figure>", 1)[0]
    assert early_help.count("<circle") == 1 and f'class="val">{share}<' in early_help
    assert "Target 80%" in early_help
    social_care = page.split('id="chart-progress_childrens_social_care"', 1)[1].split(
        "</figure>", 1)[0]
    assert "<circle" not in social_care and "No progressions judged" in social_care
    assert 'id="no-data-early_help_allocation"' in page
    assert "<caption>EHH working days to allocate</caption>" not in page


def test_the_expected_range_band_is_drawn_in_a_real_browser(tmp_path: Path) -> None:
    """Chromium draws the shaded band of each month with a year's history over its bar
    (no broker: a report computed from cells, 8 and 12 enquiries alternately for the
    year before, then 15 and 12; tests/unit/report/test_expected_range.py)."""
    from stream.contract.taxonomy import load_taxonomy
    from stream.report import ReportDefinitions, compute_report, render
    from stream.state.aggregates import Aggregates

    agg = Aggregates()
    year = [f"2018-{m:02d}" for m in range(8, 13)] + [f"2019-{m:02d}" for m in range(1, 10)]
    for month, n in zip(year, [8, 12] * 6 + [15, 12], strict=True):
        agg.apply([("map_completed", (month, "level_3"), None)] * n, +1)
    report = compute_report(agg, ["2019-08", "2019-09"], load_taxonomy(), ReportDefinitions())
    page = tmp_path / "band.html"
    page.write_text(render(report, "html"))
    seen = browser.inspect(page, tmp_path / "browser")
    chart = next(c for c in seen.screen["charts"] if c["id"] == "chart-map_by_month")
    assert chart["width"] > 0 and chart["marks"] == 4  # two bars and their two bands
    assert seen.console_errors == ()
