"""Every panel query of every dashboard returns data from a real worker and Prometheus.

Broker, worker and Prometheus (``tests/integration/prometheus.py``) are real. The worker's
clock (``CSPA_CLOCK_FILE``) is frozen at ``T``: 12:30 (Europe/London) on the most recent
working day whose 12:30 has passed, so "today", "this hour" and the open-item states are
the same whenever the test runs. It is fed, through the broker:

* ``stream.upstream.simulator.generate`` traffic (scale 0.2) from the first day of the month two
  months before ``T``'s up to ``T`` (``until=T``): calls, emails, contacts, decisions,
  progressions, early-help allocations, MAP enquiries, audits and feedback over three months;
* a live set in ``T``'s clock hour (12:00-12:30): calls answered and abandoned on both
  queues, a contact received and decided, an email, a MAP enquiry completed at Level 3;
* one audit per team of the taxonomy (the simulator grades only the MAP and EHH teams,
  so without it the RFS audit panel is empty: see ``test_simulator_audits_two_teams``),
  a learning review, a dip sample and a quote approved then withdrawn (rare at scale 0.2);
* open items in every state at ``T``, for every rule watched as open work (their deadlines
  worked out by hand below);
* a short history: a few contacts (received and decided) and MAP enquiries (opened and
  completed) in each of the 10 months before the simulated three, so the current month
  has the 12 months of data its expected range needs (the band panels);
* after the rest, one malformed message (dead-lettered).

Then every target expression of every panel in ``grafana/dashboards/*.json`` is run as an
instant query, with the template variables substituted: ``$month`` -> the months present
(``(2026-09|2026-10|2026-11)``), ``$basis`` -> each of its values (1: working days,
0: calendar days), ``$rule`` -> ``.*``, ``$__range`` -> 1h, ``$__rate_interval`` -> 1m,
``$__interval`` -> 15s, ``${__to:date:YYYY-MM}`` -> ``T``'s month (the worker's "now"; the
real current month unless the test runs before 12:30 on a month's first working day).
Substitution reuses ``tests/unit/test_grafana.py`` (its panel walk, and its check that no
template variable is left). A query passes with at least one sample that is a number:
a NaN-only answer (e.g. a quantile of zero rates) draws nothing in Grafana either.
"""

from __future__ import annotations

import math
import time
from datetime import date, datetime, timedelta
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from stream.contract.taxonomy import load_taxonomy
from stream.upstream.simulator import generate
from tests import factories as f
from tests.groundtruth import TOPICS, Dataset, Message, is_working
from tests.integration.conftest import start_worker
from tests.integration.feed import message, produce_checked
from tests.integration.harness import consumed, total, wait_for
from tests.integration.prometheus import PrometheusProcess
from tests.unit import test_grafana as tg

pytestmark = pytest.mark.integration

LONDON = ZoneInfo("Europe/London")
SCALE = 0.2
STATES = ("on_time", "due_today", "at_risk", "overdue")
#: values for the variables Grafana fills in itself (same keys as test_grafana.GLOBALS)
GLOBALS = {"$__rate_interval": "1m", "${__rate_interval}": "1m", "$__range": "1h",
           "${__range}": "1h", "$__interval": "15s", "${__interval}": "15s"}


def frozen_now(real: datetime) -> datetime:
    """12:30 London on the latest working day (England and Wales) not after ``real``."""
    d = real.astimezone(LONDON).date()
    while not (is_working(d) and datetime.combine(d, clock(12, 30), LONDON) <= real):
        d -= timedelta(1)
    return datetime.combine(d, clock(12, 30), LONDON)


def working_days_before(d: date, n: int) -> date:
    for _ in range(n):
        d -= timedelta(1)
        while not is_working(d):
            d -= timedelta(1)
    return d


def local(d: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(d, clock(hh, mm), LONDON)


def open_items(now: datetime) -> Dataset:
    """Items of every watched rule in every state at ``now`` (12:30 on working day D).

    With the clock opening at ``start`` on working day D - n (n = the rule's timescale) the
    deadline is D at the same time, and the warning 4 office hours (09:00-17:00) earlier:
    started 10:00 -> due 10:00 (overdue at 12:30); 14:00 -> due 14:00, at risk from 10:00;
    16:45 -> due 16:45, at risk from 12:45 (due today at 12:30); ``now`` - 1 min: on time.
    """
    ds, day = Dataset(), now.date()
    starts = {"overdue": (10, 0), "at_risk": (14, 0), "due_today": (16, 45)}

    def when(state: str, days: int) -> datetime:
        if state == "on_time":
            return now - timedelta(minutes=1)
        return local(working_days_before(day, days), *starts[state])

    for state in STATES:
        c, m = f.key(f"open-contact-{state}"), f.key(f"open-map-{state}")
        ds.add("contacts", c, f.received(c, when(state, 1)))
        ds.add("map_enquiries", m, f.map_opened(m, when(state, 1)))
        # early_help_allocation (2 working days): received, decided, progressed; no allocation
        e, t = f.key(f"open-eh-{state}"), when(state, 2)
        ds.add("contacts", e, f.received(e, t - timedelta(minutes=30)))
        ds.add("contacts", e, f.decided(e, t - timedelta(minutes=10), outcome="level_2_eh",
                                        pathway="progress_to_eh"))
        ds.add("contacts", e, f.base("contact.progressed", t, contact_key=e,
                                     destination="early_help"))
        # lado_referral (1 working day): decided LADO, not yet progressed to social care
        lado, t = f.key(f"open-lado-{state}"), when(state, 1)
        ds.add("contacts", lado, f.received(lado, t - timedelta(minutes=20)))
        ds.add("contacts", lado, f.decided(lado, t, outcome="lado"))
    # partner_response (4 office hours, warned 1 hour ahead), requests unanswered at 12:30:
    # asked the working day before at 14:00 -> due 10:00 today (overdue); today 09:00 ->
    # due 13:00, at risk from 12:00; today 10:00 -> due 14:00, at risk from 13:00 (due
    # today). On time cannot be at 12:30: any request made by then is due today.
    p = f.key("open-partners")
    for agency, asked in (("camhs", local(working_days_before(day, 1), 14)),
                          ("gp", local(day, 9)), ("police", local(day, 10))):
        ds.add("map_enquiries", p, f.partner_requested(p, asked, agency))
    return ds


#: the agency open_items leaves unanswered in each state of rule partner_response
PARTNER_STATES = {"overdue": "camhs", "at_risk": "gp", "due_today": "police"}


def live_hour(now: datetime, ds: Dataset) -> None:
    """Traffic in ``now``'s clock hour (12:00-12:30) and an audit per team this month."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    for n, queue in enumerate(("rfs", "consultation")):
        for i, wait in enumerate((8.0, 45.0)):
            k = f.key(f"live-call-{queue}-{i}")
            queued = hour + timedelta(minutes=5 + n + i)
            ds.add("calls", k, f.base("call.queued", queued, call_key=k, queue=queue,
                                      source_system="telephony"))
            ds.add("calls", k, f.answered(k, queued + timedelta(seconds=wait), wait, queue))
            ds.add("calls", k, f.base("call.ended", queued + timedelta(minutes=4), call_key=k,
                                      queue=queue, handle_seconds=200.0,
                                      source_system="telephony"))
        k = f.key(f"live-call-{queue}-abandoned")
        ds.add("calls", k, f.abandoned(k, hour + timedelta(minutes=12), 30.0, queue))
    c = f.key("live-contact")
    ds.add("contacts", c, f.received(c, hour + timedelta(minutes=10), channel="phone"))
    ds.add("contacts", c, f.decided(c, hour + timedelta(minutes=20), outcome="level_1",
                                    pathway="information"))
    e = f.key("live-email")
    ds.add("contacts", e, f.base("email.resolved", hour + timedelta(minutes=15),
                                 enquiry_key=e, source_system="mailbox"))
    m = f.key("live-map")
    ds.add("map_enquiries", m, f.map_opened(m, hour - timedelta(hours=3)))
    ds.add("map_enquiries", m, f.map_completed(m, hour + timedelta(minutes=20),
                                               ["police", "school_nursing"], outcome="level_3",
                                               service="tys"))
    for team in load_taxonomy().ordered("team"):
        a = f.key(f"live-audit-{team}")
        ds.add("audits", a, f.audit(a, hour - timedelta(hours=1), team=team, grade="good"))
    # at scale 0.2 the simulator's monthly learning review and weekly dip sample may not come
    r, d = f.key("live-review"), f.key("live-dip")
    ds.add("audits", r, f.review(r, hour - timedelta(hours=1)))
    ds.add("audits", d, f.dip_sample(d, hour - timedelta(hours=1), 5))
    # and its few approved quotes a month (a withdrawal rarer still) may not either
    fb = f.key("live-feedback")
    for e in (f.feedback(fb, hour - timedelta(hours=2)),
              f.quote_approved(fb, hour - timedelta(hours=1), "v1." + "Q" * 60),
              f.withdrawn(fb, hour)):
        ds.add("feedback", fb, e)


def history(now: datetime, ds: Dataset) -> None:
    """2-6 contacts and MAP enquiries on the 10th of each of the 10 months before T - 2."""
    for back in range(3, 13):
        year, month = divmod(now.year * 12 + now.month - 1 - back, 12)
        day = local(date(year, month + 1, 10), 10)
        for i in range(2 + back % 5):
            c, m = f.key(f"history-contact-{back}-{i}"), f.key(f"history-map-{back}-{i}")
            ds.add("contacts", c, f.received(c, day))
            ds.add("contacts", c, f.decided(c, day + timedelta(hours=1), outcome="level_1",
                                            pathway="information"))
            ds.add("map_enquiries", m, f.map_opened(m, day))
            ds.add("map_enquiries", m, f.map_completed(m, day + timedelta(hours=2), ["police"],
                                                       outcome="level_3", service="tys"))


def substitutions(board: dict, months: list[str], month: str) -> list[dict[str, str]]:
    """One mapping of variable text -> value per combination this board needs."""
    base = {"${__to:date:YYYY-MM}": month, **GLOBALS}
    assert base.keys() == tg.GLOBALS.keys(), "a Grafana variable without a test value"
    combos: list[dict[str, str]] = [{}]
    for var in board.get("templating", {}).get("list", []):
        name = var["name"]
        if var["type"] == "custom":
            values = [o["value"] for o in var["options"]]
        elif name == "month":
            values = ["(" + "|".join(months) + ")"]
        elif name == "rule":
            values = [".*"]
        else:
            raise AssertionError(f"no test value for ${name}")
        combos = [{**c, f"${{{name}}}": v, f"${name}": v} for c in combos for v in values]
    return [{**base, **c} for c in combos]


def substitute(expr: str, board: dict, values: dict[str, str]) -> str:
    # longest names first: "$month" must not eat the start of "$monthly"
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace(name, values[name])
    return tg.substituted(expr, board)  # fails on any variable left over


def panel_queries(months: list[str], month: str) -> list[tuple[str, str]]:
    """(where, query) for every panel target and every variable combination."""
    out = []
    for file, board in tg.dashboards().items():
        combos = substitutions(board, months, month)
        for panel in tg.panels(board):
            for target in panel["targets"]:
                for values in combos:
                    where = f"{file} #{panel['id']} {panel['title']!r} {target['refId']}"
                    if len(combos) > 1:
                        where += " " + ",".join(f"{k}={v}" for k, v in values.items()
                                                if k.startswith("${") and "__" not in k)
                    out.append((where, substitute(target["expr"], board, values)))
    return out


def numbers(result: list[dict[str, Any]]) -> list[float]:
    return [v for v in (float(r["value"][1]) for r in result) if not math.isnan(v)]


def test_simulator_audits_two_teams():
    """Documents why the feed adds audits: the simulator grades only MAP and EHH audits."""
    events = generate(date(2026, 9, 1), 60, seed=5, scale=1.0, taxonomy=load_taxonomy())
    teams = {e.team for e in events if e.event_type == "audit.graded"}  # type: ignore[attr-defined]
    assert teams == {"map", "ehh"}


def test_every_panel_query_returns_data(broker, workers, tmp_path):
    started = time.monotonic()
    now = frozen_now(datetime.now(LONDON))
    clock_file = tmp_path / "clock.txt"
    clock_file.write_text(now.isoformat() + "\n")
    worker = start_worker(broker, tmp_path, workers, CSPA_CLOCK_FILE=str(clock_file))
    prom = PrometheusProcess(tmp_path / "prometheus", [worker.port])
    with prom:
        prom.wait_for_targets()
        # Counters are scraped at 0 before the traffic, so rate() and increase() see it.
        prom.wait_for_sample("cspa_events_consumed_total")

        year, month = divmod(now.year * 12 + now.month - 1 - 2, 12)
        first = date(year, month + 1, 1)  # the first day of the month two months before T's
        days = (now.date() - first).days + 1
        events = list(generate(first, days, seed=5, scale=SCALE, taxonomy=load_taxonomy(),
                               until=now))
        ds = open_items(now)
        live_hour(now, ds)
        history(now, ds)
        messages = [message(e) for e in events] + ds.messages
        sent = produce_checked(broker.bootstrap, messages)
        wait_for(lambda: consumed(worker) >= sent, 120, f"{sent} events consumed", interval=1)
        bad = [Message(TOPICS["contacts"], b"bad", b"{not json", int(time.time() * 1000))]
        sent += produce_checked(broker.bootstrap, bad)
        wait_for(lambda: consumed(worker) >= sent, 30, "the malformed message consumed")
        samples = worker.samples()
        assert total(samples, "cspa_events_rejected_total") == 1
        for state in STATES:  # the feed really left open items in every state
            for rule in ("contact_decision", "map_enquiry", "early_help_allocation",
                         "lado_referral"):
                assert total(samples, "cspa_open_items", rule=rule, state=state) >= 1, (rule,
                                                                                       state)
        for state, agency in PARTNER_STATES.items():  # the partner panels' own items
            assert total(samples, "cspa_partner_requests_open", agency=agency,
                         state=state) >= 1, (agency, state)
        wait_for(lambda: prom.query('increase(cspa_events_rejected_total[1m]) > 0'), 30,
                 "the rejection scraped")
        time.sleep(5)  # a few more scrapes inside every [1m] window

        months = sorted(r["metric"]["month"] for r in
                        prom.query("group by (month) (cspa_contacts_decided)"))
        assert len(months) >= 3 and months[-1] == now.strftime("%Y-%m"), months
        # The dashboards' query variables list something.
        for label, metric in (("month", "cspa_contacts_decided"),
                              ("rule", "cspa_open_item_oldest_workdays")):
            assert prom.api(f"label/{label}/values", **{"match[]": metric}), label

        report, empty = [], []
        for where, expr in panel_queries(months, now.strftime("%Y-%m")):
            result = prom.query(expr)
            good = numbers(result)
            report.append(f"{len(result):4d} {len(good):4d}  {where}")
            if not good:
                empty.append(f"{where}: {len(result)} samples, none a number\n    {expr}")
        print(f"\nT = {now.isoformat()}, months {months}, {sent} events, "
              f"{time.monotonic() - started:.0f} s\nsamples numbers  panel")
        print("\n".join(report))
        assert len(report) > 100
        assert not empty, "panels without data:\n" + "\n".join(empty)
        # the partner ranking shows requests, not only zeros: the simulator's and the above
        ranked = {r["metric"]["agency"]: float(r["value"][1]) for r in prom.query(
            'sum by (agency) (cspa_partner_requests_open{state="overdue"})')}
        assert ranked["camhs"] >= 1 and max(ranked.values()) >= 1, ranked
        assert prom.query("sum(cspa_partner_requests) > 0")
