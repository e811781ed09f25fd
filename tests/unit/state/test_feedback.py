"""The feedback family against ground truth counted straight from the events sent.

Random feedback over a month boundary, with re-sent events, corrections of an approval
(consent given, then refused) and withdrawals, through the worker's real processor; the
expected counts come from the event documents alone (month by ``zoneinfo``), not from
the family's code. The report's section 6 table must show the same.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
from prometheus_client import CollectorRegistry

from stream.contract.decoder import Decoder
from stream.contract.quotes import new_key, seal
from stream.contract.taxonomy import Taxonomy
from stream.report import ReportDefinitions, compute_report
from stream.state.facts import FactContext
from stream.state.timeliness import OpenWork
from stream.worker.metrics import PipelineMetrics
from stream.worker.processor import CellState, FamilyProcessor
from tests import factories as f

LONDON = ZoneInfo("Europe/London")
START = datetime(2019, 9, 28, 9, 0, tzinfo=LONDON)  # a month boundary within the days sent
FROM = ("parent_carer", "young_person", "partner_agency", "staff")
KINDS = ("compliment", "complaint", "comment")


def _events(rng: random.Random) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for i in range(120):
        k, at = f.key(f"fb-{i}"), START + timedelta(hours=rng.randrange(0, 24 * 6))
        who = rng.choice(FROM)
        out.append(f.feedback(k, at, from_whom=who, kind=rng.choice(KINDS),
                              agency="police" if who == "partner_agency" else None))
        if rng.random() < 0.5:
            out.append(f.quote_approved(k, at + timedelta(hours=2), seal("x", new_key(), k),
                                        attribution=rng.choice(("parent_feedback",
                                                                "police_colleagues"))))
            if rng.random() < 0.2:  # corrected: consent was not in fact given
                fix = dict(out[-1], event_id=out[-1]["event_id"] + "-fix",
                           consent_to_publish=False)
                fix["recorded_at"] = (at + timedelta(hours=5)).isoformat()
                out.append(fix)
            if rng.random() < 0.3:
                out.append(f.withdrawn(k, at + timedelta(days=1)))
    out += rng.sample(out, 15)  # re-sent: counted once
    rng.shuffle(out)
    return out


def _truth(events: list[dict]) -> dict[str, Counter[tuple[str, ...]]]:  # type: ignore[type-arg]
    def month(doc: dict) -> str:  # type: ignore[type-arg]
        return datetime.fromisoformat(doc["occurred_at"]).astimezone(LONDON).strftime("%Y-%m")

    unique = {e["event_id"]: e for e in events}.values()
    approvals: dict[str, dict] = {}  # type: ignore[type-arg]
    truth: dict[str, Counter[tuple[str, ...]]] = {n: Counter() for n in (
        "received", "approved", "withdrawn")}
    for e in unique:
        if e["event_type"] == "feedback.received":
            truth["received"][(month(e), e["from_whom"], e.get("agency", "none"), e["kind"])] += 1
        elif e["event_type"] == "feedback.withdrawn":
            truth["withdrawn"][(month(e),)] += 1
        elif "recorded_at" in e or e["feedback_key"] not in approvals:
            approvals[e["feedback_key"]] = e  # the correction is the later recorded
    for e in approvals.values():
        if e["consent_to_publish"]:
            truth["approved"][(month(e), e["attribution"])] += 1
    return truth


def test_feedback_counts_equal_ground_truth_and_the_report_shows_them(
        taxonomy: Taxonomy, ctx: FactContext) -> None:
    events = _events(random.Random(27))
    state = CellState()
    processor = FamilyProcessor("cspa.feedback.v1", Decoder("feedback", taxonomy), ctx, state,
                                PipelineMetrics(CollectorRegistry()),
                                OpenWork(ctx.rules, ctx.calendar))
    table: dict = {}  # type: ignore[type-arg]
    for e in events:
        processor.process(e["feedback_key"].encode(), orjson.dumps(e), 0, None, table, now=2e9)
    agg = state.current(set(state.parts))
    cells = {name: Counter({labels: c.count for (fig, labels), c in agg.cells.items()
                            if fig == figure and c.count})
             for name, figure in (("received", "feedback_received"),
                                  ("approved", "feedback_quotes_approved"),
                                  ("withdrawn", "feedback_withdrawn"))}
    truth = _truth(events)
    assert cells == truth
    assert {m for m, *_ in truth["received"]} == {"2019-09", "2019-10"}

    report = compute_report(agg, ["2019-09", "2019-10"], taxonomy, ReportDefinitions())
    table_ = report.feedback.tables(report.axis)[0]
    for who in FROM:
        want = [sum(n for (m, w, _, _), n in truth["received"].items() if m == month and w == who)
                for month in ("2019-09", "2019-10")]
        assert [v.value for v in table_.row(who).cells] == [*want, sum(want)]
    assert table_.row("feedback_quotes_approved").cells[-1].value == sum(
        truth["approved"].values())
    assert table_.row("feedback_withdrawn").cells[-1].value == sum(truth["withdrawn"].values())
