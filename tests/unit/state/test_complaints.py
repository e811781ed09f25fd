"""Complaints on the clock: rule ``complaint_stage1`` (config/rules.toml), 10 working days
from a complaint to its stage 1 response, 20 where ``complaint.extended`` counts.

Events go through the real decoder and fold into a feedback record; the items, states,
breaches and due list come from open work and the report's fact from the feedback family,
all under the repository's rules file. The deadlines are counted here by hand on the
calendar (April-May 2026, the early May bank holiday Monday 4 May), not by the code.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest
from prometheus_client import CollectorRegistry

from stream.contract.decoder import FAMILIES, Decoder
from stream.contract.events import Event
from stream.contract.taxonomy import load_taxonomy
from stream.report import ReportDefinitions, compute_report, render
from stream.settings import PeriodCombination
from stream.state import records
from stream.state.facts import FactContext
from stream.state.feedback import feedback_facts
from stream.state.fingerprint import rules_input
from stream.state.rules import Rule, RuleError, Versions, load_rules
from stream.state.timeliness import OpenWork, items_of, watched_rules
from stream.state.working_days import WorkingCalendar
from stream.worker.metrics import PipelineMetrics
from stream.worker.processor import CellState, FamilyProcessor
from tests import factories as f
from tests.reportgen import Defs, expected_report
from tests.reportgen import facts_of as plain_facts
from tests.reportgen.comparing import flatten, mismatch
from tests.reportgen.generated import MONTHS, generate
from tests.reportgen.workdays import TOPICS

ROOT = Path(__file__).resolve().parents[3]
RULES = load_rules(ROOT / "config" / "rules.toml")
CAL = WorkingCalendar()
TAXONOMY = load_taxonomy()
LONDON = ZoneInfo("Europe/London")
K = f.key("complaint")
P = ("cspa.feedback.v1", 0)
NOW = datetime(2026, 7, 1, tzinfo=LONDON).timestamp()  # the decoder's clock: after it all


def lon(m: int, d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, m, d, hh, mm, tzinfo=LONDON)


#: received Wednesday 22 April 2026 10:00 (BST). Ten working days by hand: Thu 23, Fri 24,
#: Mon 27, Tue 28, Wed 29, Thu 30, Fri 1 May, (Mon 4 May, bank holiday), Tue 5, Wed 6,
#: Thu 7 May. Ten more: Fri 8, Mon 11 ... Fri 15, Mon 18 ... Thu 21 May.
RECEIVED = lon(4, 22, 10)
DUE_10 = lon(5, 7, 10)
DUE_20 = lon(5, 21, 10)


def record(*events: dict, kind: str = "complaint") -> records.Record:  # type: ignore[type-arg]
    """The feedback record of a complaint received at ``RECEIVED`` and then ``events``."""
    decoder = Decoder("feedback", TAXONOMY)
    rec: records.Record | None = None
    for doc in (f.feedback(K, RECEIVED, kind=kind), *events):
        event = decoder.decode(K.encode(), orjson.dumps(doc), NOW)
        assert isinstance(event, Event), event
        slot_kind, slot, value = records.slot_of(event)
        rec = records.fold(rec, slot_kind, slot, value, 0) or rec
    assert rec is not None
    return rec


def deadline(rec: records.Record) -> float:
    [item] = [i for i in items_of(rec, dict(RULES), CAL) if i.rule == "complaint_stage1"]
    return item.deadline_ts


def within(rec: records.Record, ctx: FactContext) -> list[tuple[str, ...]]:
    return [labels for fig, labels, _ in feedback_facts(rec, ctx)
            if fig == "complaints_responded"]


def work(rec: records.Record) -> OpenWork:
    open_work = OpenWork(RULES, CAL)
    open_work.update(P, records.table_key("feedback", K), rec)
    return open_work


def test_ten_working_days_across_the_bank_holiday(ctx: FactContext) -> None:
    late = record(f.complaint_responded(K, lon(5, 8, 9)))  # Friday: a day late
    assert deadline(late) == DUE_10.timestamp()
    assert within(late, ctx) == [("2026-05", "false")]
    assert work(late).breaches(lon(5, 8, 12).timestamp(), [P]) == {
        ("complaint_stage1", 1, "2026-05"): 1}
    on_time = record(f.complaint_responded(K, lon(5, 7, 10)))  # on the deadline itself
    assert within(on_time, ctx) == [("2026-05", "true")]
    assert work(on_time).breaches(lon(5, 8, 12).timestamp(), [P]) == {}


def test_an_extension_before_the_response_gives_twenty(ctx: FactContext) -> None:
    rec = record(f.complaint_extended(K, lon(5, 5, 11)),
                 f.complaint_responded(K, lon(5, 21, 9, 30)))
    assert deadline(rec) == DUE_20.timestamp()
    assert within(rec, ctx) == [("2026-05", "true")]
    assert work(rec).breaches(lon(5, 22, 12).timestamp(), [P]) == {}
    later = record(f.complaint_extended(K, lon(5, 5, 11)),
                   f.complaint_responded(K, lon(5, 21, 10, 1)))
    assert within(later, ctx) == [("2026-05", "false")]  # a minute past the 20 days


def test_an_extension_after_the_response_is_ignored(ctx: FactContext) -> None:
    rec = record(f.complaint_responded(K, lon(5, 8, 9)), f.complaint_extended(K, lon(5, 8, 11)))
    assert deadline(rec) == DUE_10.timestamp()
    assert within(rec, ctx) == [("2026-05", "false")]
    assert work(rec).breaches(lon(5, 8, 12).timestamp(), [P]) == {
        ("complaint_stage1", 1, "2026-05"): 1}
    # within the ten days but after the response: the item's deadline stays the tenth day
    answered = record(f.complaint_responded(K, lon(5, 5, 9)),
                      f.complaint_extended(K, lon(5, 6, 9)))
    assert deadline(answered) == DUE_10.timestamp()
    assert within(answered, ctx) == [("2026-05", "true")]


def test_an_extension_after_the_ten_days_is_ignored() -> None:
    rec = record(f.complaint_extended(K, lon(5, 7, 10, 1)))  # a minute too late
    assert deadline(rec) == DUE_10.timestamp()
    assert work(rec).states(lon(5, 11, 12).timestamp(), [P])[
        ("complaint_stage1", "rfs", "overdue")] == 1
    on_the_deadline = record(f.complaint_extended(K, DUE_10))
    assert deadline(on_the_deadline) == DUE_20.timestamp()


def test_no_response_is_open_then_at_risk_then_overdue() -> None:
    rec = record()
    open_work = work(rec)

    def state(at: datetime) -> str:
        counts = open_work.states(at.timestamp(), [P])
        [found] = [s for (rule, _, s), n in counts.items() if rule == "complaint_stage1" and n]
        return found

    # 16 office hours (09:00-17:00) before Thu 7 May 10:00: Thu 1 h, Wed 8 h, Tue 10-17 7 h
    assert state(lon(5, 4, 12)) == "on_time"  # the bank holiday
    assert state(lon(5, 5, 9, 59)) == "on_time"
    assert state(lon(5, 5, 10)) == "at_risk"
    assert state(lon(5, 7, 10)) == "overdue"
    [row] = open_work.due_list(lon(5, 6, 12).timestamp(), [P], 10)
    assert (row["rule"], row["team"], row["deadline"]) == (
        "complaint_stage1", "rfs", "2026-05-07T10:00:00+01:00")
    assert open_work.breaches(lon(5, 8, 12).timestamp(), [P]) == {
        ("complaint_stage1", 1, "2026-05"): 1}


def test_extended_open_complaint_everywhere_twenty_days() -> None:
    open_work = work(record(f.complaint_extended(K, lon(4, 30, 15))))
    now = lon(5, 8, 12).timestamp()  # past the 10 days, within the 20
    counts = open_work.states(now, [P])
    assert counts[("complaint_stage1", "rfs", "on_time")] == 1
    assert open_work.breaches(now, [P]) == {}
    [row] = open_work.due_list(now, [P], 10)
    assert row["deadline"] == "2026-05-21T10:00:00+01:00"
    # 16 office hours before Thu 21 May 10:00: Tue 19 May 10:00
    assert open_work.states(lon(5, 19, 10).timestamp(), [P])[
        ("complaint_stage1", "rfs", "at_risk")] == 1


def test_only_complaints_are_on_the_clock(ctx: FactContext) -> None:
    rec = record(f.complaint_responded(K, lon(5, 8, 9)), kind="compliment")
    assert [i for i in items_of(rec, dict(RULES), CAL) if i.rule == "complaint_stage1"] == []
    assert within(rec, ctx) == []


RULE = Rule("complaints", 1, "rfs", "feedback.received:complaint", "complaint.responded",
            "working_days", 10, 16)


def test_rule_validation(tmp_path: Path) -> None:
    other_record = Rule(**{**vars(RULE), "extended_by": "contact.decided",
                           "extended_timescale": 20})
    with pytest.raises(RuleError, match="extended_by contact.decided must be on the case"):
        watched_rules({"complaints": other_record})
    lines = ['[[rule]]', 'name = "complaints"', 'version = 1', 'team = "rfs"',
             'opens = "feedback.received:complaint"', 'closes = "complaint.responded"',
             'clock = "working_days"', 'timescale = 10', 'warn_working_hours = 16']
    path = tmp_path / "rules.toml"
    for extra, message in ((['extended_by = "complaint.extended"', 'extended_timescale = 5'],
                            "extended_timescale 5 is below the timescale 10"),
                           (['extended_by = "complaint.extended"'], "go together"),
                           (['extended_timescale = 20'], "go together")):
        path.write_text("\n".join(lines + extra) + "\n")
        with pytest.raises(RuleError, match=message):
            load_rules(path)


def test_the_extension_is_a_fold_input() -> None:
    plain = rules_input({"complaints": Versions([RULE])})["complaints"][0]
    assert "extended_by" not in plain and "extended_timescale" not in plain
    extended = Rule(**{**vars(RULE), "extended_by": "complaint.extended",
                       "extended_timescale": 20})
    longer = Rule(**{**vars(extended), "extended_timescale": 15})
    rows = [rules_input({"complaints": Versions([r])}) for r in (RULE, extended, longer)]
    assert rows[1]["complaints"][0]["extended_timescale"] == 20
    assert len({orjson.dumps(r) for r in rows}) == 3


@pytest.fixture(scope="module")
def generated(taxonomy, ctx):  # type: ignore[no-untyped-def]
    """Generated complaints (tests/reportgen) through the worker's processors."""
    data = generate(contacts=0, emails=0, calls=0, enquiries=0, audits=0, complaints=80)
    state, work = CellState(), OpenWork(ctx.rules, ctx.calendar)
    metrics = PipelineMetrics(CollectorRegistry())
    processors = {topic: (FamilyProcessor(topic, Decoder(family, taxonomy), ctx, state,
                                          metrics, work), {})
                  for family, topic in TOPICS.items() if family in FAMILIES}
    for m in data.messages:
        processor, table = processors[m.topic]
        processor.process(m.key, m.value, 0, None, table, now=2e9)
    return data, state.current(set(state.parts))


@pytest.mark.parametrize("combination", list(PeriodCombination))
def test_the_report_row_equals_independent_ground_truth(generated, taxonomy,  # type: ignore[no-untyped-def]
                                                        combination) -> None:
    data, agg = generated
    report = compute_report(agg, MONTHS, taxonomy,
                            ReportDefinitions(period_combination=combination))
    wanted = ("within_complaint_stage1",)
    got = {k: v for k, v in flatten(orjson.loads(render(report, "json"))).items()
           if k[0] == "feedback" or k[1] == wanted[0]}
    want = {k: v for k, v in expected_report(plain_facts(data), MONTHS,
                                             Defs(combination=combination.value)).items()
            if k[0] == "feedback" or k[1] == wanted[0]}
    truth = plain_facts(data).complaints
    assert {True, False} <= {within for _, within in truth}  # both kinds of answer
    assert set(got) == set(want) and sum(k[1] == wanted[0] for k in want) == len(MONTHS) + 1
    assert [k for k in want if mismatch(got[k], want[k])] == []
