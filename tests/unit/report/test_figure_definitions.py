"""docs/figures.md's "Figure definitions" table covers every figure, with every column filled.

The figures are enumerated from the product itself, never from a list kept here:

* the report's: the ``figure`` ids of its CSV (as analysts see them), from reports computed
  under both day bases over events generated for every family (tests/reportgen), folded
  by the worker's own processors;
* ``/metrics``: the families of a real exposition of the worker's registry (``create_app``,
  as the worker serves it), less the pipeline's own registry (``/metrics/pipeline``: the
  worker's health, not figures) and the three families that describe rather than count.

Ids are matched to the doc's rows by the "report ids" and "metrics" columns; ``<team>``
and ``<destination>`` there stand for any taxonomy code.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from stream.contract.decoder import FAMILIES, Decoder
from stream.contract.taxonomy import Taxonomy
from stream.report import ReportDefinitions, compute_report, render_csv
from stream.report.appendix import annotate
from stream.report.publication import DataAsAt
from stream.report.rates import Population
from stream.report.render import NO_DATA
from stream.report.running import compute_since
from stream.state.facts import FactContext
from stream.state.timeliness import OpenWork
from stream.worker.metrics import PipelineMetrics
from stream.worker.processor import CellState, FamilyProcessor
from tests.reportgen.generated import MONTHS, generate
from tests.reportgen.workdays import TOPICS

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "figures.md"
HEADER = ("figure", "report ids", "metrics", "event that counts it", "month it lands in",
          "numerator", "denominator", "rounding", "median, percentile", "settings")
#: in /metrics but not figures: what the worker owns, the definitions in force, and when
#: the timeliness states were evaluated
#: metrics that carry no figure: which partitions, which definitions, when judged, and the
#: months behind each expected range (the band's rows are the counts' own)
NOT_FIGURES = {"cspa_owned_partitions", "cspa_definition_info",
               "cspa_timeliness_evaluated_timestamp_seconds", "cspa_expected_range_window"}

EXPOSITION_SCRIPT = """
import json
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from stream.settings import Settings
from stream.worker.app import create_app

worker = create_app(Settings())
def names(registry):
    text = generate_latest(registry).decode()
    return {family.name for family in text_string_to_metric_families(text)}
print(json.dumps({"all": sorted(names(worker.registry)),
                  "pipeline": sorted(names(worker.pipeline))}))
"""


def doc_rows() -> list[dict[str, str]]:
    """The rows of the table under "## Figure definitions", by column name."""
    text = DOC.read_text()
    section = text.split("\n## Figure definitions\n", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("|")]
    split = [[c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines]
    assert tuple(split[0]) == HEADER, "the table's columns changed: update this test"
    assert all(set(c) <= set("-: ") for c in split[1]), "no separator row"
    return [dict(zip(HEADER, cells, strict=False)) | {"_width": str(len(cells))}
            for cells in split[2:]]


def report_ids_in_doc(rows: list[dict[str, str]]) -> dict[str, re.Pattern[str]]:
    out = {}
    for row in rows:
        for token in re.findall(r"`([^`]+)`", row["report ids"]):
            out[token] = re.compile(re.sub(r"<[a-z_]+>", "[a-z0-9_]+", token) + r"\Z")
    return out


def metrics_in_doc(rows: list[dict[str, str]]) -> set[str]:
    return {name for row in rows for name in re.findall(r"\bcspa_\w+", row["metrics"])}


@pytest.fixture(scope="module")
def report_ids(taxonomy: Taxonomy, ctx: FactContext) -> set[str]:
    """Every ``figure`` id of the CSV report, over generated events for every family."""
    state, work = CellState(), OpenWork(ctx.rules, ctx.calendar)
    metrics = PipelineMetrics(CollectorRegistry())
    processors = {topic: (FamilyProcessor(topic, Decoder(family, taxonomy), ctx, state,
                                          metrics, work), {})
                  for family, topic in TOPICS.items() if family in FAMILIES}
    for m in generate(contacts=300, emails=60, calls=120, enquiries=120, audits=60,
                      quality=True, partners=40).messages:
        processor, table = processors[m.topic]
        processor.process(m.key, m.value, 0, None, table, now=2e9)
    agg = state.current(set(state.parts))
    ids: set[str] = set()
    # a month 12 months after the data starts has an expected range (its CSV rows)
    for basis, months in (("working", MONTHS), ("calendar", MONTHS), ("working", ("2020-07",))):
        report = compute_report(agg, months, taxonomy, ReportDefinitions(day_basis=basis),
                                population=Population(250_000, 2019, "test"))  # section 7
        ids |= {r["figure"] for r in csv.DictReader(io.StringIO(render_csv(report)))
                if r["section"] != "definitions" and r["figure"] != NO_DATA}
    # the running totals (report --since): their CSV rows, as annotate adds them
    since = compute_since(agg, MONTHS[0], MONTHS[-1], taxonomy, (1.0, 5.0),
                          {"early_help_allocation": 2.0, "contact_decision": 1.0})
    added = annotate("", "csv", DataAsAt(datetime.now(UTC), {}), since, False)
    ids |= {row[1] for row in csv.reader(io.StringIO(added)) if row[0] == "since"}
    return ids


@pytest.fixture(scope="module")
def exposition() -> dict[str, set[str]]:
    # A child process: building the app touches process-wide prometheus_client settings.
    out = subprocess.run([sys.executable, "-c", EXPOSITION_SCRIPT], cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=120)
    return {k: set(v) for k, v in json.loads(out.stdout).items()}


def test_every_row_has_every_column_filled() -> None:
    rows = doc_rows()
    assert len(rows) >= 20
    for row in rows:
        assert row["_width"] == str(len(HEADER)), f"{row['figure']}: wrong number of columns"
        empty = [c for c in HEADER if not row[c]]
        assert not empty, f"{row['figure'] or row}: empty {empty}"


def test_every_report_figure_has_a_row_and_every_row_a_figure(report_ids: set[str]) -> None:
    documented = report_ids_in_doc(doc_rows())
    assert "map_days_calendar_distribution" in report_ids  # both bases were enumerated
    missing = sorted(i for i in report_ids if not any(p.match(i) for p in documented.values()))
    assert not missing, f"report figures with no row in docs/figures.md: {missing}"
    stale = sorted(t for t, p in documented.items() if not any(p.match(i) for i in report_ids))
    assert not stale, f"rows naming report ids the report no longer has: {stale}"


def test_every_metrics_figure_has_a_row_and_every_row_a_metric(
        exposition: dict[str, set[str]]) -> None:
    assert NOT_FIGURES <= exposition["all"], "a family left out here no longer exists"
    figures = exposition["all"] - exposition["pipeline"] - NOT_FIGURES
    assert {"cspa_contacts_received", "cspa_breaches", "cspa_calls_waiting"} <= figures
    documented = metrics_in_doc(doc_rows())
    missing = sorted(figures - documented)
    assert not missing, f"/metrics figures with no row in docs/figures.md: {missing}"
    stems = {re.sub(r"_(bucket|sum|count)\Z", "", n) for n in documented}
    stale = sorted(stems - figures - NOT_FIGURES)  # a row may name a helper metric
    assert not stale, f"rows naming metrics /metrics does not export: {stale}"
