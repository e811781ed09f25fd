"""The worker alerts outlive the worker's series, on a real worker and a real Prometheus.

A worker (its clock file at 10:00 on Christmas Day 2026) is scraped every second by a
real Prometheus running the repository's rules with the waits removed (``quick_rules``).

* It exports ``cspa_working_time`` 0 on Christmas Day and 1 once its clock says Tuesday
  29 December 10:00 (Monday the 28th is the substitute for Boxing Day, a Saturday).
* Once it is ready and owns every source partition, none of CspaWorkerDown,
  CspaWorkersMissing, CspaWorkerNotReady and CspaPartitionUnowned is active.
* Killed with SIGKILL, its scrape fails and every series it exported ends at once
  (Prometheus marks them stale): CspaWorkerDown fires for its address, CspaWorkersMissing
  with 0 workers, CspaWorkerNotReady through ``absent()``, and CspaPartitionUnowned once
  for each partition of every source topic in topics/topics.toml, named although no series
  of the worker is left (the expected partitions are remembered for an hour).
"""

from __future__ import annotations

import pytest

from stream.contract.topics import folded, load_topics
from tests.integration.conftest import start_worker
from tests.integration.harness import wait_for
from tests.integration.prometheus import PrometheusProcess, quick_rules

pytestmark = pytest.mark.integration

WORKER_ALERTS = ("CspaWorkerDown", "CspaWorkersMissing", "CspaWorkerNotReady",
                 "CspaPartitionUnowned")


def test_worker_alerts_outlive_the_workers_series(broker, workers, tmp_path):
    clock = tmp_path / "clock.txt"
    clock.write_text("2026-12-25T10:00:00+00:00\n")  # Christmas Day, a Friday, 10:00 GMT
    worker = start_worker(broker, tmp_path, workers, CSPA_CLOCK_FILE=str(clock))
    # the event topics and the worker's app id's own repartition topic
    expected = {(spec.name, str(p))
                for spec in folded(load_topics(app_id=worker.app_id)).values()
                for p in range(spec.partitions)}
    prom = PrometheusProcess(tmp_path / "prometheus", [worker.port],
                             rules=quick_rules(tmp_path / "rules", stall_seconds=15))
    ready_owned = "count(cspa_partition_owned and on (job, instance) (cspa_worker_ready == 1))"
    with prom:
        prom.wait_for_targets()
        wait_for(lambda: prom.value(ready_owned) == len(expected), 90,
                 "every source partition owned by a ready worker")
        assert prom.value("max(cspa_working_time)") == 0  # a bank holiday at the worker's clock
        clock.write_text("2026-12-29T10:00:00+00:00\n")
        wait_for(lambda: prom.value("max(cspa_working_time)") == 1, 30, "a working day")

        def active(name: str) -> list[dict]:
            return [a for a in prom.alerts() if a["labels"]["alertname"] == name]

        wait_for(lambda: not any(active(n) for n in WORKER_ALERTS), 30,
                 "no worker alert while the worker is ready")

        worker.kill()
        instance = f"127.0.0.1:{worker.port}"
        wait_for(lambda: any(a["labels"].get("instance") == instance
                             for a in active("CspaWorkerDown")), 30, "CspaWorkerDown")
        missing = wait_for(lambda: active("CspaWorkersMissing"), 30, "CspaWorkersMissing")
        assert float(missing[0]["value"]) == 0
        not_ready = wait_for(lambda: active("CspaWorkerNotReady"), 30, "CspaWorkerNotReady")
        assert "instance" not in not_ready[0]["labels"]  # absent(): nothing left to name
        unowned = wait_for(lambda: (found := active("CspaPartitionUnowned"))
                           and len(found) == len(expected) and found, 30,
                           "CspaPartitionUnowned for every partition")
        assert {(a["labels"]["topic"], a["labels"]["partition"]) for a in unowned} == expected
        assert all(a["state"] == "firing" and a["labels"]["team"] == "platform"
                   for a in unowned)
