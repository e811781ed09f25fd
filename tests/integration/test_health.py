"""/health says ready only once the worker serves the figures of its partitions.

On-call and compose's healthcheck read it: "ready" before the first assignment (the
web server is up seconds before the group join) would report a worker with empty
figures as healthy.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from stream.dev.broker import LocalBroker
from tests.integration.harness import ROOT, WorkerProcess

pytestmark = pytest.mark.integration


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_ready_only_with_partitions_and_their_figures(broker: LocalBroker,
                                                      tmp_path: Path) -> None:
    from stream.cli import ensure_topics
    from stream.settings import Settings

    ensure_topics(Settings(broker=broker.bootstrap))
    w = WorkerProcess(broker.bootstrap, tmp_path / "w1")
    with w.log_path.open("ab") as log:
        w.proc = subprocess.Popen([sys.executable, "-m", "stream", "worker"], cwd=ROOT,
                                  env=w.env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        answers = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert w.proc.poll() is None, w.log_tail()
            try:
                status, body = _get(w.url + "/health")
            except OSError:  # web server not up yet
                time.sleep(0.02)
                continue
            answers.append(status)
            if body["ready"]:
                assert status == 200
                figures = _get(w.url + "/figures")[1]
                assert figures["owned"], "ready while owning no partition"
                assert body["owned"] == figures["owned"]
                assert not figures["recovering"]
                break
            assert status == 503
            time.sleep(0.02)
        else:
            pytest.fail(f"never ready; answers {answers[-5:]}")
    finally:
        w.stop()
