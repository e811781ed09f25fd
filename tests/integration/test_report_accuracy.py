"""The committee report, end to end, against figures computed independently.

Random but fully known events for every family (tests/reportgen/: Jul-Nov 2019,
weekends, the August bank holiday, late backfills, re-deliveries, corrections,
completions before openings, invalid messages) go through the real broker into a real
worker; ``python -m stream report`` (a subprocess) must then print every figure exactly
as tests/reportgen/ computes it without the project's code.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.contract.topics import event_families, load_topics
from tests import reportgen as rg
from tests.integration.harness import total
from tests.integration.reporting import Pipeline, pipeline

pytestmark = pytest.mark.integration

MONTHS = "2019-07..2019-11"


@dataclass
class Loaded:
    p: Pipeline
    data: rg.Dataset
    facts: rg.Facts
    seconds: float


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    data = rg.generate(seed=2019, feedback=True, complaints=60, partners=120)
    with pipeline(tmp_path_factory.mktemp("report-accuracy")) as p:
        seconds = p.send(data.messages)
        yield Loaded(p, data, rg.facts_of(data), seconds)


def test_data_has_the_awkward_cases(loaded: Loaded) -> None:
    """The generator really produced what the comparison is meant to cover."""
    notes, f = loaded.data.notes, loaded.facts
    assert notes["late_cases"] > 50 and notes["reordered_cases"] > 100
    assert loaded.data.bad == 6
    assert len(loaded.data.messages) > len({m.value for m in loaded.data.messages})  # dups
    assert not rg.is_working(date(2019, 8, 26))  # the August bank holiday (subdiv ENG)
    for what, start, end, wd, cd in rg.crafted_checks():
        assert rg.working_days(start, end) == pytest.approx(wd, abs=1e-9), what
        assert rg.calendar_days(start, end) == pytest.approx(cd, abs=1e-9), what
    months = {m for m, *_ in f.decided}
    assert {"2019-06", "2019-12"} & months, "some decisions fall outside the report"
    assert any(p[2] for p in f.progressions) and not all(p[2] for p in f.progressions)
    assert any(c[1] for c in f.complaints) and not all(c[1] for c in f.complaints)
    late = [r[3] for r in f.partner_responses]  # section 9: answers late and in time, open
    assert any(late) and not all(late) and f.partner_open
    # section 8: repeats and first contacts, re-referrals, and contacts naming no child
    assert any(c[2] for c in f.child_contacts) and not all(c[2] for c in f.child_contacts)
    assert any(r[2] for r in f.child_referrals) and f.unkeyed_contacts
    samples = loaded.p.worker.samples()
    assert total(samples, "cspa_events_rejected_total") == loaded.data.bad
    assert total(samples, "cspa_events_duplicate_total") > 0


def test_json_report_equals_the_independent_figures(loaded: Loaded) -> None:
    doc = loaded.p.report_json(MONTHS)
    assert doc["months"] == list(rg.MONTHS)
    assert doc["definitions"]["service_level_variant"] == "offered"
    expected = rg.expected_report(loaded.facts, rg.MONTHS)
    assert len(expected) > 800
    assert rg.compare(doc, expected) == []
    assert {s["key"]: s["notes"] for s in doc["sections"]} == rg.expected_notes(expected)
    flat = rg.flatten(doc)
    # A few figures by name, as a reader checks them.
    assert flat[("rfs", "ot", "2019-07")] == "N/A" and flat[("rfs", "ot", "2019-09")] == "N/A"
    assert flat[("rfs", "lado", "2019-08")] == "N/A"
    assert isinstance(flat[("rfs", "lado", "2019-09")], int)


def test_a_figure_off_by_one_is_caught(loaded: Loaded) -> None:
    """The comparison fails when the expectation is one contact short, or one cell off."""
    doc = loaded.p.report_json(MONTHS)
    decisions: dict[str, list[dict[str, Any]]] = {}
    for e in loaded.data.events():
        if e["event_type"] == "contact.decided":
            decisions.setdefault(e["contact_key"], []).append(e)
    gone, outcome = next(
        (k, evs[0]["outcome"]) for k, evs in decisions.items()
        if len({e["event_id"] for e in evs}) == 1
        and rg.month_of(datetime.fromisoformat(evs[0]["occurred_at"])) == "2019-09")
    short = rg.expected_report(rg.facts_of(loaded.data.without(gone)), rg.MONTHS)
    problems = rg.compare(doc, short)
    assert problems, "one contact fewer must not pass"
    assert any(p.startswith(str(("rfs", outcome, "2019-09"))) for p in problems), problems
    assert any(p.startswith(str(("rfs", outcome, "total"))) for p in problems), problems

    expected = rg.expected_report(loaded.facts, rg.MONTHS)
    for key, change in ((("rfs", "calls", "2019-08"), 1),
                        (("rfs", "service_level", "2019-08"), 0.01),
                        (("map_days_working", "map_days_average", "total"), 0.1),
                        (("contact_completion_average", "police", "information", "count"), -1),
                        (("audits_ehh", "2019-10", "good"), 1)):
        fig = expected[key]
        assert isinstance(fig.value, (int, float))
        wrong = dict(expected)
        wrong[key] = replace(fig, value=fig.value + change)
        assert [p.split(":")[0] for p in rg.compare(doc, wrong)] == [str(key)], key
    na = dict(expected)
    na[("rfs", "ot", "2019-08")] = rg.Fig(0)  # 0 is not N/A
    assert len(rg.compare(doc, na)) == 1


@pytest.mark.parametrize(("flags", "defs"), [
    (("--day-basis", "calendar", "--legacy-mean-of-months",
      "--service-level-variant", "offered_less_short_abandons", "--short-abandon-seconds", "5"),
     rg.Defs(variant="offered_less_short_abandons", short_abandon_seconds=5.0,
             combination="mean_of_months", basis="calendar")),
    (("--service-level-variant", "answered", "--service-level-seconds", "30",
      "--legacy-mean-of-months"),
     rg.Defs(service_level_seconds=30.0, variant="answered", combination="mean_of_months")),
], ids=["calendar-legacy-short-abandons", "answered-30s-mean-of-months"])
def test_other_definitions(loaded: Loaded, flags: tuple[str, ...], defs: rg.Defs) -> None:
    """Definitions set for one report by its flags (the worker runs with the defaults)."""
    doc = loaded.p.report_json(MONTHS, *flags)
    assert doc["definitions"]["day_basis"] == defs.basis
    assert doc["definitions"]["period_combination"] == defs.combination
    expected = rg.expected_report(loaded.facts, rg.MONTHS, defs)
    assert rg.compare(doc, expected) == []
    notes = {s["key"]: s["notes"] for s in doc["sections"]}
    assert notes == rg.expected_notes(expected, defs.basis)


def test_a_shorter_range_pools_only_its_months(loaded: Loaded) -> None:
    months = ("2019-08", "2019-09")
    doc = loaded.p.report_json("2019-08..2019-09")
    assert rg.compare(doc, rg.expected_report(loaded.facts, months)) == []


def test_html_report(loaded: Loaded, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    loaded.p.report(MONTHS, "html", "--output", str(out))
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    charts = ("map_by_month", "map_agencies", "map_by_agency", "map_by_outcome",
              "map_days_working", "map_days_calendar")
    for chart in charts:
        figure = re.search(rf'<figure id="chart-{chart}">(.*?)</figure>', page, re.S)
        assert figure is not None and "<svg" in figure.group(1), chart
    # The timeliness charts: one point per month with progressions judged, labelled with
    # the independently computed share within timescale (whole %).
    expected = rg.expected_report(loaded.facts, rg.MONTHS)
    for dest in ("early_help", "childrens_social_care"):
        figure = re.search(rf'<figure id="chart-progress_{dest}">(.*?)</figure>', page, re.S)
        assert figure is not None, dest
        shares = (expected[("progressions", f"within_{dest}", m)].value for m in rg.MONTHS)
        want = [f"{float(share):.0f}" for share in shares if share is not None]
        assert want and re.findall(r'class="val">(\d+)%<', figure.group(1)) == want, dest
    assert page.count("<svg") == len(charts) + 2
    assert "<script" not in page and "http" not in page
    # The RFS table's calls row, as printed on the page.
    calls = [str(expected[("rfs", "calls", c)].value) for c in (*rg.MONTHS, "total")]
    assert "<tr><th>Calls</th>" + "".join(f"<td>{n}</td>" for n in calls) + "</tr>" in page


def _csv_keys(doc: Any) -> dict[tuple[str, str, str, str], str]:
    """What the CSV must hold, derived from the JSON report's layout."""
    out: dict[tuple[str, str, str, str], str] = {}
    for section in doc["sections"]:
        for t in section["tables"]:
            cols = [c["key"] for c in t["columns"]]
            for row in t["rows"]:
                for i, col in enumerate(cols):
                    if t["month_axis"] == "columns":
                        fig, month, cat = row["figure"] or row["key"], col, (
                            row["key"] if row["figure"] else "")
                    elif t["month_axis"] == "rows":
                        fig, month, cat = t["key"], row["key"], col
                    else:
                        fig, month, cat = t["key"], "total", f"{row['key']}/{col}"
                    values = [(fig, row["values"][i])]
                    if "counts" in row:
                        values.append((fig + "_count", row["counts"][i]))
                    for name, value in values:
                        key = (section["key"], name, month, cat)
                        assert key not in out, key
                        out[key] = "" if value is None else str(value)
            if t["no_data"]:
                out[(section["key"], "no_data", "", t["key"])] = t["no_data"]
    return out


def test_csv_report_parses_and_agrees(loaded: Loaded) -> None:
    text = loaded.p.report(MONTHS, "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["section", "figure", "month", "category", "value"]
    definitions = {r["figure"]: r["value"] for r in rows if r["section"] == "definitions"}
    assert definitions["service_level_variant"] == "offered"
    assert definitions["months"] == " ".join(rg.MONTHS)
    got: dict[tuple[str, str, str, str], str] = {}
    for r in rows:
        if r["section"] != "definitions":
            key = (r["section"], r["figure"], r["month"], r["category"])
            assert key not in got, f"CSV row {key} twice"
            got[key] = r["value"]
    doc = loaded.p.report_json(MONTHS)
    assert got == _csv_keys(doc)
    expected = rg.expected_report(loaded.facts, rg.MONTHS)
    assert got[("rfs", "calls", "total", "")] == str(expected[("rfs", "calls", "total")].value)


def test_publish_suppresses_1_to_5(loaded: Loaded) -> None:
    doc = loaded.p.report_json(MONTHS, "--publish")
    hidden = rg.published(rg.expected_report(loaded.facts, rg.MONTHS))
    assert sum(f.value == "*" for f in hidden.values()) > 50
    # Secondary suppression hides more: there the expectation is "*" too; every figure
    # shown is still exactly the expected one, and every count of 1-5 is hidden.
    got = rg.flatten(doc)
    secondary = {k for k, f in hidden.items() if f.value != "*" and got.get(k) == "*"}
    assert secondary
    assert rg.compare(doc, {k: replace(f, value="*") if k in secondary else f
                            for k, f in hidden.items()}) == []
    assert doc["suppression"] == "Suppressed: counts of 1-5"
    assert doc["secondary_suppression"].startswith("Secondary suppression")
    text = loaded.p.report(MONTHS, "text", "--publish")
    assert "Suppressed: counts of 1-5" in text
    plain = orjson.loads(loaded.p.report(MONTHS, "json"))
    assert "*" not in orjson.dumps(plain["sections"]).decode()


def test_running_totals_since_a_month(loaded: Loaded) -> None:
    """``--since 2019-06`` on a Sep-Oct report: shares pooled over Jun-Oct, not the
    report's months, equal to the shares computed from the events by hand."""
    doc = loaded.p.report_json("2019-09..2019-10", "--since", "2019-06")
    since = doc["since"]
    assert (since["first"], since["last"]) == ("2019-06", "2019-10")
    expected = rg.expected_since(loaded.facts, "2019-06", "2019-10")
    assert rg.compare_since(since, expected) == []
    assert expected != rg.expected_since(loaded.facts, "2019-09", "2019-10")  # range matters
    assert all(judged > 20 for _, judged in expected.values()), expected
    within, judged = expected["since_map_within_1"]
    assert since["sentence"] == (f"Since June 2019, {100 * within / judged:.0f}% of MAP "
                                 "enquiries were completed in 1 working day.")
    assert rg.compare(doc, rg.expected_report(loaded.facts, ("2019-09", "2019-10"))) == []
    text = loaded.p.report("2019-09..2019-10", "text", "--since", "2019-06")
    assert since["sentence"] in text and "Running totals since Jun 2019 to Oct 2019" in text
    assert loaded.p.report_json("2019-09..2019-10")["since"] is None


def test_every_rendering_states_its_data_as_at(loaded: Loaded, tmp_path: Path) -> None:
    """The offsets the figures reflect: every message sent (valid, duplicate or invalid)
    lies before them, so per topic they sum to the messages sent to it (0 for a topic sent
    nothing)."""
    sent = {spec.name: 0 for spec in event_families(load_topics()).values()}
    for m in loaded.data.messages:
        sent[m.topic] = sent.get(m.topic, 0) + 1
    as_at = loaded.p.report_json(MONTHS)["data_as_at"]
    # (the repartition topic's offsets count the worker's own hops, not messages sent)
    assert {t: sum(ps.values()) for t, ps in as_at["offsets"].items() if t in sent} == sent
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", as_at["time"])
    out = tmp_path / "report.html"
    loaded.p.report(MONTHS, "html", "--output", str(out))
    pages = {fmt: loaded.p.report(MONTHS, fmt) for fmt in ("text", "markdown")}
    pages["html"] = out.read_text(encoding="utf-8")
    for fmt, page in pages.items():
        assert "Data as at 20" in page, fmt
        for topic, partitions in as_at["offsets"].items():
            assert f"{topic} " + " ".join(f"[{p}] {o}" for p, o in partitions.items()) in page
    rows = list(csv.DictReader(io.StringIO(loaded.p.report(MONTHS, "csv"))))
    offsets = {r["category"]: int(r["value"]) for r in rows if r["figure"] == "offset"
               and r["category"].split("[")[0] in sent}
    assert sum(offsets.values()) == sum(sent.values())
    assert [r["figure"] for r in rows if r["section"] != "definitions"].count("offset") == 0


def test_rates_per_10000_children(loaded: Loaded) -> None:
    """Section 7 with a child population set: every rate as the facts give it, the base
    printed under every rate; the other sections unchanged."""
    from tests.reportgen.rates import expected_rates

    base = {"CSPA_CHILD_POPULATION": "259000", "CSPA_CHILD_POPULATION_YEAR": "2016",
            "CSPA_CHILD_POPULATION_SOURCE": "a test source"}
    doc = loaded.p.report_json(MONTHS, **base)
    rates = expected_rates(loaded.facts, rg.MONTHS, 259_000)
    assert rates[("rates", "referrals_rate", "annualised")].value > 0  # there are some
    assert rg.compare(doc, {**rg.expected_report(loaded.facts, rg.MONTHS), **rates}) == []
    notes = next(s["notes"] for s in doc["sections"] if s["key"] == "rates")
    lines = [n for n in notes if "per 10,000 children: base:" in n]
    assert len(lines) == 4 and all(  # contacts, referrals, MAP enquiries, re-referrals
        "259,000 children aged 0-17 (2016; source: a test source)" in n for n in lines)
    assert not any("CSPA_CHILD_POPULATION" in s for s in doc["statements"])
    unset = loaded.p.report_json(MONTHS)
    assert "rates" not in {s["key"] for s in unset["sections"]}
    assert any("CSPA_CHILD_POPULATION" in s for s in unset["statements"])
