"""Section 7, rates per 10,000 children: every rate worked out by hand in the comments.

Population 270,000 children aged 0-17, so one child in the month is 10,000 / 270,000 =
0.037037 per 10,000, and 27 children are exactly 1.0 per 10,000. Two months:

* contacts: Aug 500 + 40 = 540 (20.0), Sep 270 (10.0); annualised (540 + 270) / 27 = 30.0
  per 10,000 over 2 months, x 12 / 2 = 180.0.
* referrals (progressions to children's social care, any timeliness): Aug 27 within +
  27 late = 54 (2.0), Sep 0 (0.0); annualised 2.0 x 6 = 12.0. The 100 progressions to
  early help are no referrals.
* MAP enquiries completed: Aug 0 (0.0), Sep 135 (5.0); annualised 5.0 x 6 = 30.0.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from stream.contract.taxonomy import load_taxonomy
from stream.report import ReportDefinitions, compute_report, render
from stream.report.rates import (
    NOT_PUBLISHED,
    UNSET_LINE,
    National,
    Population,
    annualised,
    load_national,
    per_children,
)
from stream.settings import Settings
from stream.state.aggregates import Aggregates, Cell

TAX = load_taxonomy()
MONTHS = ("2019-08", "2019-09")
SURREYISH = Population(270_000, 2019, "a test figure")


def _agg(cells: dict[tuple[str, tuple[str, ...]], int]) -> Aggregates:
    agg = Aggregates()
    for key, n in cells.items():
        agg.cells[key] = Cell(count=n)
    return agg


AGG = _agg({
    ("contacts_received", ("2019-08", "phone", "police", "team_a")): 500,
    ("contacts_received", ("2019-08", "email", "school", "team_a")): 40,
    ("contacts_received", ("2019-09", "phone", "police", "team_a")): 270,
    ("contacts_received", ("2019-10", "phone", "police", "team_a")): 999,  # outside
    ("progressions", ("2019-08", "childrens_social_care", "true")): 27,
    ("progressions", ("2019-08", "childrens_social_care", "false")): 27,
    ("progressions", ("2019-08", "early_help", "true")): 100,
    ("map_completed", ("2019-09", "level_2")): 135,
})


def _report(population: Population | None = SURREYISH, *, publish: bool = False,
            agg: Aggregates = AGG, national: dict[str, National] | None = None):  # type: ignore[no-untyped-def]
    return compute_report(agg, MONTHS, TAX, ReportDefinitions(), publish=publish,
                          population=population, national=national)


def _rates(doc: dict) -> dict[str, list[object]]:  # type: ignore[type-arg]
    section = next(s for s in doc["sections"] if s["key"] == "rates")
    (table,) = section["tables"]
    assert [c["key"] for c in table["columns"]] == [*MONTHS, "annualised", "england"]
    return {r["key"]: r["values"] for r in table["rows"]}


def test_the_formulas() -> None:
    assert per_children(27, 270_000) == 1.0
    assert annualised([27, 54, 81], 270_000) == pytest.approx(24.0)  # 6.0 in 3 months x 4
    assert annualised([27] * 12, 270_000) == pytest.approx(12.0)  # a year: its own rate


def test_rates_per_month_and_annualised() -> None:
    rows = _rates(orjson.loads(render(_report(), "json")))
    assert rows["contacts_rate"][:3] == pytest.approx([20.0, 10.0, 180.0])
    assert rows["referrals_rate"][:3] == pytest.approx([2.0, 0.0, 12.0])
    assert rows["map_enquiries_rate"][:3] == pytest.approx([0.0, 5.0, 30.0])
    # the shipped national rates: England publishes a referrals rate only (N/A the others)
    assert {k: v[3] for k, v in rows.items()} == {**dict.fromkeys(rows, "N/A"),
                                                  "referrals_rate": 552.5}


def test_every_rate_prints_its_population_year_and_source_and_england() -> None:
    text = render(_report(), "text")
    assert "7. Rates per 10,000 children" in text
    base = "base: 270,000 children aged 0-17 (2019; source: a test figure)"
    for label in ("Contacts received", "Referrals", "MAP enquiries completed", "Re-referrals"):
        line = next(x for x in text.splitlines() if x.startswith(label + " ")
                    and "per 10,000 children:" in x)
        assert base in line, line
    assert "contacts are not collected in the DfE children in need census" in text
    assert "Re-referrals per 10,000 children count only contacts naming a child" in text
    assert UNSET_LINE not in text
    # the table: 1 dp in text
    row = next(x for x in text.splitlines() if x.startswith("Contacts received per")
               and "base:" not in x)
    assert row.split()[-4:] == ["20.0", "10.0", "180.0", "N/A"]


@pytest.mark.parametrize("fmt", ["text", "markdown", "csv", "json", "html"])
def test_every_format_has_the_section_or_says_how_to_set_it(fmt: str) -> None:
    shown, unset = render(_report(), fmt), render(_report(None), fmt)
    assert "270,000 children aged 0-17" in shown or fmt == "csv"
    assert "referrals_rate" in shown or fmt in ("text", "markdown", "html")
    assert "CSPA_CHILD_POPULATION" in unset
    assert "referrals_rate" not in unset and "Rates per 10,000 children aged" not in unset


def test_csv_rows() -> None:
    rows = list(csv.DictReader(io.StringIO(render(_report(), "csv"))))
    got = {(r["figure"], r["month"]): r["value"] for r in rows if r["section"] == "rates"}
    assert float(got[("referrals_rate", "annualised")]) == pytest.approx(12.0)
    assert float(got[("contacts_rate", "2019-08")]) == pytest.approx(20.0)
    base = {r["figure"]: r["value"] for r in rows if r["section"] == "definitions"}
    assert (base["child_population"], base["child_population_year"],
            base["child_population_source"]) == ("270000", "2019", "a test figure")
    assert got[("referrals_rate", "england")] == "552.5"
    assert got[("map_enquiries_rate", "england")] == "N/A"


def test_a_published_rate_prints_beside_ours_with_its_year_and_source() -> None:
    national = {"referrals": National(512.5, "2024", "somewhere official")}
    doc = orjson.loads(render(_report(national=national), "json"))
    assert _rates(doc)["referrals_rate"][3] == 512.5
    notes = next(s["notes"] for s in doc["sections"] if s["key"] == "rates")
    assert any("England: 512.5 per 10,000 children (2024; source: somewhere official)" in n
               for n in notes)
    assert any("MAP enquiries completed per 10,000 children: base" in n and NOT_PUBLISHED in n
               for n in notes)  # a figure the file does not name


def test_publish_hides_a_rate_made_of_1_to_5() -> None:
    # Sep: 3 referrals -> 3 x 10,000 / 270,000 = 0.1111 per 10,000: it would tell the 3
    agg = _agg({**{key: cell.count for key, cell in AGG.cells.items()},
                ("progressions", ("2019-09", "childrens_social_care", "true")): 3})
    rows = _rates(orjson.loads(render(_report(publish=True, agg=agg), "json")))
    assert rows["referrals_rate"][1] == "*"
    # Aug 54 + Sep 3 = 57: the annualised 57 / 27 x 6 = 12.6667 less Aug's 12.0 gives Sep
    assert rows["referrals_rate"][2] == "*"
    assert rows["contacts_rate"][1:3] == pytest.approx([10.0, 180.0])  # no small month
    unpublished = _rates(orjson.loads(render(_report(agg=agg), "json")))
    # 4 dp in JSON: 3 / 27 = 0.1111, 57 / 27 x 6 = 12.6667
    assert unpublished["referrals_rate"][1:3] == [0.1111, 12.6667]


def test_national_rates_file(tmp_path: Path) -> None:
    shipped = load_national()
    assert set(shipped) == {"contacts", "referrals", "map_enquiries", "re_referrals"}
    # only the referrals rate is published (with its year and source); no invented figure
    assert {k: n.rate for k, n in shipped.items() if n.rate is not None} == {"referrals": 552.5}
    assert shipped["referrals"].year and "Shropshire" in shipped["referrals"].source
    path = tmp_path / "n.toml"
    path.write_text('[referrals]\nrate = 500.0\nyear = "2024"\n')
    with pytest.raises(ValueError, match="without its year and source"):
        load_national(path)


def test_the_population_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Population.of(Settings()) is None
    monkeypatch.setenv("CSPA_CHILD_POPULATION", "270000")
    with pytest.raises(ValidationError, match="CSPA_CHILD_POPULATION_YEAR"):
        Settings()
    monkeypatch.setenv("CSPA_CHILD_POPULATION_YEAR", "2019")
    monkeypatch.setenv("CSPA_CHILD_POPULATION_SOURCE", "ONS")
    assert Population.of(Settings()) == Population(270_000, 2019, "ONS")
    monkeypatch.setenv("CSPA_CHILD_POPULATION", "0")
    with pytest.raises(ValidationError):
        Settings()
