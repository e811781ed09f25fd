"""Which partner is slow (issue 29.2): requests of MAP enquiries to partner agencies, their
answers, rule ``partner_response`` (4 working hours) and the open requests now.

Events go through the real decoder and fold into a MAP record; items come from open work,
facts from the MAP family and open requests from the ``PartnerRequests`` listener, under the
repository's rules file. Deadlines are counted here by hand on the calendar (November 2026:
Friday 13, the weekend, Monday 16), and the generated set is judged by
``tests.groundtruth`` (its own office-hour loops), not by the code.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stream.contract.decoder import FAMILIES, Decoder
from stream.contract.events import Event
from stream.contract.taxonomy import load_taxonomy
from stream.state import records
from stream.state.facts import FactContext
from stream.state.map_enquiries import map_facts
from stream.state.partner_responses import PartnerRequests, listen, requests_of
from stream.state.rules import load_rules
from stream.state.timeliness import STATES, OpenWork, items_of
from stream.state.working_days import WorkingCalendar
from stream.worker.live_gauges import PartnerRequestsCollector
from stream.worker.metrics import PipelineMetrics
from stream.worker.processor import CellState, FamilyProcessor
from tests import factories as f
from tests.groundtruth import TOPICS, expected, generate

ROOT = Path(__file__).resolve().parents[3]
RULES = load_rules(ROOT / "config" / "rules.toml")
CAL = WorkingCalendar()
TAXONOMY = load_taxonomy()
LONDON = ZoneInfo("Europe/London")
K = f.key("enquiry")
P = ("cspa.map-enquiries.v1", 0)
NOW = datetime(2027, 1, 1, tzinfo=LONDON).timestamp()  # the decoder's clock: after it all


def lon(d: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 11, d, hh, mm, tzinfo=LONDON)


#: asked Friday 13 November 2026 15:00 (GMT). Four office hours by hand: Fri 15-17 (2),
#: then Monday 16 09-11 (2): due Mon 11:00, at risk from Mon 10:00 (1 hour left).
ASKED = lon(13, 15)
DUE = lon(16, 11)


def record(*docs: dict) -> records.Record:  # type: ignore[type-arg]
    """The MAP record of ``docs``, folded in the order given."""
    decoder = Decoder("map_enquiries", TAXONOMY)
    rec: records.Record | None = None
    for doc in docs:
        event = decoder.decode(K.encode(), orjson.dumps(doc), NOW)
        assert isinstance(event, Event), event
        kind, slot, value = records.slot_of(event)
        rec = records.fold(rec, kind, slot, value, 0) or rec
    assert rec is not None
    return rec


def partner_facts(rec: records.Record, ctx: FactContext) -> list[tuple[str, tuple[str, ...],
                                                                        float | None]]:
    return sorted((fact for fact in map_facts(rec, ctx) if fact[0].startswith("partner_")),
                  key=repr)


def listener(rec: records.Record) -> PartnerRequests:
    work = OpenWork(RULES, CAL)
    requests = listen(work, TAXONOMY.ordered("agency"))
    work.update(P, records.table_key("map", K), rec)
    return requests


def test_four_office_hours_over_the_weekend(ctx: FactContext) -> None:
    rec = record(f.partner_requested(K, ASKED, "police"),
                 f.partner_responded(K, DUE, "police"))  # on the deadline: in time
    assert partner_facts(rec, ctx) == [
        ("partner_requests", ("2026-11", "police"), None),
        ("partner_response_working_hours", ("2026-11", "police"), pytest.approx(4.0))]
    late = record(f.partner_requested(K, ASKED, "police"),
                  f.partner_responded(K, lon(16, 11, 1), "police"))
    assert ("partner_responses_late", ("2026-11", "police"), None) in partner_facts(late, ctx)
    [item] = [i for i in items_of(late, dict(RULES), CAL) if i.rule == "partner_response"]
    assert (item.deadline_ts, item.warn_ts) == (DUE.timestamp(), lon(16, 10).timestamp())


def test_one_item_per_agency_and_breaches_like_any_rule() -> None:
    rec = record(f.partner_requested(K, ASKED, "police"), f.partner_requested(K, ASKED, "gp"),
                 f.partner_responded(K, lon(16, 12), "gp"))  # gp late by an hour
    items = sorted((i for i in items_of(rec, dict(RULES), CAL) if i.rule == "partner_response"),
                   key=lambda i: i.closed_ts or 0)
    assert [(i.closed_ts, i.team) for i in items] == [(None, "map"),
                                                      (lon(16, 12).timestamp(), "map")]
    work = OpenWork(RULES, CAL)
    work.update(P, records.table_key("map", K), rec)
    now = lon(16, 14).timestamp()  # police still unanswered, past its deadline
    assert work.states(now, [P])[("partner_response", "map", "overdue")] == 1
    assert work.breaches(now, [P]) == {("partner_response", 1, "2026-11"): 2}
    [due] = work.due_list(now, [P], 10)
    assert (due["rule"], due["key"], due["deadline"], due["agency"]) == (
        "partner_response", K, DUE.isoformat(), "police")  # whom to chase


def test_states_move_with_the_clock() -> None:
    requests = listener(record(f.partner_requested(K, ASKED, "police")))

    def police(at: datetime) -> tuple[dict[str, int], float]:
        state = requests.evaluate(at.timestamp(), [P])["police"]
        return {s: n for s, n in state.states.items() if n}, state.oldest_working_hours

    assert police(lon(13, 16)) == ({"on_time": 1}, pytest.approx(1.0))
    assert police(lon(16, 9, 30)) == ({"due_today": 1}, pytest.approx(2.5))
    assert police(lon(16, 10)) == ({"at_risk": 1}, pytest.approx(3.0))
    assert police(lon(16, 11)) == ({"overdue": 1}, pytest.approx(4.0))
    assert requests.evaluate(lon(16, 11).timestamp(), [("other", 0)])["police"].states == \
        dict.fromkeys(STATES, 0)  # a partition not owned


def test_answer_first_duplicates_and_corrections_are_exact(ctx: FactContext) -> None:
    asked, answered = f.partner_requested(K, ASKED, "camhs"), f.partner_responded(
        K, lon(16, 10), "camhs")
    once = record(asked, answered)
    assert record(answered, asked) == once  # the answer waits for its request
    assert record(asked, answered, answered, asked) == once  # delivered twice
    assert requests_of(once) == [("camhs", ASKED.timestamp(), lon(16, 10).timestamp())]
    assert listener(record(answered)).evaluate(NOW, [P])["camhs"].states == dict.fromkeys(
        STATES, 0)  # an answer alone opens nothing
    # the request re-sent on Monday 09:00: the later one counts, 1 office hour to 10:00
    again = record(asked, answered, f.partner_requested(K, lon(16, 9), "camhs"))
    assert partner_facts(again, ctx)[1] == (
        "partner_response_working_hours", ("2026-11", "camhs"), pytest.approx(1.0))


def test_completions_count_as_without_partners(ctx: FactContext) -> None:
    base = (f.map_opened(K, ASKED), f.map_completed(K, lon(16, 12), ["police", "gp"]))
    plain = record(*base)
    asked = record(*base, f.partner_requested(K, ASKED, "police"))
    assert [x for x in map_facts(asked, ctx) if not x[0].startswith("partner_")] == \
        map_facts(plain, ctx)
    assert {i.rule for i in items_of(plain, dict(RULES), CAL)} == {"map_enquiry"}


def test_the_gauges_carry_only_agencies_and_states() -> None:
    requests = listener(record(f.partner_requested(K, ASKED, "police")))
    registry = CollectorRegistry()
    now = lon(16, 12).timestamp()
    registry.register(PartnerRequestsCollector(requests, lambda: now, lambda: {P}))
    text = generate_latest(registry).decode()
    assert K not in text
    families = {fam.name: fam for fam in text_string_to_metric_families(text)}
    agencies = set(TAXONOMY.ordered("agency"))
    opened = {(s.labels["agency"], s.labels["state"]): s.value
              for s in families["cspa_partner_requests_open"].samples}
    assert set(opened) == {(a, s) for a in agencies for s in STATES}
    assert {k: v for k, v in opened.items() if v} == {("police", "overdue"): 1}
    oldest = {s.labels["agency"]: s.value
              for s in families["cspa_partner_request_oldest_working_hours"].samples}
    assert set(oldest) == agencies and oldest["police"] == pytest.approx(5.0)
    assert all(re.fullmatch(r"[a-z_]+", a) for a in oldest)


@pytest.fixture(scope="module")
def generated(taxonomy, ctx):  # type: ignore[no-untyped-def]
    """Generated partner requests (tests.groundtruth) through the worker's processors."""
    data = generate(seed=29, start=date(2019, 7, 22), days=70, contacts=0, calls=0,
                    enquiries=0, audits=0, bad=0, partners=150)
    state, work = CellState(), OpenWork(ctx.rules, ctx.calendar)
    metrics = PipelineMetrics(CollectorRegistry())
    processors = {topic: (FamilyProcessor(topic, Decoder(family, taxonomy), ctx, state,
                                          metrics, work), {})
                  for family, topic in TOPICS.items() if family in FAMILIES}
    for m in data.messages:
        processor, table = processors[m.topic]
        processor.process(m.key, m.value, 0, None, table, now=2e9)
    return expected(data), state.current(set(state.parts))


def test_the_figures_equal_independent_ground_truth(generated) -> None:  # type: ignore[no-untyped-def]
    truth, agg = generated

    def want(name: str) -> dict[tuple[str, str], float]:
        return {(dict(ls)["month"], dict(ls)["agency"]): v for (n, ls), v in truth.items()
                if n == name}

    requests = {labels: cell.count for labels, cell in agg.figure("partner_requests")}
    late = {labels: cell.count for labels, cell in agg.figure("partner_responses_late")}
    hours = dict(agg.figure("partner_response_working_hours"))
    assert requests == want("cspa_partner_requests")
    assert late == want("cspa_partner_responses_late") and sum(late.values()) > 10
    assert {k: c.count for k, c in hours.items()} == want(
        "cspa_partner_response_working_hours_count")
    sums = want("cspa_partner_response_working_hours_sum")
    assert set(sums) == set(hours)
    for labels, total in sums.items():
        assert hours[labels].total == pytest.approx(total, abs=1e-3)


def test_open_requests_follow_open_work_through_checkpoints_and_rebalances() -> None:
    rec = record(f.partner_requested(K, ASKED, "police"), f.partner_requested(K, ASKED, "gp"))
    work = OpenWork(RULES, CAL)
    requests = listen(work, TAXONOMY.ordered("agency"))
    work.update(P, records.table_key("map", K), rec)
    now = lon(16, 12).timestamp()

    def overdue(r: PartnerRequests) -> dict[str, int]:
        return {a: s.states["overdue"] for a, s in r.evaluate(now, [P]).items()
                if s.states["overdue"]}

    assert overdue(requests) == {"police": 1, "gp": 1}
    fresh = OpenWork(RULES, CAL)  # a checkpoint restored into a new process
    restored = listen(fresh, TAXONOMY.ordered("agency"))
    fresh.restore(P, work.export(P))
    assert overdue(restored) == {"police": 1, "gp": 1}
    fresh.update(P, records.table_key("map", K), record(
        f.partner_requested(K, ASKED, "police"), f.partner_requested(K, ASKED, "gp"),
        f.partner_responded(K, lon(16, 11, 30), "gp")))
    assert overdue(restored) == {"police": 1}
    fresh.drop_topic(P[0])  # the partition moved away
    assert overdue(restored) == {}
    work.drop_partition(P)
    assert overdue(requests) == {}


def test_stale_requests_are_skipped_yet_every_count_equals_judging_each_request() -> None:
    # Step 48: a request found stale is not judged again until its record changes. With
    # records changing between scrapes, the clock moving on (and once back), every
    # agency's counts and oldest age equal judging every request afresh (OpenWork's own
    # stale and state), as evaluate did before.
    import random

    rng = random.Random(48)
    agencies = TAXONOMY.ordered("agency")
    work = OpenWork(RULES, CAL, horizon=5.0)
    requests = listen(work, agencies)

    def fold(i: int) -> None:
        asked = datetime(2026, rng.randint(10, 12), rng.randint(1, 28), rng.randint(8, 17),
                         tzinfo=LONDON)
        asked_of = [(asked, rng.choice(agencies)) for _ in range(rng.randint(1, 3))]
        docs = [f.partner_requested(K, at, agency) for at, agency in asked_of]
        if rng.random() < 0.3:
            docs.append(f.partner_responded(K, asked_of[0][0], asked_of[0][1]))
        work.update(P, records.table_key("map", f"e{i}"), record(*docs))

    def afresh(now: float) -> dict[str, tuple[dict[str, int], float]]:
        out = {a: (dict.fromkeys(STATES, 0), 0.0) for a in agencies}
        for reqs in requests.values_of([P]):
            for agency, item in reqs:
                if not work.stale(item, now):
                    states, oldest = out[agency]
                    states[work.state(item, now)] += 1
                    age = CAL.working_hours_between_ts(item.start_ts, max(now, item.start_ts))
                    out[agency] = (states, max(oldest, age))
        return out

    for i in range(120):
        fold(i)
    stale_seen = 0
    for day in (2, 9, 16, 30, 9, 30):  # the clock moves on, then back once
        now = datetime(2026, 12, day, 12, tzinfo=LONDON).timestamp()
        for i in rng.sample(range(160), 15):  # records change (some new) between scrapes
            fold(i)
        got, want = requests.evaluate(now, [P]), afresh(now)
        assert {a: s.states for a, s in got.items()} == {a: w[0] for a, w in want.items()}
        assert {a: s.oldest_working_hours for a, s in got.items()} == pytest.approx(
            {a: w[1] for a, w in want.items()})
        stale_seen += sum(len(v) for v in requests.values_of([P])) - \
            sum(len(v) for v in requests._live.get(P, {}).values())
    assert stale_seen > 0  # requests were set aside as stale
