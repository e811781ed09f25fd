"""The HTML report's timeliness charts and the one line that replaces a table with no data.

Expected shares are worked out by hand from the facts put in; the chart's geometry is
read back from its SVG (a higher share is drawn higher, the target line where it says).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import re

from stream.contract.taxonomy import load_taxonomy
from stream.report import ReportDefinitions, compute_report, render
from stream.report.cli import definitions
from stream.report.render import NO_DATA, svg_line_chart, timeliness_charts
from stream.settings import Settings
from stream.state.aggregates import Aggregates

TAX = load_taxonomy()
MONTHS = ["2019-08", "2019-09", "2019-10", "2019-11"]
FORMATS = ("text", "markdown", "csv", "json", "html")


def progressions(agg: Aggregates, month: str, destination: str, within: int,
                 late: int) -> None:
    agg.apply([("progressions", (month, destination, "true"), None)] * within, +1)
    agg.apply([("progressions", (month, destination, "false"), None)] * late, +1)


def timeliness_agg() -> Aggregates:
    agg = Aggregates()
    # early help: Aug 16%, Sep nothing, Oct 77%, Nov 93% (the seed's own examples)
    progressions(agg, "2019-08", "early_help", 4, 21)   # 4/25 = 16%
    progressions(agg, "2019-10", "early_help", 77, 23)  # 77/100
    progressions(agg, "2019-11", "early_help", 93, 7)   # 93/100
    # children's social care: 60% then 70% in Sep and Oct only
    progressions(agg, "2019-09", "childrens_social_care", 3, 2)
    progressions(agg, "2019-10", "childrens_social_care", 7, 3)
    return agg


def _points(svg: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)"',
                                                          svg)]


def _target_y(svg: str) -> float:
    return float(re.search(r'y1="([\d.]+)"[^>]*class="target"', svg).group(1))  # type: ignore[union-attr]


def _grid_y(svg: str, percent: int) -> float:
    match = re.search(rf'y1="([\d.]+)"[^>]*class="grid"/><text[^>]*>{percent}%<', svg)
    return float(match.group(1))  # type: ignore[union-attr]


def test_one_chart_per_destination_with_the_monthly_shares() -> None:
    report = compute_report(timeliness_agg(), MONTHS, TAX, ReportDefinitions())
    charts = {c.key: c for c in timeliness_charts(report)}
    assert set(charts) == {"progress_early_help", "progress_childrens_social_care"}
    eh = charts["progress_early_help"]
    assert [label for label, _ in eh.points] == ["Aug 2019", "Sep 2019", "Oct 2019", "Nov 2019"]
    assert [v.value for _, v in eh.points] == [16.0, None, 77.0, 93.0]
    assert "Early Help" in eh.title and "80%" in eh.title
    csc = charts["progress_childrens_social_care"]
    assert [v.value for _, v in csc.points] == [None, 60.0, 70.0, None]


def test_the_line_breaks_at_a_month_without_progressions_and_rises_with_the_share() -> None:
    report = compute_report(timeliness_agg(), MONTHS, TAX, ReportDefinitions())
    eh = next(c for c in timeliness_charts(report) if c.key == "progress_early_help")
    svg = svg_line_chart(eh, publish=False)
    points = _points(svg)
    assert len(points) == 3  # Aug, Oct, Nov: September has nothing to draw
    assert [x for x, _ in points] == sorted(x for x, _ in points)
    (_, aug), (_, oct_), (_, nov) = points
    assert aug > oct_ > nov  # SVG y grows downwards: 16% lowest, 93% highest
    # Aug stands alone before the gap; Oct-Nov is one line
    assert svg.count('class="line"') == 1
    assert all(f"{p}%</text>" in svg for p in ("16", "77", "93"))
    # shares sit on the 0-100 axis: y is linear in the share
    zero, hundred = _grid_y(svg, 0), _grid_y(svg, 100)
    assert abs(aug - (zero + (hundred - zero) * 0.16)) < 0.11
    assert abs(nov - (zero + (hundred - zero) * 0.93)) < 0.11


def test_the_target_line_follows_the_setting() -> None:
    agg = timeliness_agg()
    for target in (80.0, 65.0):
        report = compute_report(agg, MONTHS, TAX,
                                ReportDefinitions(timeliness_target_percent=target))
        svg = svg_line_chart(timeliness_charts(report)[0], publish=False)
        zero, hundred = _grid_y(svg, 0), _grid_y(svg, 100)
        assert abs(_target_y(svg) - (zero + (hundred - zero) * target / 100)) < 0.11
        assert f"Target {target:g}%" in svg
    args = argparse.Namespace(day_basis="working", legacy_mean_of_months=False,
                              service_level_seconds=None, service_level_variant=None,
                              short_abandon_seconds=None)
    served = {"service_level_seconds": 20.0, "variant": "offered",
              "short_abandon_seconds": 0.0, "period_combination": "ratio_of_sums"}
    assert definitions(args, served).timeliness_target_percent == 80.0
    assert definitions(args, served, Settings(timeliness_target_percent=70)
                       .timeliness_target_percent).timeliness_target_percent == 70.0


def test_a_published_chart_leaves_out_shares_of_1_to_5() -> None:
    agg = Aggregates()
    progressions(agg, "2019-08", "early_help", 2, 2)   # 4 judged: suppressed
    progressions(agg, "2019-09", "early_help", 6, 4)   # 10 judged: 60%
    report = compute_report(agg, MONTHS[:2], TAX, ReportDefinitions(), publish=True)
    svg = svg_line_chart(timeliness_charts(report)[0], publish=True)
    assert len(_points(svg)) == 1 and 'class="val">60%' in svg and 'class="val">50%' not in svg


def test_the_html_report_draws_both_charts_in_section_4() -> None:
    page = render(compute_report(timeliness_agg(), MONTHS, TAX, ReportDefinitions()), "html")
    section = page.split('<section id="commentary">', 1)[1].split("</section>", 1)[0]
    assert 'id="chart-progress_early_help"' in section
    assert 'id="chart-progress_childrens_social_care"' in section
    assert "<script" not in page


def _agg_with_contacts_only() -> Aggregates:
    agg = Aggregates()
    agg.apply([("contacts_received", ("2019-08", "phone", "police", "rfs"), None)] * 7, +1)
    return agg


def test_a_table_without_data_is_one_line_in_every_format() -> None:
    report = compute_report(_agg_with_contacts_only(), ["2019-08"], TAX, ReportDefinitions())
    line = "No data for Aug 2019."
    out = {fmt: render(report, fmt) for fmt in FORMATS}
    empty = "MAP enquiries by agency consulted"
    # text and Markdown: the title, then the line, no grid
    text = out["text"].split(empty + "\n", 1)[1]
    assert text.startswith(line + "\n")
    md = out["markdown"].split(f"### {empty}\n\n", 1)[1]
    assert md.startswith(line + "\n")
    # HTML: a paragraph instead of the table
    assert f"<caption>{empty}</caption>" not in out["html"]
    assert re.search(rf'<p class="no-data" id="no-data-map_by_agency"><strong>{empty}'
                     rf"</strong>: {re.escape(line)}</p>", out["html"])
    # CSV and JSON keep their figures for machines and say it once per table
    rows = list(csv.DictReader(io.StringIO(out["csv"])))
    said = {r["category"] for r in rows if r["figure"] == NO_DATA}
    assert "map_by_agency" in said and all(r["value"] == line for r in rows
                                           if r["figure"] == NO_DATA)
    tables = {t["key"]: t for s in json.loads(out["json"])["sections"] for t in s["tables"]}
    assert tables["map_by_agency"]["no_data"] == line
    assert set(said) == {k for k, t in tables.items() if t["no_data"]}


def test_a_table_with_data_keeps_its_grid() -> None:
    report = compute_report(_agg_with_contacts_only(), ["2019-08"], TAX, ReportDefinitions())
    html = render(report, "html")
    assert "<caption>Contacts into the service</caption>" in html
    assert 'id="no-data-contacts_received"' not in html
    text = render(report, "text").split("Contacts into the service\n", 1)[1]
    assert text.splitlines()[0].split() == ["Channel", "Aug", "2019", "Total"]
    tables = {t["key"]: t for s in json.loads(render(report, "json"))["sections"]
              for t in s["tables"]}
    assert tables["contacts_received"]["no_data"] is None
    # a percentage of a real denominator is data even when it is 0%
    agg = Aggregates()
    progressions(agg, "2019-08", "early_help", 0, 3)
    report = compute_report(agg, ["2019-08"], TAX, ReportDefinitions())
    assert "<caption>Progressions: timeliness and working days</caption>" in render(report,
                                                                                    "html")


def test_since_go_live_the_month_labels_thin_out_and_stay_apart() -> None:
    months = [f"{y}-{m:02d}" for y in (2018, 2019) for m in range(1, 13)]
    agg = Aggregates()
    for month in months:
        progressions(agg, month, "early_help", 8, 2)
    report = compute_report(agg, months, TAX, ReportDefinitions())
    svg = svg_line_chart(timeliness_charts(report)[0], publish=False)
    assert len(_points(svg)) == 24 and svg.count('class="line"') == 1
    xs = [float(x) for x in re.findall(r'<text x="([\d.]+)" y="\d+" text-anchor="middle" '
                                       r'class="lbl">[A-Z][a-z]{2} \d{4}<', svg)]
    assert xs[0] < xs[-1] and 6 <= len(xs) < 24
    assert min(b - a for a, b in zip(xs, xs[1:], strict=False)) >= 60
    assert re.search(r'width="(\d+)"', svg).group(1) == "640"  # type: ignore[union-attr]


def test_the_target_label_stays_clear_of_every_months_share() -> None:
    """A share on the target (80% in every month of a year) must not be written over the
    label "Target 80%": the label sits right of the last month's share and inside the
    chart. Text widths are estimated at 0.6 em a character (12 px shares, 11 px label)."""
    months = [f"2019-{m:02d}" for m in range(1, 13)]
    agg = Aggregates()
    for month in months:
        progressions(agg, month, "early_help", 8, 2)
    svg = svg_line_chart(timeliness_charts(compute_report(agg, months, TAX,
                                                          ReportDefinitions()))[0], False)
    shares = [float(x) for x in re.findall(r'<text x="([\d.]+)" y="[\d.]+" '
                                           r'text-anchor="middle" class="val">80%<', svg)]
    label = re.search(r'<text x="([\d.]+)" y="[\d.]+" class="tgt">(Target 80%)<', svg)
    assert len(shares) == 12 and label is not None
    start, text = float(label.group(1)), label.group(2)
    assert max(shares) + 0.6 * 12 * len("80%") / 2 < start
    assert start + 0.6 * 11 * len(text) <= 640
