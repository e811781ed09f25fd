"""The broker goes away mid-stream (a clean stop, then a SIGKILL) and comes back on the same
ports and data: the same worker process rides it out and the figures end exact."""

from __future__ import annotations

import time
from datetime import date, timedelta

import pytest

from tests.faults.conftest import (
    b64,
    commit_backlog,
    counted,
    differences,
    read_deadletter,
    wait_caught_up,
    write_result,
)
from tests.groundtruth import expected, generate
from tests.integration.harness import produce_sync, total
from tests.integration.test_pipeline import assert_figures_match

pytestmark = [pytest.mark.integration, pytest.mark.faults]

CHUNKS = 9
DOWN_SECONDS = 5.0


def test_worker_rides_out_broker_stop_and_kill(broker, fresh_worker):
    ds = generate(seed=404, start=date.today() - timedelta(days=120), days=100, contacts=4000,
                  calls=5000, enquiries=800, audits=200, bad=12)
    truth = expected(ds)
    size = -(-len(ds.messages) // CHUNKS)
    chunks = [ds.messages[i:i + size] for i in range(0, len(ds.messages), size)]
    worker = fresh_worker()
    pid = worker.proc.pid
    outages = []
    for i, chunk in enumerate(chunks):
        produce_sync(broker.bootstrap, chunk)
        if i in (2, 5):  # mid-stream: the worker still has a backlog
            left = total(worker.samples(), "cspa_consumer_lag")
            how = "stop" if i == 2 else "kill"
            t0 = time.monotonic()
            broker.stop() if how == "stop" else broker.kill()
            assert not broker.is_running()
            time.sleep(DOWN_SECONDS)
            broker.start(timeout=90)
            outages.append({"how": how, "backlog": left,
                            "seconds_down": round(time.monotonic() - t0, 1)})
            print(f"\nbroker {how}: {left} messages behind, back after "
                  f"{time.monotonic() - t0:.1f}s")
            assert worker.proc.poll() is None, worker.log_tail()

    wait_caught_up(worker, timeout=240)
    assert worker.proc is not None and worker.proc.pid == pid and worker.proc.poll() is None, (
        "the worker did not ride out the broker restarts:\n" + worker.log_tail())
    samples = worker.samples()
    lost, double = counted(samples, truth)
    dead = read_deadletter(broker.bootstrap, ds.bad)
    distinct = {(d["partition"], d["offset"]) for d in dead}
    write_result("broker_restart.json", {
        "events": len(ds.messages), "outages": outages, "events_lost": lost,
        "events_double_counted": double, "deadlettered_distinct": len(distinct),
        "deadlettered_records": len(dead),
        "rejected_counter": total(samples, "cspa_events_rejected_total"),
        "duplicates_counted": total(samples, "cspa_events_duplicate_total"),
        "figure_rebuilds": worker.log_path.read_text().count("figures rebuilt"),
        "commit_stalled_partitions": commit_backlog(broker.bootstrap, 30)})
    assert (lost, double) == (0, 0), differences(samples, truth)
    assert_figures_match(samples, truth)
    assert len(distinct) == ds.bad
    assert {b64(d["value_b64"]) for d in dead} == {m.value for m in ds.messages
                                                   if m.key == b"bad"}
    # Same process all along: its counter saw every bad message (a re-delivery after a
    # rebalance would be counted again, and dead-lettered again, hence records >= distinct).
    assert total(samples, "cspa_events_rejected_total") == len(dead)
