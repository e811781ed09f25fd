"""Rules versioned in time: loading, validation, and which version judges an item.

Every expected deadline below is worked out by hand from the calendar of England and
Wales (2027: Good Friday 26 March, Easter Monday 29 March, BST from 28 March), not by
the worker's code. The change under test: ``contact_decision`` goes from 1 to 3 working
days from Monday 5 April 2027.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from stream.contract.taxonomy import load_taxonomy
from stream.settings import DEFAULT_TAXONOMY, Settings
from stream.state.facts import FactContext
from stream.state.families import facts_of
from stream.state.fingerprint import fingerprint, fold_inputs
from stream.state.rules import RuleError, load_rules
from stream.state.timeliness import OpenWork, items_of
from stream.state.working_days import OfficeHours, WorkingCalendar

ROOT = Path(__file__).resolve().parents[3]
LONDON = ZoneInfo("Europe/London")
RULE = """
[[rule]]
name = "contact_decision"
version = {v}
team = "rfs"
opens = "contact.received"
closes = "contact.decided"
clock = "working_days"
timescale = {t}
warn_working_hours = 4
{extra}
"""
CHANGE = (RULE.format(v=1, t=1, extra="")
          + RULE.format(v=2, t=3, extra="effective_from = 2027-04-05"))
PROGRESSION = """
[[rule]]
name = "progression_childrens_social_care"
version = {v}
team = "rfs"
opens = "contact.received"
closes = "contact.progressed:childrens_social_care"
clock = "working_days"
timescale = {t}
warn_working_hours = 4
{extra}
"""


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def rules_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    return path


def contact(rcv: str, dec: str | None = None) -> dict[str, object]:
    record: dict[str, object] = {"k": "contact", "p": 0, "rcv": [at(rcv), "e", "rfs", "6", "email"]}
    if dec:
        record["dec"] = [at(dec), "e", "level_1", None]
    return record


def judged(tmp_path: Path, record: dict[str, object], roll: bool = False) -> tuple[int, str]:
    rules = load_rules(rules_file(tmp_path, CHANGE))
    cal = WorkingCalendar(roll_after_hours=roll)
    [item] = items_of(record, rules, cal)
    return item.version, datetime.fromtimestamp(item.deadline_ts, LONDON).isoformat()


def test_todays_rules_file_loads_unchanged_in_meaning() -> None:
    rules = load_rules(ROOT / "config" / "rules.toml")
    for versions in rules.values():
        [only] = versions.versions
        assert only.effective_from is None and versions.at(-1e12) is only
    assert rules["contact_decision"].timescale == 1


def test_the_working_day_before_the_change_is_judged_by_the_old_version(tmp_path) -> None:
    # Fri 2 Apr 2027 is a working day (Easter was the week before): 1 working day -> Mon 5.
    assert judged(tmp_path, contact("2027-04-02T10:00+01:00")) == (
        1, "2027-04-05T10:00:00+01:00")


def test_the_day_of_the_change_is_judged_by_the_new_version(tmp_path) -> None:
    # Mon 5 Apr 2027 + 3 working days -> Thu 8 Apr, same time.
    assert judged(tmp_path, contact("2027-04-05T10:00+01:00")) == (
        2, "2027-04-08T10:00:00+01:00")
    # Before office hours on the day still counts from that day's midnight on.
    assert judged(tmp_path, contact("2027-04-05T07:30+01:00"))[0] == 2


def test_the_version_is_the_one_in_force_when_the_clock_started_after_the_roll_over(
        tmp_path) -> None:
    # Received Fri 2 Apr 18:00: rolled over, the clock starts Mon 5 Apr 09:00 -> version 2,
    # due Thu 8 Apr 09:00. Without the roll-over it starts Friday 18:00 -> version 1, and
    # a working day on from an after-hours Friday instant is Monday 18:00.
    assert judged(tmp_path, contact("2027-04-02T18:00+01:00"), roll=True) == (
        2, "2027-04-08T09:00:00+01:00")
    assert judged(tmp_path, contact("2027-04-02T18:00+01:00"), roll=False) == (
        1, "2027-04-05T18:00:00+01:00")
    # Received Sat 3 Apr: the clock starts Mon 5 Apr 09:00 with the roll-over.
    assert judged(tmp_path, contact("2027-04-03T11:00+01:00"), roll=True)[0] == 2


def test_breaches_carry_the_version_that_judged_them(tmp_path) -> None:
    rules = load_rules(rules_file(tmp_path, CHANGE))
    work = OpenWork(rules, WorkingCalendar())
    # Both decided two working days after receipt: late under version 1, in time under 2.
    work.update(0, "a", contact("2027-04-02T10:00+01:00", "2027-04-06T10:00+01:00"))
    work.update(0, "b", contact("2027-04-05T10:00+01:00", "2027-04-07T10:00+01:00"))
    # Four working days: late under version 2 too (Thu 8 Apr 10:00 was its deadline).
    work.update(0, "c", contact("2027-04-05T10:00+01:00", "2027-04-09T12:00+01:00"))
    assert work.breaches(at("2027-05-01T00:00+01:00"), {0}) == {
        ("contact_decision", 1, "2027-04"): 1, ("contact_decision", 2, "2027-04"): 1}


def test_progression_figures_use_the_version_in_force(tmp_path) -> None:
    text = (PROGRESSION.format(v=1, t=1, extra="")
            + PROGRESSION.format(v=2, t=3, extra='effective_from = "2027-04-05"'))
    ctx = FactContext(WorkingCalendar("Europe/London", OfficeHours(time(9), time(17))),
                      load_taxonomy(DEFAULT_TAXONOMY), load_rules(rules_file(tmp_path, text)),
                      LONDON)

    def within(rcv: str, prog: str) -> str:
        record = contact(rcv)
        record["prog:childrens_social_care"] = [at(prog), "e"]
        [fact] = [f for f in facts_of(record, ctx) if f[0] == "progressions"]
        return fact[1][2]

    # Two working days each: over 1 (version 1), within 3 (version 2).
    assert within("2027-04-02T10:00+01:00", "2027-04-06T10:00+01:00") == "false"
    assert within("2027-04-05T10:00+01:00", "2027-04-07T10:00+01:00") == "true"


def test_a_first_version_with_a_date_judges_nothing_before_it(tmp_path) -> None:
    text = RULE.format(v=1, t=1, extra="effective_from = 2027-04-05")
    rules = load_rules(rules_file(tmp_path, text))
    cal = WorkingCalendar()
    assert items_of(contact("2027-04-02T10:00+01:00"), rules, cal) == []
    assert len(items_of(contact("2027-04-05T10:00+01:00"), rules, cal)) == 1


@pytest.mark.parametrize(("text", "message"), [
    (RULE.format(v=1, t=1, extra="") + RULE.format(v=1, t=3, extra="effective_from = 2027-04-05"),
     "rule contact_decision: version 1 after version 1: versions must increase"),
    (RULE.format(v=1, t=1, extra="") + RULE.format(v=2, t=3, extra=""),
     "rule contact_decision: version 2 needs effective_from"),
    (RULE.format(v=1, t=1, extra="effective_from = 2027-04-05")
     + RULE.format(v=2, t=3, extra="effective_from = 2027-04-05"),
     "rule contact_decision: version 2 effective_from 2027-04-05 is not after version 1's"),
    (RULE.format(v=1, t=1, extra="")
     + RULE.format(v=2, t=3, extra="effective_from = 2027-04-05").replace('"rfs"', '"map"'),
     "rule contact_decision: version 2 changes team"),
    (RULE.format(v=1, t=1, extra="effective_from = 2027-04-05T10:00:00"),
     "rule contact_decision: effective_from must be a date"),
    (RULE.format(v=1, t=1, extra='effective_from = "5 April"'),
     "rule contact_decision: effective_from must be a date"),
    (RULE.format(v=1, t=1, extra="colour = 2"), "rule contact_decision: unknown keys"),
])
def test_a_bad_rules_file_is_refused_naming_the_rule(tmp_path, text: str, message: str) -> None:
    with pytest.raises(RuleError, match="^" + message.replace("(", r"\(")):
        load_rules(rules_file(tmp_path, text))


def test_the_fingerprint_follows_fold_inputs_only(tmp_path) -> None:
    rules = tmp_path / "rules.toml"
    shutil.copy(ROOT / "config" / "rules.toml", rules)
    base = Settings(rules_path=rules)

    def fp(settings: Settings) -> str:
        return fingerprint(fold_inputs(settings), 2)

    now = fp(base)
    # Read when figures are read: the same fingerprint.
    for change in ({"service_level_variant": "answered"}, {"short_abandon_seconds": 5.0},
                   {"service_level_seconds": 30.0}, {"period_combination": "mean_of_ratios"},
                   {"metrics_months": 3}, {"calls_waiting_limit_seconds": 60.0},
                   {"open_work_horizon": 5.0}):
        assert fp(base.model_copy(update=change)) == now, change
    rules.write_text("# a comment\n" + rules.read_text().replace(
        'source = "local target (committee report)"', 'source = "the committee"'))
    assert fp(base) == now  # a comment or a citation judges nothing
    # Applied when folding: another fingerprint.
    for change in ({"roll_after_hours": True}, {"office_start": time(8)},
                   {"timezone": "Europe/Dublin"}, {"child_window_grace_days": 30.0}):
        assert fp(base.model_copy(update=change)) != now, change
    assert fingerprint(fold_inputs(base), 3) != now  # the state format
    assert fold_inputs(base)["fold"] == 3  # cells keep sums in 1e-4 units
    rules.write_text(rules.read_text().replace("timescale = 1", "timescale = 3", 1))
    assert fp(base) != now
    rules.write_text(rules.read_text() + RULE.format(v=2, t=3, extra="").replace(
        "contact_decision", "new_rule"))
    assert fp(base) != now


def test_versions_resolve_by_date_at_london_midnight(tmp_path) -> None:
    [rule] = load_rules(rules_file(tmp_path, CHANGE)).values()
    midnight = datetime.combine(date(2027, 4, 5), time(0), LONDON).timestamp()
    assert midnight == at("2027-04-04T23:00+00:00")  # BST: the date starts at 23:00 UTC
    assert rule.at(midnight - 1e-3).version == 1  # type: ignore[union-attr]
    assert rule.at(midnight).version == 2  # type: ignore[union-attr]
