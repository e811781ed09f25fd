"""Running totals (report --since) and publication snapshots, on hand-built cells.

The end-to-end checks against independently computed figures are in
tests/integration/test_report_accuracy.py (running totals, data as at) and
tests/integration/test_publication_live.py (a correction after publication).
"""

from __future__ import annotations

import argparse
import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from stream.contract.taxonomy import Taxonomy
from stream.report import publication
from stream.report.appendix import annotate
from stream.report.cli import add_arguments, parse_month
from stream.report.publication import DataAsAt, Snapshot
from stream.report.running import compute_since, map_key
from stream.settings import Settings
from stream.state.aggregates import Aggregates, Cell

RULES = {"early_help_allocation": 2.0, "contact_decision": 1.0}
AS_AT = DataAsAt(datetime(2026, 12, 3, 10, 15, 2, tzinfo=UTC),
                 {"cspa.contacts.v1": {0: 10, 1: 7}, "cspa.calls.v1": {0: 4}})


def _cells(values: dict[float, int]) -> Cell:
    cell = Cell()
    for value, n in values.items():
        for _ in range(n):
            cell.add(value, 1)
    return cell


def _agg() -> Aggregates:
    agg = Aggregates()
    # MAP working days: May (outside), June, July, November (after the last month)
    agg.cells[("map_enquiry_working_days", ("2019-05",))] = _cells({0.5: 9})
    agg.cells[("map_enquiry_working_days", ("2019-06",))] = _cells({0.5: 3, 1.0: 1, 2.5: 4})
    agg.cells[("map_enquiry_working_days", ("2019-07",))] = _cells({1.0001: 2, 6.0: 2})
    agg.cells[("map_enquiry_working_days", ("2019-11",))] = _cells({0.1: 50})
    agg.cells[("progressions", ("2019-06", "early_help", "true"))] = _cells({})
    agg.cells[("progressions", ("2019-06", "early_help", "true"))].count = 3
    agg.cells[("progressions", ("2019-07", "early_help", "false"))] = Cell(count=1)
    agg.cells[("progressions", ("2019-07", "early_help", "unknown"))] = Cell(count=5)
    agg.cells[("early_help_allocation_working_days", ("2019-07",))] = _cells({2.0: 1, 2.1: 1})
    return agg


def test_shares_pool_the_months_from_since_to_the_last(taxonomy: Taxonomy) -> None:
    since = compute_since(_agg(), "2019-06", "2019-10", taxonomy, (1.0, 5.0), RULES)
    assert (since.figure(map_key(1.0)).within, since.figure(map_key(1.0)).judged) == (4, 12)
    assert since.figure("since_map_within_5").within == 10  # 6.0 is over, 1.0001 within
    assert since.figure("since_progression_within_early_help").judged == 4  # unknown left out
    assert since.figure("since_progression_within_early_help").within == 3
    assert (since.figure("since_early_help_allocation_within").within,
            since.figure("since_early_help_allocation_within").judged) == (1, 2)
    assert since.figure("since_contact_decision_within").percent is None
    assert since.sentence() == ("Since June 2019, 33% of MAP enquiries were completed in "
                                "1 working day.")
    assert map_key(0.5) == "since_map_within_0_5"
    with pytest.raises(ValueError, match="after the report's last month"):
        compute_since(_agg(), "2019-12", "2019-10", taxonomy, (1.0,), RULES)


def test_every_format_carries_data_as_at_and_running_totals(taxonomy: Taxonomy) -> None:
    since = compute_since(_agg(), "2019-06", "2019-10", taxonomy, (1.0,), RULES)
    doc = orjson.loads(annotate('{"sections": []}', "json", AS_AT, since, False))
    assert doc["data_as_at"] == {"time": "2026-12-03T10:15:02Z", "offsets": {
        "cspa.calls.v1": {"0": 4}, "cspa.contacts.v1": {"0": 10, "1": 7}}}
    assert doc["since"]["figures"][0] == {"key": "since_map_within_1", "label": "MAP "
                                          "enquiries completed within 1 working day",
                                          "percent": 33.3333, "within": 4, "judged": 12}
    line = "cspa.calls.v1 [0] 4; cspa.contacts.v1 [0] 10 [1] 7"
    for fmt in ("text", "markdown"):
        assert line in annotate("report\n", fmt, AS_AT, since, False)
    page = annotate("<html><body></body></html>", "html", AS_AT, since, False)
    assert page.index('<section id="since">') < page.index("</body>") and line in page
    rows = list(csv.reader(io.StringIO(annotate("", "csv", AS_AT, since, False))))
    assert ["since", "since_map_within_1", "2019-06..2019-10", "judged", "12"] in rows
    assert ["definitions", "offset", "", "cspa.contacts.v1[1]", "7"] in rows
    published = orjson.loads(annotate('{"sections": []}', "json", AS_AT, since, True))
    allocation = published["since"]["figures"][-2]
    assert allocation["key"] == "since_early_help_allocation_within"
    assert allocation["percent"] == "*"  # 1 of 2: small counts hidden
    text = annotate("", "text", AS_AT, since, False)
    assert "33.33% (4 of 12)" in text and "Since June 2019, 33%" in text
    text = annotate("", "text", AS_AT, since, True)  # 4 within: hidden, and the sentence
    assert "33.33%" not in text and "Since June" not in text


def test_a_snapshot_round_trips_and_changes_count_the_events_since(tmp_path: Path) -> None:
    figures = {"rfs/rfs/calls/2019-08": 10, "map/map_summary/completed/2019-08": 3,
               "rfs/rfs/level_1/2019-08": "*"}
    snapshot = Snapshot(("2019-08",), {"day_basis": "working"}, None, AS_AT, figures)
    path = publication.save(snapshot, tmp_path / "pub")
    assert path.name == "20261203T101502000000Z.json"
    assert publication.load(path) == snapshot
    with pytest.raises(FileExistsError):  # never over an earlier publication
        publication.save(snapshot, tmp_path / "pub")
    later = DataAsAt(AS_AT.time, {"cspa.contacts.v1": {0: 12, 1: 7},
                                  "cspa.calls.v1": {0: 5}, "cspa.map-enquiries.v1": {0: 3}})
    now = {**figures, "rfs/rfs/calls/2019-08": 11, "rfs/rfs/level_1/2019-08": 6}
    topics = {"contacts": "cspa.contacts.v1", "calls": "cspa.calls.v1",
              "map_enquiries": "cspa.map-enquiries.v1"}
    found = publication.changes(snapshot, now, later, topics)
    assert [(c.figure, c.old, c.new, c.events) for c in found] == [
        ("rfs/rfs/calls/2019-08", 10, 11, 3), ("rfs/rfs/level_1/2019-08", "*", 6, 3)]
    assert publication.changes(snapshot, figures, later, topics) == []
    text = publication.changes_text(path, snapshot, later, found)
    assert "rfs/rfs/calls/2019-08" in text and "10 -> 11  (3 events)" in text
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="not a published-report snapshot"):
        publication.load(bad)


def test_settings_and_flags() -> None:
    assert Settings().map_within_days() == (1.0, 5.0)
    assert Settings(since_map_within_days="0.5,2").map_within_days() == (0.5, 1.0, 2.0)
    for bad in ("x", "0", "-1", "nan"):
        with pytest.raises(ValueError, match="CSPA_SINCE_MAP_WITHIN_DAYS"):
            Settings(since_map_within_days=bad)
    assert parse_month("2019-06") == "2019-06"
    for bad in ("2019-13", "2019-06..2019-07", "June"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_month(bad)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--since-published", "x.json"])
    assert args.months is None and args.since_published == Path("x.json")
