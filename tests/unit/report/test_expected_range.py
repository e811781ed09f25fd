"""The expected range (mean ± 2 population SD of the previous 12 months), worked by hand,
and the report marking the months outside it in every format."""

from __future__ import annotations

import csv
import io
import json

import pytest

from stream.contract.taxonomy import load_taxonomy
from stream.report import ReportDefinitions, compute_report, render
from stream.report.expected_range import LEGEND, band, judge, shift, window
from stream.state.aggregates import Aggregates

TAX = load_taxonomy()
#: 2018-08 .. 2019-07: the 12 months before Aug 2019
YEAR_BEFORE = [f"2018-{m:02d}" for m in range(8, 13)] + [f"2019-{m:02d}" for m in range(1, 8)]
#: six months of 8 and six of 12: mean 10, every deviation 2, so the population SD is
#: exactly 2 (the sample SD would be sqrt(48 / 11) = 2.09) and the band is 6 to 14
EIGHTS_AND_TWELVES = [8, 12] * 6


def test_the_band_is_the_mean_plus_or_minus_two_population_sds() -> None:
    b = band(EIGHTS_AND_TWELVES)
    assert (b.mean, b.sd, b.low, b.high) == (10.0, 2.0, 6.0, 14.0)


def test_a_count_on_an_edge_is_inside_and_one_beyond_is_outside() -> None:
    b = band(EIGHTS_AND_TWELVES)
    assert [b.verdict(n) for n in (5, 6, 10, 14, 15)] == [
        "below", "inside", "inside", "inside", "above"]


def test_the_lower_edge_is_clamped_at_zero() -> None:
    b = band([0, 10] * 6)  # mean 5, SD 5: 5 - 10 = -5, shown as 0
    assert (b.low, b.high) == (0.0, 15.0)
    assert b.verdict(0) == "inside"


def test_twelve_equal_months_make_a_band_of_one_value() -> None:
    b = band([7] * 12)
    assert (b.low, b.high) == (7.0, 7.0)
    assert [b.verdict(n) for n in (6, 7, 8)] == ["below", "inside", "above"]


def test_a_band_needs_exactly_twelve_months() -> None:
    with pytest.raises(ValueError, match="12 months"):
        band([1] * 11)


def test_the_window_is_the_twelve_months_before_across_a_year_end() -> None:
    assert window("2019-08") == YEAR_BEFORE
    assert shift("2019-01", -1) == "2018-12" and shift("2018-12", 1) == "2019-01"


def test_no_band_until_twelve_months_of_data_precede_the_month() -> None:
    series = dict(zip(YEAR_BEFORE, EIGHTS_AND_TWELVES, strict=True)) | {"2019-08": 15,
                                                                      "2019-09": 3}
    # data from 2018-08: Aug 2019 has its 12 months; with data only from 2018-09 it has 11
    found = judge(series, ["2019-08"], "2018-08")["2019-08"]
    assert found is not None and (found.count, found.verdict) == (15, "above")
    assert judge(series, ["2019-08"], "2018-09") == {"2019-08": None}
    assert judge(series, ["2019-08"], None) == {"2019-08": None}
    # Sep 2019's window is 2018-09 .. 2019-08: 11 of the months above and Aug's 15;
    # mean (5 x 8 + 6 x 12 + 15) / 12 = 127 / 12; 3 is below mean - 2 SD by hand:
    # squares of deviations sum to 5 x (8 - m)^2 + 6 x (12 - m)^2 + (15 - m)^2
    m = 127 / 12
    sd = ((5 * (8 - m) ** 2 + 6 * (12 - m) ** 2 + (15 - m) ** 2) / 12) ** 0.5
    sep = judge(series, ["2019-09"], "2018-08")["2019-09"]
    assert sep is not None and sep.verdict == "below"
    assert sep.band.mean == pytest.approx(m) and sep.band.sd == pytest.approx(sd)


def _history_agg(last: dict[str, int]) -> Aggregates:
    """Contacts received and MAP enquiries completed: 8 and 12 alternately over the
    year before Aug 2019, then ``last`` (month -> count) for both."""
    agg = Aggregates()
    for month, n in (*zip(YEAR_BEFORE, EIGHTS_AND_TWELVES, strict=True), *last.items()):
        agg.apply([("contacts_received", (month, "phone", "police", "rfs"), None)] * n, +1)
        agg.apply([("map_completed", (month, "level_3"), None)] * n, +1)
    return agg


def test_every_format_marks_a_month_above_its_range() -> None:
    agg = _history_agg({"2019-08": 15, "2019-09": 12})
    agg.apply([("emails_resolved", ("2019-08",), None)] * 40, +1)
    report = compute_report(agg, ["2019-08", "2019-09"], TAX, ReportDefinitions())
    text = render(report, "text")
    assert LEGEND in text
    contacts = text.split("Contacts into the service\n", 1)[1].splitlines()
    assert contacts[2].split()[-3:] == ["15↑", "12", "27"]  # Sep: mean 10.25, inside
    assert "| 15↑ | 12 | 27 |" in render(report, "markdown")
    rows = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    marks = {(r["figure"], r["month"], r["category"]): r["value"] for r in rows
             if r["figure"].startswith("expected_range")}
    assert marks[("expected_range", "2019-08", "contacts_received")] == "above"
    assert marks[("expected_range_low", "2019-08", "contacts_received")] == "6.0"
    assert marks[("expected_range_high", "2019-08", "contacts_received")] == "14.0"
    assert marks[("expected_range", "2019-09", "completed")] == "inside"
    # emails start in Aug 2019: the contacts' earlier months are no history of theirs
    assert ("expected_range", "2019-08", "emails_resolved") not in marks
    doc = json.loads(render(report, "json"))
    tables = {t["key"]: t for s in doc["sections"] for t in s["tables"]}
    row = tables["contacts_received"]["rows"][0]
    assert row["expected_range"][0] == {"verdict": "above", "low": 6.0, "high": 14.0,
                                        "mean": 10.0, "sd": 2.0}
    assert row["expected_range"][2] is None  # the Total is not judged
    html = render(report, "html")
    assert "<td>15↑</td>" in html
    chart = html.split('id="chart-map_by_month"', 1)[1].split("</svg>", 1)[0]
    assert chart.count('class="band"') == 2
    assert "Expected range 6.0 to 14.0" in chart


def test_without_a_years_history_nothing_is_marked_or_added() -> None:
    agg = Aggregates()
    agg.apply([("contacts_received", ("2019-08", "phone", "police", "rfs"), None)] * 7, +1)
    report = compute_report(agg, ["2019-08"], TAX, ReportDefinitions())
    for fmt in ("text", "markdown", "csv", "json", "html"):
        out = render(report, fmt)
        assert "expected_range" not in out and LEGEND not in out and 'class="band"' not in out


def test_a_published_report_marks_no_hidden_count() -> None:
    report = compute_report(_history_agg({"2019-08": 3}), ["2019-08"], TAX,
                            ReportDefinitions(), publish=True)
    text = render(report, "text").split("Contacts into the service\n", 1)[1]
    assert text.splitlines()[2].split()[-2:] == ["*", "*"]
    rows = list(csv.DictReader(io.StringIO(render(report, "csv"))))
    assert not [r for r in rows if r["category"] == "contacts_received"
                and r["figure"].startswith("expected_range")]
