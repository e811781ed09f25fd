"""The feedback log mapping (topics/mappings/feedback_log.toml): a sample imports, a
complaint's extension and response follow it, bad rows are reported by row number and
reason, and no free text is ever read into an event."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from stream.contract.taxonomy import load_taxonomy
from stream.upstream.importer import load_mapping, pseudonymise, read_rows, rows_to_events
from stream.upstream.producer import encode

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "topics" / "samples" / "feedback_log.csv"
MAPPING = load_mapping(ROOT / "topics" / "mappings" / "feedback_log.toml")
TAXONOMY = load_taxonomy()
KEY = bytes(range(32))
HEADER = ("Reference,Date received,From,Agency,Type,Received by,Extended on,Response sent,"
          "Summary\n")


def convert(path: Path):  # type: ignore[no-untyped-def]
    return list(rows_to_events(read_rows(path, MAPPING), MAPPING, key=KEY, taxonomy=TAXONOMY))


def test_the_sample_log_imports_as_feedback_received():
    with SAMPLE.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    results = convert(SAMPLE)
    assert [r.error for r in results if r.error] == []
    events = [e for r in results for e in r.events if e.event_type == "feedback.received"]  # type: ignore[attr-defined]
    assert len(events) == len(rows) == 30
    # the export's words counted by hand from the file, mapped to taxonomy codes
    want = Counter({"Parent": "parent_carer", "Carer": "parent_carer",
                    "Parent or carer": "parent_carer", "Child / young person": "young_person",
                    "Professional": "partner_agency", "Partner agency": "partner_agency",
                    "Internal": "staff"}[r["From"]] for r in rows)
    assert Counter(e.from_whom for e in events) == want  # type: ignore[attr-defined]
    for row, event in zip(rows, events, strict=True):
        assert event.feedback_key == pseudonymise(KEY, "feedback", row["Reference"])  # type: ignore[attr-defined]
        assert (event.agency is None) == (row["Agency"] == "")  # type: ignore[attr-defined]
        wire = encode(event)
        assert row["Reference"].encode() not in wire and row["Summary"].encode() not in wire
    agencies = {e.agency for e in events} - {None}  # type: ignore[attr-defined]
    assert agencies <= set(TAXONOMY.ordered("agency")) and "health_visiting" in agencies


def test_bad_rows_get_their_row_number_and_reason(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(HEADER
                    + "FB-1,02/09/2019 10:00,Parent,,Compliment,Email,,,kind words\n"
                    + "FB-2,03/09/2019 10:00,Parent,Police,Compliment,Email,,,x\n"
                    + "FB-3,04/09/2019 10:00,Neighbour,,Comment,Email,,,x\n"
                    + "FB-4,05/09/2019 10:00,Professional,,Complaint,Phone,,,x\n"
                    + ",06/09/2019 10:00,Parent,,Complaint,Email,,,x\n"
                    + "FB-6,31/09/2019 10:00,Parent,,Comment,Email,,,x\n"
                    + "FB-7,07/09/2019 10:00,Internal,,Praise,Email,,,x\n")
    results = convert(path)
    errors = {r.row: r.error for r in results if r.error}
    assert sorted(errors) == [3, 4, 5, 6, 7, 8]  # spreadsheet rows (header = row 1)
    assert errors[3] == "Agency: set for feedback not from a partner agency"
    assert errors[4].startswith("From: value not in [values.from_whom]")
    assert errors[5] == "Agency: empty for a partner agency's feedback"
    assert errors[6] == "Reference: empty"
    assert errors[7].startswith("Date received: not a date/time")
    assert errors[8].startswith("Type: value not in [values.kind]")
    assert sum(1 for r in results if r.events) == 1
    assert not any("FB-" in (e or "") for e in errors.values())


def test_a_complaints_extension_and_response_follow_its_receipt():
    with SAMPLE.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    results = convert(SAMPLE)
    for row, result in zip(rows, results, strict=True):
        types = [e.event_type for e in result.events]  # type: ignore[attr-defined]
        want = ["feedback.received"] + ["complaint.extended"] * bool(row["Extended on"]) \
            + ["complaint.responded"] * bool(row["Response sent"])
        assert types == want, row["Reference"]
        key = pseudonymise(KEY, "feedback", row["Reference"])
        assert {e.feedback_key for e in result.events} == {key}  # type: ignore[attr-defined]
        assert len({e.event_id for e in result.events}) == len(result.events)
    counted = Counter(t for r in results for t in (e.event_type for e in r.events))  # type: ignore[attr-defined]
    assert (counted["complaint.extended"], counted["complaint.responded"]) == (4, 6)


def test_complaint_dates_on_the_wrong_rows_are_rejected_by_row():
    results = convert(ROOT / "topics" / "samples" / "feedback_log_with_errors.csv")
    errors = {r.row: r.error for r in results if r.error}
    assert errors == {5: "Response sent: set for feedback that is not a complaint",
                      6: "Response sent: before Date received",
                      7: "Extended on: set for feedback that is not a complaint",
                      8: "Extended on: before Date received",
                      9: errors[9]}
    assert errors[9].startswith("Response sent: not a date/time")
    assert [r.row for r in results if r.events] == [2, 3, 4]
    assert not any("FB-" in (e or "") for e in errors.values())


def test_an_open_complaint_and_a_late_extension_are_kept(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(HEADER + "FB-1,02/09/2019 10:00,Parent,,Complaint,Email,,,x\n"
                    + "FB-2,02/09/2019 10:00,Parent,,Complaint,Email,30/09/2019,20/09/2019,x\n")
    first, second = convert(path)
    assert [e.event_type for e in first.events] == ["feedback.received"]  # type: ignore[attr-defined]
    assert [(e.event_type, e.occurred_at.day) for e in second.events] == [  # type: ignore[attr-defined]
        ("feedback.received", 2), ("complaint.extended", 30), ("complaint.responded", 20)]
