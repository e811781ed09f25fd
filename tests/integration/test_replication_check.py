"""The worker refuses to start on topics that keep fewer copies than configured: one line
naming the topic, a non-zero exit, no traceback (a real single broker; the three-broker
cluster is in tests/faults/test_cluster.py)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from stream.dev.broker import create_topics
from tests.integration.harness import ROOT, free_port

pytestmark = pytest.mark.integration

#: the event topics and the worker's own repartition topic (named for app id "cspa"), each
#: checked with its changelog (the key topic is not the worker's)
TOPICS = ("cspa-children-repartition", "cspa.audits.v1", "cspa.calls.v1", "cspa.contacts.v1",
          "cspa.feedback.v1", "cspa.map-enquiries.v1")


def run_worker(bootstrap: str, tmp_path, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m stream worker`` expected to exit by itself (killed after 120 s)."""
    full = {**os.environ, "CSPA_BROKER": bootstrap, "CSPA_WEB_PORT": str(free_port()),
            "CSPA_DATA_DIR": str(tmp_path / "data"), **env}
    return subprocess.run([sys.executable, "-m", "stream", "worker"], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=120, check=False)


def test_worker_refuses_fewer_replicas_than_configured(broker, tmp_path):
    # One changelog made by hand beforehand, asking two in sync of its single replica.
    bad = "cspa-records-cspa.calls.v1-changelog"
    asyncio.run(create_topics(broker.bootstrap, [(bad, 6, {"min.insync.replicas": "2",
                                                           "cleanup.policy": "compact"})]))
    res = run_worker(broker.bootstrap, tmp_path, CSPA_MIN_INSYNC_REPLICAS="1")
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.strip() == (f"refusing to start: topic {bad} has min.insync.replicas=2 "
                                  "but 1 replicas: no write with acks=all can succeed")

    # Every topic now exists with one replica (the single broker's default); two wanted.
    res = run_worker(broker.bootstrap, tmp_path, CSPA_REPLICATION_FACTOR="2")
    assert res.returncode == 2, res.stdout + res.stderr
    checked = sorted([f"cspa-records-{t}-changelog" for t in TOPICS] + list(TOPICS))
    assert res.stderr.strip() == (f"refusing to start: topic {checked[0]} has 1 replicas, "
                                  f"CSPA_REPLICATION_FACTOR is 2 (and {len(checked) - 1} more "
                                  "topics)")
    assert "Traceback" not in res.stdout + res.stderr

    # A new app's changelogs cannot get 3 replicas from one broker: refused too, in one line.
    res = run_worker(broker.bootstrap, tmp_path, CSPA_APP_ID="other", CSPA_REPLICATION_FACTOR="3")
    assert res.returncode == 2, res.stdout + res.stderr
    line = res.stderr.strip()
    assert line.startswith("refusing to start: topics not created or not readable: ")
    assert "InvalidReplicationFactor" in line and "\n" not in line
