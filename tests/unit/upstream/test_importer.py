"""The backfill importer's pure parts: mapping, reading, row -> events, error reporting."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stream.contract.taxonomy import load_taxonomy
from stream.upstream.importer import (
    ROW_ERROR,
    ImportFormatError,
    ProgressBar,
    load_key,
    load_mapping,
    pseudonymise,
    read_rows,
    rows_to_events,
)
from stream.upstream.producer import encode

ROOT = Path(__file__).resolve().parents[3]
MAPPINGS = ROOT / "topics" / "mappings"
SAMPLES = ROOT / "topics" / "samples"
TAXONOMY = load_taxonomy()
KEY = bytes(range(32))
ANNEX = load_mapping(MAPPINGS / "annex_a_contacts.toml")
CDR = load_mapping(MAPPINGS / "telephony_cdr.toml")


def convert(path: Path, mapping, key: bytes = KEY):
    return list(rows_to_events(read_rows(path, mapping), mapping, key=key, taxonomy=TAXONOMY))


def sample_rows(name: str) -> list[dict[str, str]]:
    with (SAMPLES / name).open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write(tmp_path: Path, text: str, name: str = "export.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


ANNEX_HEADER = ("Child ID,Gender,Age,Date of contact,Contact source,Contact method,Outcome,"
                "Outcome date,Actual outcome")


# --- the shipped samples --------------------------------------------------------------------
def test_annex_a_sample_imports_into_the_expected_events():
    rows = sample_rows("annex_a_contacts.csv")
    results = convert(SAMPLES / "annex_a_contacts.csv", ANNEX)
    assert len(rows) == len(results) == 200
    assert [r.error for r in results if r.error] == []
    types = Counter(e.event_type for r in results for e in r.events)
    decided = sum(1 for r in rows if r["Outcome"])
    assert types == {"contact.received": 200, "contact.decided": decided}
    assert sum(types.values()) == 394
    first = results[0].events[0]
    assert first.source_system == "lcs" and first.team == "rfs"
    assert first.occurred_at.utcoffset() is not None


def test_telephony_sample_imports_into_the_expected_events():
    rows = sample_rows("telephony_cdr.csv")
    results = convert(SAMPLES / "telephony_cdr.csv", CDR)
    assert [r.error for r in results if r.error] == []
    types = Counter(e.event_type for r in results for e in r.events)
    answered = sum(1 for r in rows if r["Answered"])
    assert types == {"call.queued": 300, "call.answered": answered,
                     "call.abandoned": 300 - answered,
                     "call.ended": sum(1 for r in rows if r["Answered"] and r["Talk time (s)"])}
    assert sum(types.values()) == 891
    assert {e.queue for r in results for e in r.events} == {"rfs", "consultation"}


def test_times_are_local_wall_clock_in_london(tmp_path):
    text = ("Call ID,Queue,Offered,Answered,Abandoned,Wait (s),Talk time (s)\n"
            "A1,RFS,2019-07-01 09:00:00,2019-07-01 09:00:30,,,1:05\n"
            "A2,RFS,2019-12-02 09:00:00,,2019-12-02 09:00:07,7,\n")
    results = convert(write(tmp_path, text), CDR)
    summer, winter = results[0].events, results[1].events
    assert summer[0].occurred_at.astimezone(UTC).hour == 8  # BST
    assert winter[0].occurred_at.astimezone(UTC).hour == 9  # GMT
    assert summer[1].wait_seconds == 30.0  # computed from the times when empty
    assert summer[2].handle_seconds == 65.0  # mm:ss
    assert [e.event_type for e in winter] == ["call.queued", "call.abandoned"]


def test_reimport_gives_identical_event_ids():
    once = convert(SAMPLES / "annex_a_contacts.csv", ANNEX)
    twice = convert(SAMPLES / "annex_a_contacts.csv", ANNEX)
    assert [encode(e) for r in once for e in r.events] == \
        [encode(e) for r in twice for e in r.events]
    ids = [e.event_id for r in once for e in r.events]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("imp:annex_a_contacts:") for i in ids)
    calls = [e.event_id for r in convert(SAMPLES / "telephony_cdr.csv", CDR) for e in r.events]
    assert calls == [e.event_id for r in convert(SAMPLES / "telephony_cdr.csv", CDR)
                     for e in r.events]


def test_keys_are_keyed_hashes_without_the_raw_ids():
    rows = sample_rows("annex_a_contacts.csv")
    results = convert(SAMPLES / "annex_a_contacts.csv", ANNEX)
    received = results[0].events[0]
    assert received.child_key == pseudonymise(KEY, "child", rows[0]["Child ID"])
    assert len(received.contact_key) == 32
    other = convert(SAMPLES / "annex_a_contacts.csv", ANNEX, key=b"another key, 16+ bytes")
    assert other[0].events[0].child_key != received.child_key
    wire = b"".join(encode(e) for r in results for e in r.events)
    assert not any(r["Child ID"].encode() in wire for r in rows)


# --- bad rows and the error file ------------------------------------------------------------
def test_bad_rows_are_reported_and_do_not_stop_the_import():
    results = convert(SAMPLES / "annex_a_contacts_with_errors.csv", ANNEX)
    errors = {r.row: r.error for r in results if r.error}
    assert sorted(errors) == [4, 7, 10, 13, 16, 19]  # spreadsheet rows (header = row 1)
    assert "Date of contact: not a date/time in the format %d/%m/%Y %H:%M" in errors[4]
    assert errors[7].startswith("Outcome: value not in [values.outcome]")
    assert errors[10] == "Child ID: empty"
    assert errors[13] == "Outcome date: before Date of contact"
    assert errors[16] == "row has 10 fields, the header 9"
    assert errors[19] == "Outcome date: empty while Outcome is set"
    assert sum(1 for r in results if r.events) == 14
    calls = convert(SAMPLES / "telephony_cdr_with_errors.csv", CDR)
    call_errors = {r.row: r.error for r in calls if r.error}
    assert sorted(call_errors) == [3, 6, 9, 12, 15]
    assert call_errors[3] == "exactly one of Answered and Abandoned must be set"
    assert call_errors[12] == "Wait (s): not between 0 and 86400 seconds"
    assert call_errors[15].startswith("Queue: value not in")


class FakeProducer:
    """Stands in for EventProducer: import_file is tested without a broker."""

    sent: list = []

    def __init__(self, settings) -> None:
        pass

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        pass

    async def send(self, event) -> None:
        FakeProducer.sent.append(event)

    async def flush(self) -> None:
        pass


def test_import_file_writes_the_error_file_without_raw_identifiers(tmp_path, monkeypatch,
                                                                   capsys):
    import asyncio

    from stream.settings import Settings
    from stream.upstream import importer

    monkeypatch.setattr(importer, "EventProducer", FakeProducer)
    FakeProducer.sent = []
    key = tmp_path / "key"
    key.write_bytes(KEY)
    errors = tmp_path / "errors.csv"
    summary = asyncio.run(importer.import_file(
        Settings(), SAMPLES / "annex_a_contacts_with_errors.csv",
        MAPPINGS / "annex_a_contacts.toml", errors, key))
    assert (summary.rows_read, summary.rows_imported, summary.rows_rejected) == (20, 14, 6)
    assert summary.events_sent == len(FakeProducer.sent) == 28
    lines = list(csv.reader(errors.open(newline="")))
    assert lines[0] == ["row", "reason"]
    assert [int(line[0]) for line in lines[1:]] == [4, 7, 10, 13, 16, 19]
    assert all(line[1] for line in lines[1:])
    text = errors.read_text()
    raw_ids = {r["Child ID"] for r in sample_rows("annex_a_contacts_with_errors.csv")} - {""}
    assert not any(raw in text for raw in raw_ids)
    assert "20 rows in, 14 imported, 6 rejected" in capsys.readouterr().err
    # No rejected rows and no error file asked for: none is left behind.
    copy = tmp_path / "calls.csv"
    copy.write_bytes((SAMPLES / "telephony_cdr.csv").read_bytes())
    summary = asyncio.run(importer.import_file(Settings(), copy, MAPPINGS / "telephony_cdr.toml",
                                               None, key))
    assert summary.events_sent == 891 and summary.error_path is None
    assert not (tmp_path / "calls.csv.errors.csv").exists()


def test_identifier_values_are_never_quoted(tmp_path):
    secret = "SECRET-CHILD-77"
    text = (ANNEX_HEADER + "\n" + f"{secret},F,3,not a date,Police,Email,,,\n"
            f"{secret},F,3,01/10/2019 10:00,{secret},Email,,,\n"
            f"{secret},F,3,01/10/2019 10:00,Police,Email,{secret},01/10/2019 11:00,\n")
    results = convert(write(tmp_path, text), ANNEX)
    assert all(r.error for r in results)
    assert not any(secret in r.error for r in results)


# --- malformed files ------------------------------------------------------------------------
def test_wrong_delimiter_says_which_columns_and_which_delimiter(tmp_path):
    path = write(tmp_path, ANNEX_HEADER.replace(",", ";") + "\n1;F;3;01/10/2019 10:00;6;;;;\n")
    with pytest.raises(ImportFormatError) as err:
        read_rows(path, ANNEX)
    message = str(err.value)
    assert "missing columns 'Child ID', 'Date of contact'" in message
    assert "semicolon-delimited" in message and "expects comma" in message


def test_missing_columns_are_named(tmp_path):
    header = ANNEX_HEADER.replace(",Outcome date", "").replace("Contact source,", "")
    with pytest.raises(ImportFormatError, match="missing columns 'Contact source', "
                                                "'Outcome date' \\(header has 7 columns\\)"):
        read_rows(write(tmp_path, header + "\n"), ANNEX)


def test_not_utf8_gives_the_byte_offset_and_line(tmp_path):
    text = (ANNEX_HEADER + "\n1,F,3,01/10/2019 10:00,Police,Email,,,\n"
            "2,F,3,01/10/2019 10:00,Police,Email,Level 1,01/10/2019 10:05,Information\n"
            "3,Fé,3,01/10/2019 10:00,Police,Email,,,\n")
    path = write(tmp_path, text, encoding="latin-1")
    offset = text.encode("latin-1").index("é".encode("latin-1"))
    rows = read_rows(path, ANNEX)  # the header is fine: the error comes with line 4
    with pytest.raises(ImportFormatError) as err:
        list(rows)
    assert f"byte 0xe9 at byte offset {offset} (line 4)" in str(err.value)
    assert "not valid utf-8" in str(err.value)


def test_bad_dates_in_every_row_are_a_format_error(tmp_path):
    lines = [ANNEX_HEADER] + [f"{i},F,3,10/31/2019 10:00,Police,Email,,," for i in range(12)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ImportFormatError, match="none of the first 10 rows has a Date of "
                                                "contact in the format %d/%m/%Y %H:%M"):
        convert(path, ANNEX)


def test_row_structure_errors_and_blank_lines(tmp_path):
    path = write(tmp_path, ANNEX_HEADER + "\n\n1,F,3\n")
    rows = list(read_rows(path, ANNEX))
    assert rows == [(3, {ROW_ERROR: "row has 3 fields, the header 9"})]


def test_json_lines_exports(tmp_path):
    mapping = load_mapping(MAPPINGS / "telephony_cdr.toml")
    mapping = type(mapping)(**{**mapping.__dict__, "file_format": "jsonl"})
    text = ('{"Call ID": 17, "Queue": "RFS", "Offered": "2019-10-01T09:00:00",'
            ' "Answered": "2019-10-01T09:00:12", "Talk time (s)": 300}\n'
            "not json\n"
            '{"Call ID": "18", "Queue": "RFS", "Offered": "2019-10-01 09:01:00",'
            ' "Abandoned": "2019-10-01 09:01:40", "Answered": null}\n')
    results = convert(write(tmp_path, text, "calls.jsonl"), mapping)
    assert [len(r.events) for r in results] == [3, 0, 2]
    assert results[1].error == "not valid JSON" and results[1].row == 2
    with pytest.raises(ImportFormatError, match="JSON Lines"):
        read_rows(SAMPLES / "telephony_cdr.csv", mapping)


def test_future_and_ancient_times_are_rejected(tmp_path):
    text = ("Call ID,Queue,Offered,Answered,Abandoned,Wait (s),Talk time (s)\n"
            "A1,RFS,1999-12-31 09:00:00,1999-12-31 09:00:30,,,\n"
            "A2,RFS,2019-10-01 09:00:00,2019-10-01 09:00:30,,,\n")
    path = write(tmp_path, text)
    results = list(rows_to_events(read_rows(path, CDR), CDR, key=KEY, taxonomy=TAXONOMY,
                                  now=datetime(2019, 9, 1, tzinfo=UTC)))
    assert [r.error for r in results] == ["Offered: outside 2000 to now"] * 2


def test_mapping_and_key_checks(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nkind = "calls"\n[columns]\nchild_id = "Child"\n')
    with pytest.raises(ImportFormatError, match="not calls fields"):
        load_mapping(bad)
    key = tmp_path / "key"
    key.write_text("00112233445566778899aabbccddeeff\n")
    assert load_key(key) == bytes.fromhex("00112233445566778899aabbccddeeff")
    key.write_text("short")
    with pytest.raises(ImportFormatError, match="shorter than 16 bytes"):
        load_key(key)
    with pytest.raises(ImportFormatError, match="--key-file"):
        load_key(None)


def test_progress_bar_draws_only_on_a_terminal():
    quiet = io.StringIO()
    bar = ProgressBar(1000, "f.csv", quiet)
    bar.update(500)
    bar.close()
    assert quiet.getvalue() == ""

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    bar = ProgressBar(1000, "f.csv", tty)
    bar.rows = 50
    bar.update(500)
    bar.draw()
    bar.close()
    assert "50.0%" in tty.getvalue() and "rows/s" in tty.getvalue() and "ETA" in tty.getvalue()
