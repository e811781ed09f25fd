"""A mapping's "recorded at" column: each version of a row is its own event (issue 25, 5)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from stream.contract.taxonomy import load_taxonomy
from stream.upstream.importer import load_mapping, read_rows, rows_to_events

ROOT = Path(__file__).resolve().parents[3]
KEY = bytes(range(32))
LONDON = ZoneInfo("Europe/London")
HEADER = ("Child ID,Date of contact,Contact source,Contact method,Outcome,Outcome date,"
          "Actual outcome,Last modified\n")


def mapping(tmp_path: Path) -> Path:
    text = (ROOT / "topics" / "mappings" / "annex_a_contacts.toml").read_text().replace(
        "[columns]\n", '[columns]\nrecorded_at = "Last modified"\n')
    path = tmp_path / "versions.toml"
    path.write_text(text)
    return path


def events(tmp_path: Path, rows: str):
    (tmp_path / "export.csv").write_text(HEADER + rows)
    m = load_mapping(mapping(tmp_path))
    return list(rows_to_events(read_rows(tmp_path / "export.csv", m), m, key=KEY,
                               taxonomy=load_taxonomy()))


FIRST = "972732,04/11/2019 09:37,Police,Email,Level 1,04/11/2019 15:15,Information,"


def test_the_column_becomes_recorded_at_and_part_of_the_event_ids(tmp_path):
    v1 = events(tmp_path, FIRST + "04/11/2019 15:20\n")[0].events
    again = events(tmp_path, FIRST + "04/11/2019 15:20\n")[0].events
    v2 = events(tmp_path, FIRST.replace("Level 1", "MAP") + "07/11/2019 14:00\n")[0].events
    assert [e.recorded_at for e in v1] == [datetime(2019, 11, 4, 15, 20, tzinfo=LONDON)] * 2
    assert [e.event_id for e in again] == [e.event_id for e in v1]
    assert not {e.event_id for e in v2} & {e.event_id for e in v1}
    assert {e.key for e in v2} == {e.key for e in v1}  # one case, two versions
    assert v2[1].outcome == "map"  # type: ignore[attr-defined]


def test_without_the_column_the_ids_are_as_before(tmp_path):
    with_empty = events(tmp_path, FIRST + "\n")[0].events
    assert [e.recorded_at for e in with_empty] == [None, None]
    plain = load_mapping(ROOT / "topics" / "mappings" / "annex_a_contacts.toml")
    (tmp_path / "plain.csv").write_text(HEADER + FIRST + "\n")
    before = next(iter(rows_to_events(read_rows(tmp_path / "plain.csv", plain), plain,
                                      key=KEY, taxonomy=load_taxonomy()))).events
    assert [e.event_id.split(":")[-1] for e in with_empty] == [
        e.event_id.split(":")[-1] for e in before]


def test_a_version_recorded_before_its_row_happened_is_rejected(tmp_path):
    result = events(tmp_path, FIRST + "04/11/2019 12:00\n")[0]
    assert result.error == "Last modified: before the time of contact.decided"
