"""Quality assurance beyond grades (stream/state/quality.py): reviews, dip samples, coverage.

The family's plain functions on hand-made records and cells, the working days left in a
month counted by hand, the worker's gauges, and the report's section 5 against the
independent expectation of tests/reportgen (``expected._quality``).
"""

from __future__ import annotations

from datetime import date, datetime

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from stream.contract.decoder import Decoder
from stream.report import ReportDefinitions, compute_report, render
from stream.settings import PeriodCombination
from stream.state import records
from stream.state.aggregates import Aggregates
from stream.state.families import facts_of
from stream.state.quality import (
    advisor_tag,
    coverage,
    in_post,
    unaudited,
    working_days_left,
)
from stream.worker.live_gauges import AdvisorAuditsCollector
from tests import factories as f
from tests.conftest import LONDON
from tests.processing import processed
from tests.reportgen import Defs, expected_report
from tests.reportgen import facts_of as plain_facts
from tests.reportgen.comparing import flatten, mismatch
from tests.reportgen.generated import MONTHS, generate

A, B, C = f.key("advisor-a"), f.key("advisor-b"), f.key("advisor-c")


KEYS = ("audit_key", "review_key", "sample_key", "advisor_key")


def _agg(events: list[dict], taxonomy, ctx) -> Aggregates:
    """The events decoded, folded into records (in the order given), and the records'
    facts summed: the family's plain functions, no worker."""
    table: dict[str, records.Record] = {}
    for event in events:
        key = next(event[k] for k in KEYS if k in event)
        decoded = Decoder("audits", taxonomy).decode(key.encode(), orjson.dumps(event), 2e9)
        kind, slot, value = records.slot_of(decoded)
        at_key = records.table_key(kind, decoded.key)
        table[at_key] = records.fold(table.get(at_key), kind, slot, value, 0) or table[at_key]
    agg = Aggregates()
    for record in table.values():
        agg.apply(facts_of(record, ctx), +1)
    return agg


def at(month: int, day: int, hour: int = 10) -> datetime:
    return datetime(2019, month, day, hour, tzinfo=LONDON)


def test_reviews_and_dip_samples_count_in_their_month(taxonomy, ctx) -> None:
    agg = _agg([f.review(f.key("r1"), at(8, 30, 23), team="ehh", theme="consent"),
                f.dip_sample(f.key("d1"), at(8, 31), 6, role="assistant_director"),
                f.dip_sample(f.key("d2"), at(9, 2), 4)], taxonomy, ctx)
    assert {labels: c.count for labels, c in agg.figure("learning_reviews")} == {
        ("2019-08", "ehh", "consent"): 1}
    samples = {labels: (c.count, c.total) for labels, c in agg.figure("dip_samples")}
    assert samples == {("2019-08", "assistant_director", "consent"): (1, 6.0),
                       ("2019-09", "service_manager", "consent"): (1, 4.0)}


def test_in_post_follows_joins_leaves_and_moves(taxonomy, ctx) -> None:
    agg = _agg([
        f.advisor(A, at(7, 1), team="rfs"),
        f.advisor(B, at(7, 1), team="rfs"), f.advisor(B, at(8, 15), team="rfs", joined=False),
        # C moves from rfs to ehh in September: the rfs spell still counts in Jul-Aug
        f.advisor(C, at(7, 1), team="rfs"), f.advisor(C, at(9, 10), team="rfs", joined=False),
        f.advisor(C, at(9, 11), team="ehh"),
    ], taxonomy, ctx)
    tag = {k: advisor_tag(k) for k in (A, B, C)}
    teams = ("rfs", "ehh", "map")
    assert in_post(agg, "2019-07", teams) == {"rfs": {tag[A], tag[B], tag[C]}, "ehh": set(),
                                              "map": set()}
    assert in_post(agg, "2019-08", teams)["rfs"] == {tag[A], tag[C]}  # B left in August
    assert in_post(agg, "2019-09", teams) == {"rfs": {tag[A]}, "ehh": {tag[C]}, "map": set()}


def test_a_record_written_with_one_join_slot_reads_as_its_teams(ctx) -> None:
    """Records stored before the slots were kept per team (``join``/``left``) need no
    migration: each legacy slot reads as its team's, and a later per-team one wins."""
    legacy = {"k": "qa", "p": 0, "join": [at(7, 1).timestamp(), "e1", "rfs", A],
              "left": [at(8, 5).timestamp(), "e2", "rfs"]}
    agg = Aggregates()
    agg.apply(facts_of(legacy, ctx), +1)
    assert in_post(agg, "2019-07", ("rfs",)) == {"rfs": {advisor_tag(A)}}
    assert in_post(agg, "2019-08", ("rfs",)) == {"rfs": set()}
    rejoined = {**legacy, "join:rfs": [at(9, 2).timestamp(), "e3", "rfs", A]}
    agg = Aggregates()
    agg.apply(facts_of(rejoined, ctx), +1)
    assert in_post(agg, "2019-09", ("rfs",)) == {"rfs": {advisor_tag(A)}}  # back in post


def test_a_leave_of_another_team_or_before_the_join_ends_nothing(taxonomy, ctx) -> None:
    agg = _agg([f.advisor(A, at(8, 1), team="rfs"),
                f.advisor(A, at(8, 20), team="ehh", joined=False),
                f.advisor(B, at(8, 5), team="map"),
                f.advisor(B, at(7, 5), team="map", joined=False)], taxonomy, ctx)
    assert in_post(agg, "2019-09", ("rfs", "map")) == {"rfs": {advisor_tag(A)},
                                                         "map": {advisor_tag(B)}}


def test_coverage_and_unaudited_count_advisors_not_audits(taxonomy, ctx) -> None:
    events = [f.advisor(A, at(7, 1)), f.advisor(B, at(7, 1)), f.advisor(C, at(7, 1), "ehh"),
              # A audited twice in August, once in September; C (ehh) in August by an rfs audit
              f.audit(f.key("x1"), at(8, 5), team="rfs", advisor=A),
              f.audit(f.key("x2"), at(8, 20), team="rfs", advisor=A),
              f.audit(f.key("x3"), at(9, 3), team="rfs", advisor=A),
              f.audit(f.key("x4"), at(8, 7), team="rfs", advisor=C),
              f.audit(f.key("x5"), at(8, 8), team="rfs")]  # names no advisor
    agg = _agg(events, taxonomy, ctx)
    assert coverage(agg, "2019-08", ("rfs", "ehh")) == {"rfs": (1, 2), "ehh": (1, 1)}
    assert coverage(agg, "2019-09", ("rfs", "ehh")) == {"rfs": (1, 2), "ehh": (0, 1)}
    assert unaudited(agg, "2019-09", ("rfs", "ehh", "map")) == {"rfs": 1, "ehh": 1, "map": 0}
    # a regrade of x4 that drops the advisor withdraws C's August audit
    agg2 = _agg([*events, f.audit(f.key("x4"), at(8, 9), team="rfs")], taxonomy, ctx)
    assert coverage(agg2, "2019-08", ("ehh",)) == {"ehh": (0, 1)}


@pytest.mark.parametrize(("today", "left"), [
    (date(2026, 11, 24), 5),  # Tue: 24, 25, 26, 27, 30
    (date(2026, 11, 23), 6),
    (date(2026, 11, 28), 1),  # Saturday: Monday 30 is left
    (date(2026, 11, 30), 1),
    (date(2026, 12, 21), 7),  # 21-24, 29-31: Christmas Fri 25, Boxing Day moved to Mon 28
    (date(2026, 12, 1), 21),
])
def test_working_days_left_counted_by_hand(ctx, today: date, left: int) -> None:
    assert working_days_left(ctx.calendar, today) == left


def test_the_worker_exposes_unaudited_advisors_and_no_advisor(taxonomy, ctx) -> None:
    agg = _agg([f.advisor(A, at(7, 1)), f.advisor(B, at(7, 1)),
                f.audit(f.key("x1"), at(9, 5), team="rfs", advisor=A)], taxonomy, ctx)
    registry = CollectorRegistry()
    registry.register(AdvisorAuditsCollector(lambda: agg, ctx.calendar,
                                             ("rfs", "map", "ehh"),
                                             lambda: at(9, 24, 12)))
    text = generate_latest(registry).decode()
    assert 'cspa_advisors_unaudited{team="rfs"} 1.0' in text
    assert 'cspa_advisors_unaudited{team="ehh"} 0.0' in text
    assert "cspa_month_working_days_left 5.0" in text  # 24-27, 30 September 2019
    for secret in (A, B, repr(advisor_tag(A)), str(int(advisor_tag(A)))):
        assert secret not in text


def test_the_unaudited_count_is_worked_out_again_only_when_the_cells_or_month_change(
        taxonomy, ctx) -> None:
    # Step 52: the count is kept while the roster's change count and the month hold (a
    # scrape walked every advisor's joins and leaves: 70 ms on a slow machine).
    agg = _agg([f.advisor(A, at(7, 1)), f.advisor(B, at(7, 1))], taxonomy, ctx)
    changes, clock = [1], [at(9, 24, 12)]
    registry = CollectorRegistry()
    registry.register(AdvisorAuditsCollector(lambda: agg, ctx.calendar, ("rfs",),
                                             lambda: clock[0], lambda: changes[0]))

    def behind() -> str:
        text = generate_latest(registry).decode()
        return next(line for line in text.splitlines()
                    if line.startswith('cspa_advisors_unaudited{team="rfs"}'))

    assert behind().endswith(" 2.0")
    audited = _agg([f.audit(f.key("x1"), at(9, 5), team="rfs", advisor=A)], taxonomy, ctx)
    agg.merge(audited)  # the cells change, their change count not yet
    assert behind().endswith(" 2.0")  # kept
    changes[0] += 1
    assert behind().endswith(" 1.0")  # worked out again
    clock[0] = at(10, 1, 12)  # a new month, no audit in it
    assert behind().endswith(" 2.0")


def test_no_unaudited_advisors_until_the_audits_are_read(ctx) -> None:
    """Before its roster has read the audits (``current`` None), a worker exports no
    count at all: a half-read changelog would show every advisor unaudited."""
    registry = CollectorRegistry()
    registry.register(AdvisorAuditsCollector(lambda: None, ctx.calendar, ("rfs",),
                                             lambda: at(9, 24, 12)))
    text = generate_latest(registry).decode()
    assert "cspa_advisors_unaudited{" not in text
    assert "cspa_month_working_days_left 5.0" in text


# --------------------------------------------------------------- the report's section 5

QA_TABLES = ("qa_activity", "audit_coverage", "audits_")


@pytest.fixture(scope="module")
def generated(taxonomy, ctx):
    """Generated events of every family, QA included, through the worker's processors."""
    data = generate(contacts=150, emails=40, calls=80, enquiries=60, audits=40, quality=True)
    return data, processed(data.messages, taxonomy, ctx)


@pytest.mark.parametrize("combination", list(PeriodCombination))
def test_section_5_equals_independent_ground_truth(generated, taxonomy, combination) -> None:
    data, agg = generated
    report = compute_report(agg, MONTHS, taxonomy,
                            ReportDefinitions(period_combination=combination))
    got = {k: v for k, v in flatten(orjson.loads(render(report, "json"))).items()
           if k[0].startswith(QA_TABLES)}
    want = {k: v for k, v in expected_report(plain_facts(data), MONTHS,
                                             Defs(combination=combination.value)).items()
            if k[0].startswith(QA_TABLES)}
    assert {k[0] for k in want} >= {"qa_activity", "audit_coverage"}
    assert set(got) == set(want)
    assert [k for k in want if mismatch(got[k], want[k])] == []


@pytest.mark.parametrize("publish", [False, True])
def test_section_5_renders_in_every_format(generated, taxonomy, publish) -> None:
    _, agg = generated
    report = compute_report(agg, MONTHS, taxonomy, ReportDefinitions(), publish=publish)
    for fmt in ("text", "markdown", "csv", "json", "html"):
        out = render(report, fmt)
        assert "qa_activity" in out or "Learning reviews and dip samples" in out, fmt
        assert "audit_coverage" in out or "Advisors in post audited" in out, fmt
