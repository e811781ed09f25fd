"""End to end on a real broker: events in, exact figures out of /metrics."""

from __future__ import annotations

import base64
from datetime import date

import orjson
import pytest

from tests.groundtruth import expected, generate
from tests.integration.conftest import start_worker
from tests.integration.harness import consume_topic, consumed, produce_sync, total, wait_for

pytestmark = pytest.mark.integration

FIGURES = ("cspa_contacts_received", "cspa_contacts_decided",
           "cspa_contact_completion_workdays_count",
           "cspa_contact_completion_workdays_sum", "cspa_calls_offered",
           "cspa_calls_answered", "cspa_calls_answered_within_target", "cspa_calls_abandoned",
           "cspa_map_enquiries_completed", "cspa_map_enquiries_by_agency",
           "cspa_map_enquiry_workdays_count", "cspa_map_enquiry_workdays_sum",
           "cspa_audits", "cspa_feedback_received", "cspa_feedback_quotes_approved",
           "cspa_feedback_withdrawn", "cspa_partner_requests", "cspa_partner_responses_late",
           "cspa_partner_response_working_hours_count",
           "cspa_partner_response_working_hours_sum", "cspa_child_contacts",
           "cspa_child_referrals", "cspa_contacts_without_child_key",
           "cspa_referrals_without_child_key")


def assert_figures_match(samples, truth):
    for name in FIGURES:
        got = {ls: v for (n, ls), v in samples.items() if n == name and abs(v) > 1e-9}
        want = {ls: v for (n, ls), v in truth.items() if n == name and abs(v) > 1e-9}
        assert got.keys() == want.keys(), name
        for labels, value in want.items():
            assert got[labels] == pytest.approx(value, abs=_tolerance(truth, name, labels)), (
                name, dict(labels))


def _tolerance(truth, name, labels):
    """Sums are of values kept to 1e-4 (stream.state.aggregates.VALUE_DECIMALS): each value may
    be off by half of that, so a sum of n values by n times as much."""
    if not name.endswith("_sum"):
        return 1e-3
    n = truth.get((name[: -len("_sum")] + "_count", labels), 1)
    return max(1e-3, n * 0.5e-4 + 1e-9)


#: every table store the settings accept (stream.settings.STORES; a unit test keeps them equal)
STORE_MODES = ("local://", "memory://")


@pytest.mark.parametrize("store", STORE_MODES)
def test_worker_counts_exactly_and_survives_restart(broker, workers, tmp_path, store):
    ds = generate(seed=7, start=date(2019, 7, 20), days=80, feedback=80, partners=60)
    truth = expected(ds)
    # memory:// keeps no checkpoint: with one due every second, a file would show that the
    # worker ran with local:// after all.
    checkpoints = {"CSPA_CHECKPOINT_SECONDS": "1"} if store == "memory://" else {}
    worker = start_worker(broker, tmp_path, workers, CSPA_STORE=store, **checkpoints)
    sent = produce_sync(broker.bootstrap, ds.messages)
    wait_for(lambda: consumed(worker) >= sent, 90, f"{sent} messages consumed")
    samples = worker.samples()
    assert_figures_match(samples, truth)
    assert total(samples, "cspa_events_rejected_total") == ds.bad
    assert total(samples, "cspa_events_rejected_total", reason="invalid_json") == ds.bad

    # Rejected messages are on the dead-letter topic with reason and original bytes.
    dead = consume_topic(broker.bootstrap, "cspa.deadletter.v1", ds.bad)
    assert len(dead) == ds.bad
    for record in dead:
        body = orjson.loads(record)
        assert body["reason"] == "invalid_json"
        assert base64.b64decode(body["value_b64"]).startswith(b"{not json")

    # Privacy: no case key and no payload reaches the metrics or the log.
    keys = {m.key.decode() for m in ds.messages if m.key != b"bad"}
    exposition = worker.get("/metrics").decode()
    log = worker.log_path.read_text()
    assert "rejected topic=cspa.contacts.v1" in log  # the log is really being read
    for k in keys:
        assert k not in exposition and k not in log
    assert "not json" not in log

    # Figures survive a clean restart and a SIGKILL: rebuilt from the changelog (read
    # into this store by the batch consumer's restore; local:// from its checkpoint too).
    for stop in (worker.stop, worker.kill):
        stop()
        worker.start()
        wait_for(lambda: total(worker.samples(), "cspa_contacts_received")
                 == total(samples, "cspa_contacts_received"), 60, "figures recovered")
        assert_figures_match(worker.samples(), truth)
    # Each recovery rendered /metrics before the worker said ready (issue 28)
    assert worker.log_path.read_text().count("metrics page warmed") >= 3
    if store == "memory://":
        assert not list((worker.workdir / "data").glob("checkpoint-*"))


def test_replaying_the_same_events_changes_nothing(broker, workers, tmp_path):
    ds = generate(seed=11, start=date(2019, 8, 1), days=40, contacts=150, calls=100,
                  enquiries=30, audits=10, bad=0, feedback=30, partners=20)
    worker = start_worker(broker, tmp_path, workers)
    sent = produce_sync(broker.bootstrap, ds.messages)
    sent += produce_sync(broker.bootstrap, ds.messages)  # the whole set again
    wait_for(lambda: consumed(worker) >= sent, 90, "replay consumed")
    assert_figures_match(worker.samples(), expected(ds))
    assert total(worker.samples(), "cspa_events_duplicate_total") >= len(ds.messages)
