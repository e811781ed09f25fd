"""The QA mappings (topics/mappings/audit_log.toml, learning_reviews.toml, dip_samples.toml,
staff_roster.toml): the samples import into the audits topic's events, an advisor's staff
number gives one key in the roster and the audit log, several spells of one advisor fold
into the record the contract describes, and bad rows are reported by row number and reason
without an identifier."""

from __future__ import annotations

import csv
import itertools
from collections import Counter
from pathlib import Path

import pytest

from stream.contract.taxonomy import load_taxonomy
from stream.state import records
from stream.state.records import Joining, Leaving
from stream.upstream.importer import (
    ColumnMapping,
    RowResult,
    load_mapping,
    pseudonymise,
    read_rows,
    rows_to_events,
)
from stream.upstream.producer import encode

ROOT = Path(__file__).resolve().parents[3]
SAMPLES = ROOT / "topics" / "samples"
TAXONOMY = load_taxonomy()
KEY = bytes(range(32))
MAPPINGS = {name: load_mapping(ROOT / "topics" / "mappings" / f"{name}.toml")
            for name in ("audit_log", "learning_reviews", "dip_samples", "staff_roster")}
#: the samples' spellings, by hand (not read from the mappings)
TEAMS = {"RFS": "rfs", "MAP team": "map", "Early Help Hub": "ehh"}
GRADES = {"Good": "good", "Outstanding": "outstanding", "RI": "requires_improvement",
          "Requires improvement": "requires_improvement", "Inadequate": "inadequate"}
THEMES = {"Voice of the child": "voice_of_the_child", "Consent": "consent",
          "Threshold": "threshold_decisions", "DA": "domestic_abuse", "Neglect": "neglect",
          "Timeliness": "timeliness", "Management oversight": "management_oversight"}
ROLES = {"TM": "team_manager", "SM": "service_manager", "AD": "assistant_director"}


def convert(name: str, mapping: ColumnMapping | None = None) -> list[RowResult]:
    m = mapping or MAPPINGS[name.removesuffix("_with_errors")]
    return list(rows_to_events(read_rows(SAMPLES / f"{name}.csv", m), m, key=KEY,
                               taxonomy=TAXONOMY))


def rows(name: str) -> list[dict[str, str]]:
    with (SAMPLES / f"{name}.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def one_each(results: list[RowResult]) -> list:  # type: ignore[type-arg]
    assert [r.error for r in results if r.error] == []
    assert all(len(r.events) == 1 for r in results)
    return [r.events[0] for r in results]


def test_the_audit_log_imports_as_audits_naming_their_advisor():
    sample, events = rows("audit_log"), one_each(convert("audit_log"))
    assert len(sample) == len(events) >= 40
    for row, e in zip(sample, events, strict=True):
        assert e.event_type == "audit.graded"
        assert e.audit_key == pseudonymise(KEY, "audit", row["Audit ref"])
        assert (e.team, e.grade) == (TEAMS[row["Team audited"]], GRADES[row["Grade"]])
        staff = row["Advisor staff number"]
        assert e.advisor_key == (pseudonymise(KEY, "advisor", staff) if staff else None)
        wire = encode(e)
        assert row["Audit ref"].encode() not in wire and (not staff or staff.encode() not in wire)
    assert 0 < sum(e.advisor_key is None for e in events) < len(events) // 4


def test_the_roster_and_the_audit_log_name_the_same_advisors():
    roster = {e.advisor_key for r in convert("staff_roster") for e in r.events}
    audited = {e.advisor_key for e in one_each(convert("audit_log"))} - {None}
    assert audited and audited <= roster
    assert roster == {pseudonymise(KEY, "advisor", r["Staff number"]) for r in rows("staff_roster")}


def test_qa_activity_sheets_import_as_reviews_and_dip_samples():
    for row, e in zip(rows("learning_reviews"), one_each(convert("learning_reviews")),
                      strict=True):
        assert (e.event_type, e.review_key) == ("learning_review.held", pseudonymise(
            KEY, "review", row["Review ref"]))
        assert (e.team, e.theme) == (TEAMS[row["Team"]], THEMES[row["Theme"]])
    sample, dips = rows("dip_samples"), one_each(convert("dip_samples"))
    for row, e in zip(sample, dips, strict=True):
        assert (e.event_type, e.sample_key) == ("dip_sample.taken", pseudonymise(
            KEY, "sample", row["Sample ref"]))
        assert (e.sampler_role, e.theme) == (ROLES[row["Sampled by"]], THEMES[row["Theme"]])
        assert e.cases_sampled == int(row["Cases sampled"])
    assert len(dips) >= 20 and sum(e.cases_sampled for e in dips) == sum(
        int(r["Cases sampled"]) for r in sample)


def test_each_spell_joins_and_an_ended_one_leaves():
    sample, results = rows("staff_roster"), convert("staff_roster")
    assert [r.error for r in results if r.error] == []
    for row, result in zip(sample, results, strict=True):
        want = ["advisor.joined"] + ["advisor.left"] * bool(row["End date in team"])
        assert [e.event_type for e in result.events] == want
        assert {e.team for e in result.events} == {TEAMS[row["Team"]]}
    ids = [e.event_id for r in results for e in r.events]
    assert len(ids) == len(set(ids))  # spells of one advisor never share an id
    assert Counter(r["Staff number"] for r in sample).most_common(1)[0][1] == 2


@pytest.mark.parametrize("staff", ["S10235", "S10305"])
def test_several_spells_fold_into_each_teams_latest_join_and_leave(staff):
    """S10235 moves RFS -> MAP (a leave, then a join); S10305 leaves EHH and comes back.
    In any order the record holds, per team, that team's latest join and latest leave:
    the move keeps the RFS spell whole beside the MAP one; of the return to EHH only the
    latest join stays, in post (the earlier leave is before it: not counted)."""
    picked = [e for row, r in zip(rows("staff_roster"), convert("staff_roster"), strict=True)
              if row["Staff number"] == staff for e in r.events]
    assert len(picked) == 3
    folded = []
    for order in itertools.permutations(picked):
        record = None
        for event in order:
            kind, slot, value = records.slot_of(event)
            record = records.fold(record, kind, slot, value, 0) or record
        folded.append(record)
    assert all(r == folded[0] for r in folded)
    joins, leaves = Joining.slots(folded[0]), Leaving.slots(folded[0])  # type: ignore[arg-type]
    for team in {e.team for e in picked}:
        latest = max((e for e in picked if e.event_type == "advisor.joined" and e.team == team),
                     key=lambda e: e.occurred_at)
        assert Joining.occurred_at(joins[team]) == latest.occurred_at.timestamp()
    assert set(leaves) == {e.team for e in picked if e.event_type == "advisor.left"}


@pytest.mark.parametrize(("name", "errors"), [
    ("audit_log_with_errors", {
        5: "Grade: value not in [values.grade] of the mapping nor a 'grade' code or label",
        6: "Date graded: empty",
        7: "Date graded: not a date/time in the format %d/%m/%Y or %d/%m/%Y %H:%M",
        8: "Audit ref: empty",
        9: "Team audited: value not in [values.team] of the mapping nor a 'team' code or label"}),
    ("staff_roster_with_errors", {
        5: "End date in team: before Start date in team",
        6: "Staff number: empty",
        7: "Team: value not in [values.team] of the mapping nor a 'team' code or label",
        8: "Start date in team: not a date/time in the format %d/%m/%Y or %d/%m/%Y %H:%M"}),
    ("dip_samples_with_errors", {
        5: "Cases sampled: not a whole number from 1 to 1000",
        6: "Cases sampled: not a whole number from 1 to 1000",
        7: "Sampled by: value not in [values.sampler_role] of the mapping nor a "
           "'sampler_role' code or label",
        8: "Theme: value not in [values.theme] of the mapping nor a 'qa_theme' code or label"}),
])
def test_bad_rows_get_their_row_number_and_reason(name, errors):
    results = convert(name)
    assert {r.row: r.error for r in results if r.error} == errors
    assert [r.row for r in results if r.events] == [2, 3, 4]  # copies of the sample's rows
    raw = {v for row in rows(name) for k, v in row.items()
           if k in ("Audit ref", "Staff number", "Advisor staff number", "Sample ref") and v}
    assert not any(v in e for v in raw for e in errors.values())


def test_reimport_gives_the_same_event_ids():
    for name in MAPPINGS:
        first, again = convert(name), convert(name)
        assert [e.event_id for r in first for e in r.events] == [
            e.event_id for r in again for e in r.events]
