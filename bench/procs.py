"""Worker processes, /metrics scraping and RSS sampling for the benchmark."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from prometheus_client.parser import text_string_to_metric_families

from bench import ROOT
from stream.report.webclient import WebClient
from stream.settings import Settings
from stream.worker.localstate import new_key

T = TypeVar("T")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
_LINE = re.compile(r"^(\w+)(?:\{[^}]*\})? (\S+)$", re.M)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(check: Callable[[], T | None], timeout: float, what: str,
             interval: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy; raise on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except OSError as exc:
            last = exc
        if last:
            result: T = last
            return result
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def parse_metrics(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def quick_sums(text: str, *names: str) -> dict[str, float]:
    """Sum of every sample of each named series, without a full parse (cheap)."""
    sums = dict.fromkeys(names, 0.0)
    for name, value in _LINE.findall(text):
        if name in sums:
            sums[name] += float(value)
    return sums


def quick_topic(text: str, name: str, topic: str) -> float:
    """Sum of the samples of ``name`` labelled ``topic`` (cheap: a line scan)."""
    prefix, mark = name + "{", f'topic="{topic}"'
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(prefix) and mark in line)


def quick_max(text: str, name: str) -> float:
    values = [float(v) for n, v in _LINE.findall(text) if n == name]
    return max(values) if values else 0.0


def quick_min(text: str, name: str) -> float:
    """The least sample of ``name`` (0.0 when there is none)."""
    values = [float(v) for n, v in _LINE.findall(text) if n == name]
    return min(values) if values else 0.0


def proc_status(pid: int, field: str) -> int:
    """A ``VmRSS``/``VmHWM``-style field of /proc/PID/status, in bytes (0 if gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _cpu_times() -> tuple[int, int]:
    """(idle, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields)  # idle + iowait, all


def wait_quiet(idle_share: float = 0.9, window: float = 1.0, limit: float = 30.0) -> float:
    """Wait until the machine has been ``idle_share`` idle for ``window`` seconds (at
    most ``limit``): the previous phase's background work (the broker writing out and
    collecting after a replay) must not land on the next phase. Returns seconds waited.
    """
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        idle0, total0 = _cpu_times()
        time.sleep(window)
        idle1, total1 = _cpu_times()
        if total1 > total0 and (idle1 - idle0) / (total1 - total0) >= idle_share:
            break
    return time.monotonic() - t0


class Worker:
    """``python -m stream worker`` as a child process with its own port and data dir."""

    def __init__(self, bootstrap: str, workdir: Path, app_id: str,
                 env: dict[str, str] | None = None) -> None:
        self.port, self.workdir, self.app_id = free_port(), workdir, app_id
        self.bootstrap = bootstrap
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "worker.log"
        self.env = {**os.environ, "CSPA_BROKER": bootstrap, "CSPA_WEB_PORT": str(self.port),
                    "CSPA_LIVE_PORT": str(free_port()),
                    "CSPA_DATA_DIR": str(workdir / "data"), "CSPA_APP_ID": app_id,
                    "CSPA_METRICS_MONTHS": "0", "PYTHONPATH": str(ROOT),
                    # every stall over 50 ms in the log: where each phase's stalls were
                    "CSPA_STALL_LOG_SECONDS": "0",
                    "CSPA_CHECKPOINT_KEY_FILE": str(new_key(workdir / "checkpoint.key")),
                    **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.peak_hwm = 0
        # The credentials of CSPA_WEB_USERNAME/PASSWORD(_FILE), CSPA_WEB_CAFILE (https then)
        self.client = WebClient.of(Settings())

    @property
    def url(self) -> str:
        scheme = "https" if self.client.cafile else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> Worker:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "stream", "worker"], cwd=ROOT,
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        return self

    def alive(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"worker {self.app_id} exited:\n{self.log_tail()}")
        return True

    def get(self, path: str, timeout: float = 10) -> bytes:
        return self.client.get(self.url + path, timeout)

    def get_json(self, path: str) -> Any:
        try:
            return json.loads(self.get(path))
        except urllib.error.HTTPError as exc:  # 503 while recovering still has a body
            return json.loads(exc.read())

    def metrics_text(self, timeout: float = 10) -> str:
        self.alive()
        return self.get("/metrics", timeout).decode()

    def pipeline_text(self) -> str:
        """/metrics/pipeline: the pipeline's own metrics, cheap to collect.

        What the harness polls while it measures: /metrics evaluates every figure from
        the whole state (hundreds of ms with a national backlog), and polling it several
        times a second would measure the harness, not the worker.
        """
        self.alive()
        return self.get("/metrics/pipeline").decode()

    def samples(self, timeout: float = 10) -> Samples:
        """/metrics parsed; ``timeout``: seconds the scrape may take (a national state's
        first full scrape takes longer than a routine one)."""
        return parse_metrics(self.metrics_text(timeout))

    def pipeline_samples(self) -> Samples:
        return parse_metrics(self.pipeline_text())

    def consumed(self) -> float:
        return quick_sums(self.pipeline_text(), "cspa_events_consumed_total")[
            "cspa_events_consumed_total"]

    def ready(self) -> bool:
        self.alive()
        try:
            health = self.get_json("/health")
            return bool(health.get("ready")) and bool(health.get("owned"))
        except OSError:
            return False

    def rss(self) -> int:
        return proc_status(self.pid, "VmRSS") if self.proc else 0

    def hwm(self) -> int:
        if self.proc is not None:
            self.peak_hwm = max(self.peak_hwm, proc_status(self.pid, "VmHWM"))
        return self.peak_hwm

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.hwm()
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class RssSampler(threading.Thread):
    """Samples a worker's VmRSS and VmHWM every ``interval`` seconds until stopped."""

    def __init__(self, worker: Worker, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.worker, self.interval = worker, interval
        self.samples: list[tuple[float, int]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            if self.worker.proc is not None:
                self.samples.append((time.monotonic(), self.worker.rss()))
                self.worker.hwm()
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)

    def peak(self) -> int:
        return max([self.worker.peak_hwm, *(r for _, r in self.samples)])
