"""The repository's alert rules, evaluated by a real Prometheus scraping a real worker.

The worker's clock file says Tuesday 24 November 2026 12:00: a contact received on the
Friday before is overdue, one received on Monday afternoon is at risk, and one decided
late counts a breach. Prometheus (``tests/integration/prometheus.py``: 1 s scrapes and
evaluations, the rule files of ``grafana/prometheus/rules`` as they are) must then show:

* every rule file loaded and every rule evaluating without error on the worker's real
  exposition;
* ``ContactDecisionOverdue`` and ``ContactDecisionAtRisk`` active, with their labels and
  rendered summaries. Both have ``for: 5m``: too long for this test, so it asserts
  *pending* (and ``for`` = 300 s as loaded); the pending -> firing step after 5 minutes is
  covered by ``grafana/prometheus/tests/timeliness.test.yml`` (promtool). Set
  ``CSPA_WAIT_FOR_SLOW_ALERTS=1`` to wait the 5 minutes out here as well;
* ``ContactDecisionBreaches`` (``for: 2m``) pending, then firing. The rule compares the
  breaches now with the most seen 15-30 minutes ago, so a Prometheus started a moment ago
  has no baseline and (by design, see rules/timeliness.yml) stays silent. The test gives it
  one: 40 minutes of ``cspa_breaches = 0`` for the worker's own series, written into the
  TSDB with ``promtool tsdb create-blocks-from openmetrics`` before the server starts, as if
  it had been scraping a worker with no breaches;
* ``CspaEventsRejected`` (``for: 0m``) firing once a malformed message has been
  dead-lettered. ``increase()`` needs the counter's 0 before the 1, so the message is sent
  only after Prometheus has scraped the primed counter.

Event dates are in the past (November 2026), so the decoder's future bound, which uses the
real clock, never applies.
"""

from __future__ import annotations

import os
import time
from datetime import datetime

import pytest

from tests import factories as f
from tests.groundtruth import TOPICS, Dataset, Message
from tests.integration.conftest import start_worker
from tests.integration.feed import produce_checked
from tests.integration.harness import total, wait_for
from tests.integration.prometheus import PrometheusProcess, backfill, rule_files

pytestmark = pytest.mark.integration

NOW = "2026-11-24T12:00:00+00:00"  # the worker's clock: Tuesday noon
CONTACTS = TOPICS["contacts"]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def feed(bootstrap: str) -> None:
    ds = Dataset()
    overdue, at_risk, late = f.key("alert-overdue"), f.key("alert-at-risk"), f.key("alert-late")
    # Fri 10:00 -> due Mon 23 Nov 10:00: overdue on Tuesday (a breach, month 2026-11).
    ds.add("contacts", overdue, f.received(overdue, at("2026-11-20T10:00:00+00:00")))
    # Mon 14:00 -> due Tue 14:00, at risk from Tue 10:00 (4 office hours before).
    ds.add("contacts", at_risk, f.received(at_risk, at("2026-11-23T14:00:00+00:00")))
    # Thu 10:00 -> due Fri 20 Nov 10:00, decided Mon: closed late (a breach, 2026-11).
    ds.add("contacts", late, f.received(late, at("2026-11-19T10:00:00+00:00")))
    ds.add("contacts", late, f.decided(late, at("2026-11-23T09:00:00+00:00")))
    produce_checked(bootstrap, ds.messages)


def breach_history(instance: str, minutes: int = 40) -> list[str]:
    """``cspa_breaches`` = 0 every minute for the last ``minutes`` (OpenMetrics lines)."""
    labels = (f'instance="{instance}",job="cspa-worker",month="2026-11",'
              'rule="contact_decision",rule_version="1"')
    now = int(time.time())
    return (["# TYPE cspa_breaches gauge"]
            + [f"cspa_breaches{{{labels}}} 0 {now - 60 * m}" for m in range(minutes, 0, -1)])


def test_alert_rules_fire_on_a_real_worker(broker, workers, tmp_path):
    clock = tmp_path / "clock.txt"
    clock.write_text(NOW + "\n")
    worker = start_worker(broker, tmp_path, workers, CSPA_CLOCK_FILE=str(clock))
    feed(broker.bootstrap)
    wait_for(lambda: (total(worker.samples(), "cspa_open_items", rule="contact_decision",
                            state="overdue") == 1
                      and total(worker.samples(), "cspa_breaches",
                                rule="contact_decision") == 2), 60, "the worker's breaches")
    assert total(worker.samples(), "cspa_open_items", rule="contact_decision",
                 state="at_risk") == 1

    instance = f"127.0.0.1:{worker.port}"
    prom = PrometheusProcess(tmp_path / "prometheus", [worker.port])
    backfill(prom.data_dir, breach_history(instance), prom.workdir)
    with prom:
        prom.wait_for_targets()

        # Every rule file is loaded, and every rule evaluates without error.
        files = {r["file"] for r in prom.rules()}
        assert files == {str(p) for p in rule_files()}
        time.sleep(3)  # a few evaluations on scraped data
        broken = {r["name"]: r.get("lastError") for r in prom.rules() if r["health"] != "ok"}
        assert not broken, broken
        durations = {r["name"]: r["duration"] for r in prom.rules("alert")}
        assert durations["ContactDecisionOverdue"] == durations["ContactDecisionAtRisk"] == 300
        assert durations["ContactDecisionBreaches"] == 120
        assert durations["CspaEventsRejected"] == 0

        # Overdue and at risk: active (pending for their 5 minutes), labels and text.
        overdue = wait_for(lambda: prom.alert("ContactDecisionOverdue"), 30,
                           "ContactDecisionOverdue active")
        assert overdue["state"] == "pending"
        assert overdue["labels"] == {"alertname": "ContactDecisionOverdue", "rule":
                                     "contact_decision", "team": "rfs",
                                     "severity": "critical"}
        assert overdue["annotations"]["summary"] == (
            "1 contact awaiting a decision is past the 1 working day timescale")
        assert float(overdue["value"]) == 1
        risk = wait_for(lambda: prom.alert("ContactDecisionAtRisk"), 30,
                        "ContactDecisionAtRisk active")
        assert risk["state"] == "pending" and risk["labels"]["severity"] == "warning"
        assert risk["annotations"]["summary"] == ("1 contact awaiting a decision has less "
                                                  "than 4 working hours left of the 1 working "
                                                  "day timescale")
        assert prom.alert("MapEnquiryOverdue") is None  # nothing else is wrong
        assert prom.alert("TimescaleOverdue") is None

        # New breaches against the (backfilled) breach-free history: pending, then firing.
        breaches = wait_for(lambda: prom.alert("ContactDecisionBreaches"), 30,
                            "ContactDecisionBreaches active")
        assert breaches["state"] == "pending"
        assert breaches["labels"]["rule_version"] == "1"
        assert breaches["annotations"]["summary"] == (
            "2 new breaches of the 1 working day timescale for contact decisions in the last "
            "15 minutes")
        assert prom.value('max_over_time(sum(cspa_breaches{rule="contact_decision"})'
                          "[15m:1m] offset 15m)") == 0  # the baseline the rule compares with

        # A malformed message: dead-lettered, counted, and CspaEventsRejected fires at once.
        prom.wait_for_sample(f'cspa_events_rejected_total{{topic="{CONTACTS}",'
                             'reason="invalid_json"}')
        produce_checked(broker.bootstrap, [Message(CONTACTS, b"bad", b"{not json",
                                                   int(time.time() * 1000))])
        rejected = wait_for(lambda: prom.alert("CspaEventsRejected", reason="invalid_json"), 30,
                            "CspaEventsRejected active")
        assert rejected["state"] == "firing"  # for: 0m
        assert rejected["labels"] == {"alertname": "CspaEventsRejected", "topic": CONTACTS,
                                      "reason": "invalid_json", "severity": "warning",
                                      "team": "platform"}

        firing = wait_for(lambda: (a := prom.alert("ContactDecisionBreaches"))
                          and a["state"] == "firing" and a, 150,
                          "ContactDecisionBreaches firing after its 2 minutes", interval=2)
        assert firing["activeAt"] == breaches["activeAt"]  # the same alert, not a new one
        assert prom.alert("ContactDecisionOverdue")["state"] == "pending"  # 5m not yet over

        if os.environ.get("CSPA_WAIT_FOR_SLOW_ALERTS") == "1":
            for name in ("ContactDecisionOverdue", "ContactDecisionAtRisk"):
                wait_for(lambda name=name: (a := prom.alert(name)) and a["state"] == "firing",
                         330, f"{name} firing after its 5 minutes", interval=5)
        assert prom.query('ALERTS{alertname="ContactDecisionBreaches",alertstate="firing"}')
