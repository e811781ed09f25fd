"""Every alert of the repository's rule files fires on a real worker, scraped by a real Prometheus.

``test_prometheus_alerts.py`` runs the rule files exactly as they are, so alerts with long
``for:`` waits are only seen pending there. Here the rules are the same expressions with
the waits removed (``quick_rules``: ``for: 0s``, the 15-minute stall shortened; the waits
are checked by promtool in ``grafana/prometheus/tests``; office hours come from the
worker's own ``cspa_working_time``, on its clock file), and the worker is put, for real,
into every condition an alert watches:

* the alert path's Watchdog fires from the first evaluation;
* the worker is not up yet when Prometheus starts scraping (CspaWorkerDown; and, as no
  worker series exists at all, CspaWorkersMissing, CspaWorkerNotReady and
  CspaPartitionUnowned through their ``absent()`` branches), then starts
  behind a 200,000-message backlog (CspaConsumerLagHigh; large enough that the lag
  outlasts several 1 s scrapes at the worker's replay rate, 30,000-40,000 events/s);
* its clock says Tuesday 24 November 2026 12:30 (a working day: the worker's
  cspa_working_time is 1, so the office-hours alerts may fire); open work of every timescale rule is
  overdue or within its warning (the four dedicated sets, and the catch-all through an
  extra rule, ``contact_triage``, in the worker's rules file); each rule has one item
  closed late, a new breach against a backfilled breach-free history; a complaint
  unanswered past its 10 working days (ComplaintStage1Due); a MAP enquiry's request to
  CAMHS unanswered past its 4 working hours, while GP's is only at risk and police's was
  answered in time (PartnerResponseOverdue, for CAMHS alone);
* 12 calls this hour: answered after 90 s or abandoned (service level and abandoned rate,
  this hour and today), and a call queued at 12:25 and still waiting (CallWaitingTooLong:
  its wait, 300 s at the worker's clock, is over 120 s);
* an advisor in post with no audit this month, in November's last 5 working days
  (AdvisorAuditsBehind);
* the worker process stopped (SIGSTOP) for 2.5 s and resumed: its event loop wakes its
  lag timer that late, a real stall (WorkerLoopStalled); again every 30 s, 3 times at
  most, while the alert has not fired (a failure then shows what Prometheus scraped);
* a malformed message (CspaEventsRejected), then nothing for a while (CspaPipelineStalled).

The test watches /api/v1/alerts and passes when every alert name in the rule files has
been firing, each with labels from the closed sets.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import factories as f
from tests.groundtruth import TOPICS, Dataset, Message
from tests.integration.feed import produce_checked
from tests.integration.harness import WorkerProcess, total, wait_for
from tests.integration.prometheus import PrometheusProcess, backfill, quick_rules, rule_files

pytestmark = pytest.mark.integration

NOW = "2026-11-24T12:30:00+00:00"  # the worker's clock: Tuesday, half past noon
ROOT = Path(__file__).resolve().parents[2]
WATCHED = ("contact_decision", "map_enquiry", "early_help_allocation", "lado_referral")
EXTRA_RULE = """
[[rule]]
name = "contact_triage"
version = 1
team = "rfs"
opens = "contact.received"
closes = "contact.decided"
clock = "working_hours"
timescale = 2
warn_working_hours = 1
source = "test: a rule without a dedicated alert set"
"""
BACKLOG = 200_000


def at(text: str) -> datetime:
    return datetime.fromisoformat(text + ":00+00:00")


def alert_names() -> set[str]:
    return {rule["alert"] for path in rule_files()
            for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"] if "alert" in rule}


def scenario() -> Dataset:
    """Open, at-risk and late items of every watched rule, and a bad hour of calls."""
    ds = Dataset()

    def contact(name: str, *events: dict) -> None:
        k = f.key(name)
        for event in events:
            ds.add("contacts", k, {**event, "contact_key": k})

    def progressed(when: str, destination: str) -> dict:
        return f.base("contact.progressed", at(when), destination=destination)

    # contact_decision (1 wd), and contact_triage (2 working hours) on the same contacts
    contact("cd-overdue", f.received("", at("2026-11-20T10:00")))
    contact("cd-risk", f.received("", at("2026-11-23T14:00")))
    contact("cd-late", f.received("", at("2026-11-19T10:00")),
            f.decided("", at("2026-11-23T09:00")))
    contact("triage-risk", f.received("", at("2026-11-24T11:00")))
    # early_help_allocation (2 wd from the progression to early help)
    for name, start in (("eh-overdue", "2026-11-18T10:00"), ("eh-risk", "2026-11-20T14:00"),
                        ("eh-late", "2026-11-16T10:00")):
        contact(name, f.received("", at(start)), f.decided("", at(start)),
                progressed(start, "early_help"))
    contact("eh-late", f.base("early_help.allocated", at("2026-11-19T10:00")))
    # lado_referral (1 wd from a LADO decision to the progression to social care)
    for name, start in (("lado-overdue", "2026-11-20T10:00"), ("lado-risk", "2026-11-23T14:00"),
                        ("lado-late", "2026-11-19T10:00")):
        contact(name, f.received("", at(start)), f.decided("", at(start), outcome="lado"))
    contact("lado-late", progressed("2026-11-23T09:00", "childrens_social_care"))
    # map_enquiry (1 wd)
    for name, opened in (("map-overdue", "2026-11-20T10:00"), ("map-risk", "2026-11-23T14:00"),
                         ("map-late", "2026-11-19T10:00")):
        ds.add("map_enquiries", f.key(name), f.map_opened(f.key(name), at(opened)))
    late = f.key("map-late")
    ds.add("map_enquiries", late, f.map_completed(late, at("2026-11-23T09:00"), ["police", "gp"]))
    # complaint_stage1 (10 wd): received Thu 5 Nov 10:00, due Thu 19 Nov 10:00, unanswered
    complaint = f.key("complaint-overdue")
    ds.add("feedback", complaint, f.feedback(complaint, at("2026-11-05T10:00"), kind="complaint"))
    # partner_response (4 working hours): CAMHS asked Mon 23 Nov 10:00, due 14:00, still
    # unanswered (overdue); GP asked Tue 09:00, due 13:00 (at risk at 12:30); police asked
    # Mon 10:00 and answered at 11:00 (closed in time)
    partners = f.key("map-partners")
    for event in (f.partner_requested(partners, at("2026-11-23T10:00"), "camhs"),
                  f.partner_requested(partners, at("2026-11-24T09:00"), "gp"),
                  f.partner_requested(partners, at("2026-11-23T10:00"), "police"),
                  f.partner_responded(partners, at("2026-11-23T11:00"), "police")):
        ds.add("map_enquiries", partners, event)
    # 12 calls since 12:00: half answered after 90 s, half abandoned after 60 s
    for i in range(12):
        k = f.key(f"call-{i}")
        when = at(f"2026-11-24T12:{i:02d}")
        ds.add("calls", k, f.answered(k, when, 90) if i % 2 else f.abandoned(k, when, 60))
    waiting = f.key("call-waiting")
    ds.add("calls", waiting, f.queued(waiting, at("2026-11-24T12:25"), "consultation"))
    # an rfs advisor in post since 2 November with no audit this month; 5 working days of
    # November are left on the worker's clock (24-27 and 30): AdvisorAuditsBehind
    advisor = f.key("advisor-unaudited")
    ds.add("audits", advisor, f.advisor(advisor, at("2026-11-02T09:00"), team="rfs"))
    return ds


def backlog() -> list[Message]:
    """One valid call event, many times over: cheap to process, but it is lag."""
    k = f.key("backlog")
    event = f.answered(k, at("2026-10-01T10:00"), 5)
    ds = Dataset()
    ds.add("calls", k, event)
    return ds.messages * BACKLOG


def breach_history(instance: str, minutes: int = 40) -> list[str]:
    """Every watched rule at 0 breaches each minute of the last ``minutes`` (OpenMetrics)."""
    now = int(time.time())
    lines = ["# TYPE cspa_breaches gauge"]
    for rule in WATCHED:
        labels = (f'instance="{instance}",job="cspa-worker",month="2026-11",'
                  f'rule="{rule}",rule_version="1"')
        lines += [f"cspa_breaches{{{labels}}} 0 {now - 60 * m}" for m in range(minutes, 0, -1)]
    return lines


class FiringWatch(threading.Thread):
    """Polls Prometheus and keeps the first firing instance of every alert name, and the
    label sets of every instance seen firing (``labelled``)."""

    def __init__(self, prom: PrometheusProcess) -> None:
        super().__init__(daemon=True)
        self.prom, self.seen, self.done = prom, {}, threading.Event()
        self.labelled: dict[str, list[dict[str, str]]] = {}

    def run(self) -> None:
        while not self.done.is_set():
            try:
                for a in self.prom.alerts():
                    if a["state"] == "firing":
                        self.seen.setdefault(a["labels"]["alertname"], a)
                        found = self.labelled.setdefault(a["labels"]["alertname"], [])
                        if a["labels"] not in found:
                            found.append(a["labels"])
            except Exception:  # noqa: BLE001 - keep polling through a slow answer
                pass
            self.done.wait(0.5)


def stall(worker: WorkerProcess, prom: PrometheusProcess, seconds: float = 2.5) -> None:
    """Hold the worker's event loop for real: stop the process, then let it run on."""
    prom.wait_for_sample("cspa_event_loop_lag_seconds_count")  # the count before the stall
    assert worker.proc is not None
    os.kill(worker.proc.pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(worker.proc.pid, signal.SIGCONT)


class Stalls:
    """Stalls of the worker's loop, one more each ``EVERY`` seconds (``MAX`` at most)
    while WorkerLoopStalled has not fired: the alert is for a loop that stalls "again
    and again", and one stall could fall between the scrapes that would show it."""

    EVERY, MAX = 30.0, 3

    def __init__(self, worker: WorkerProcess, prom: PrometheusProcess,
                 watch: FiringWatch) -> None:
        self.worker, self.prom, self.watch = worker, prom, watch
        self.times: list[float] = []

    def next(self) -> bool:
        """Stall once more if one is due; always False (a ``wait_for`` check's part)."""
        due = not self.times or time.time() - self.times[-1] > self.EVERY
        if "WorkerLoopStalled" not in self.watch.seen and len(self.times) < self.MAX and due:
            stall(self.worker, self.prom)
            self.times.append(round(time.time(), 1))
        return False

    def evidence(self) -> str:
        """What Prometheus holds of the stalls, for a failure's message."""
        lag = "cspa_event_loop_lag_seconds"
        exprs = (f'({lag}_count - ignoring(le) {lag}_bucket{{le="1.0"}})[3m:1s]',  # > 1 s
                 'up{job="cspa-worker"}[3m]',
                 'max_over_time(scrape_duration_seconds{job="cspa-worker"}[3m])')
        found = {e: [_changes(r["values"]) if "values" in r else r["value"]
                     for r in self.prom.query(e)] for e in exprs}
        return f"stalls at {self.times} (unix time), now {time.time():.0f}; {found}"


def _changes(values: list[list[Any]]) -> list[tuple[float, str]]:
    """A range query's samples where the value changes: (unix time, value)."""
    out: list[tuple[float, str]] = []
    for at, value in values:
        if not out or out[-1][1] != value:
            out.append((round(float(at), 1), value))
    return out


def test_every_alert_fires_on_a_real_worker(broker, workers, tmp_path):
    from stream.cli import ensure_topics
    from stream.settings import Settings

    names = alert_names()
    assert len(names) == 30, sorted(names)  # a new alert must join this test
    clock, rules = tmp_path / "clock.txt", tmp_path / "rules.toml"
    clock.write_text(NOW + "\n")
    rules.write_text((ROOT / "config" / "rules.toml").read_text() + EXTRA_RULE)

    ensure_topics(Settings(broker=broker.bootstrap))
    produce_checked(broker.bootstrap, backlog() + scenario().messages)
    worker = WorkerProcess(broker.bootstrap, tmp_path / "w1",
                           env={"CSPA_CLOCK_FILE": str(clock), "CSPA_RULES_PATH": str(rules)})
    workers.append(worker)
    instance = f"127.0.0.1:{worker.port}"
    prom = PrometheusProcess(tmp_path / "prometheus", [worker.port],
                             rules=quick_rules(tmp_path / "rules", stall_seconds=15))
    backfill(prom.data_dir, breach_history(instance), prom.workdir)
    with prom:
        watch = FiringWatch(prom)
        watch.start()
        try:
            # up == 0 for the worker's own address (absent(up) may fire first, with no
            # instance: starting the worker then raced the first scrape of the down target)
            wait_for(lambda: instance in {labels.get("instance") for labels in
                                          watch.labelled.get("CspaWorkerDown", [])},
                     60, "CspaWorkerDown for the worker's address before it starts")
            worker.start()
            wait_for(lambda: total(worker.samples(), "cspa_consumer_lag") == 0
                     and total(worker.samples(), "cspa_events_consumed_total")
                     >= BACKLOG, 180, "the backlog consumed")
            # the rejected-events rule needs the counter's 0 scraped before the 1
            prom.wait_for_sample('cspa_events_rejected_total{reason="invalid_json"}')
            stalls = Stalls(worker, prom, watch)
            stalls.next()
            time.sleep(2)
            produce_checked(broker.bootstrap, [Message(TOPICS["contacts"], b"bad", b"{oops",
                                                       int(time.time() * 1000))])
            try:
                wait_for(lambda: stalls.next() or names <= watch.seen.keys(), 120,
                         "every alert firing")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; never fired: {sorted(names - watch.seen.keys())}"
                                     f"; {stalls.evidence()}") from None
            # office hours from the worker's calendar and clock (Tuesday 12:30), not pinned
            assert prom.value("max(cspa_working_time)") == 1
        finally:
            watch.done.set()
            watch.join(5)

    seen = watch.seen
    assert seen["Watchdog"]["labels"]["severity"] == "none"
    assert float(seen["CspaWorkersMissing"]["value"]) == 0  # before the worker started
    # up == 0 for the worker's address; before the first scrape, absent(up) (no instance)
    assert instance in {labels.get("instance") for labels in watch.labelled["CspaWorkerDown"]}
    assert seen["CspaConsumerLagHigh"]["labels"]["topic"] == TOPICS["calls"]
    assert float(seen["CspaConsumerLagHigh"]["value"]) > 10_000
    assert seen["CspaEventsRejected"]["labels"]["reason"] == "invalid_json"
    assert seen["WorkerLoopStalled"]["labels"]["instance"] == instance
    assert float(seen["WorkerLoopStalled"]["value"]) >= 1  # the one stall, at least
    assert seen["TimescaleAtRisk"]["labels"]["rule"] == "contact_triage"
    assert seen["TimescaleOverdue"]["labels"]["rule"] == "contact_triage"
    for rule, prefix in zip(WATCHED, ("ContactDecision", "MapEnquiry", "EarlyHelpAllocation",
                                      "LadoReferral"), strict=True):
        for suffix in ("AtRisk", "Overdue", "Breaches"):
            labels = seen[prefix + suffix]["labels"]
            assert labels["rule"] == rule and labels["severity"] in {"warning", "critical"}
        assert float(seen[prefix + "Overdue"]["value"]) == 1
        assert float(seen[prefix + "Breaches"]["value"]) >= 1
    complaint = seen["ComplaintStage1Due"]
    assert (complaint["labels"]["rule"], complaint["labels"]["state"]) == (
        "complaint_stage1", "overdue")
    assert float(complaint["value"]) == 1
    assert [labels["agency"] for labels in watch.labelled["PartnerResponseOverdue"]] == ["camhs"]
    assert float(seen["PartnerResponseOverdue"]["value"]) == 1
    assert float(seen["CallServiceLevelLowThisHour"]["value"]) == 0  # none within 20 s
    assert float(seen["CallAbandonedRateHigh"]["value"]) == pytest.approx(0.5)
    assert seen["CallWaitingTooLong"]["labels"]["queue"] == "consultation"
    assert float(seen["CallWaitingTooLong"]["value"]) == 300
