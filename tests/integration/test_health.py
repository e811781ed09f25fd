"""/ready says ready only once the worker serves the figures of its partitions; /live
says the worker's event loop runs, ready or not.

On-call and the compose simulator read /ready: "ready" before the first assignment (the
web server is up seconds before the group join) would report a worker with empty
figures as ready. /health is the same as /ready. Compose's healthcheck reads /live:
it must be 200 while the worker is not ready yet (the first assignment's recovery, a
rebalance), or a liveness probe would restart a healthy worker.
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
        live_while_not_ready = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert w.proc.poll() is None, w.log_tail()
            try:
                status, body = _get(w.url + "/ready")
            except OSError:  # web server not up yet
                time.sleep(0.02)
                continue
            answers.append(status)
            if body["ready"]:
                assert status == 200
                figures = _get(w.url + "/cells")[1]
                assert figures["owned"], "ready while owning no partition"
                assert body["owned"] == figures["owned"]
                assert not figures["recovering"]
                assert body["fingerprint"] == figures["fingerprint"] != ""
                assert body["definitions"] == figures["definitions"]
                assert body["definitions"]["variant"] == "offered"
                break
            assert status == 503
            live_while_not_ready.append(_get(w.live_url)[0])
            time.sleep(0.02)
        else:
            pytest.fail(f"never ready; answers {answers[-5:]}")
        assert live_while_not_ready and set(live_while_not_ready) == {200}
        status, body = _get(w.live_url)
        assert status == 200 and body["live"] is True and body["limit_seconds"] == 300
        health = _get(w.url + "/health")
        assert health[0] == 200 and health[1]["owned"] == _get(w.url + "/ready")[1]["owned"]
    finally:
        w.stop()


def test_live_port_taken_is_a_one_line_error(tmp_path: Path) -> None:
    """Before the worker connects to Kafka (no broker here): exit 2, one line."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        w = WorkerProcess("127.0.0.1:9", tmp_path / "w1",
                          env={"CSPA_LIVE_PORT": str(taken.getsockname()[1])})
        done = subprocess.run([sys.executable, "-m", "stream", "worker"], cwd=ROOT, env=w.env,
                              capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert "cannot serve /live on 127.0.0.1:" in done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
