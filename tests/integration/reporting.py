"""Helpers for end-to-end report tests: a module-wide broker + worker, and the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from stream.dev.broker import LocalBroker
from tests.integration.conftest import start_worker
from tests.integration.harness import (
    ROOT,
    WorkerProcess,
    consumed,
    make_broker,
    produce_sync,
    wait_for,
)
from tests.reportgen import Message


def cli_env(**settings: str) -> dict[str, str]:
    """The environment for a ``python -m stream`` child: no inherited CSPA_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSPA_")}
    env.update(settings)
    return env


def run_cli(args: Iterable[str], timeout: float = 120,
            **settings: str) -> subprocess.CompletedProcess[str]:
    """``python -m stream ARGS`` from the repository root, output captured."""
    return subprocess.run([sys.executable, "-m", "stream", *args], cwd=ROOT,
                          env=cli_env(**settings), capture_output=True, text=True,
                          timeout=timeout, check=False)


@dataclass
class Pipeline:
    broker: LocalBroker
    worker: WorkerProcess
    tmp: Path
    sent: int = 0

    def send(self, messages: Iterable[Message], timeout: float = 240) -> float:
        """Produce, then wait until the worker has consumed everything; returns seconds."""
        messages = list(messages)
        started = time.monotonic()
        before = consumed(self.worker)
        n = produce_sync(self.broker.bootstrap, messages)
        self.sent += n
        wait_for(lambda: consumed(self.worker) >= before + n, timeout,
                 f"{n} messages consumed")
        self.settled()
        return time.monotonic() - started

    def settled(self) -> None:
        wait_for(lambda: not self.worker.get_json("/cells")["recovering"], 60,
                 "worker settled")

    def report(self, months: str, fmt: str = "json", *flags: str, **settings: str) -> str:
        """Run ``python -m stream report`` against the worker; returns stdout."""
        done = run_cli(["report", "--months", months, "--workers", self.worker.url,
                        "--format", fmt, *flags], **settings)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def report_json(self, months: str, *flags: str, **settings: str) -> Any:
        return orjson.loads(self.report(months, "json", *flags, **settings))


@contextmanager
def pipeline(tmp: Path, **worker_env: str) -> Iterator[Pipeline]:
    """A broker and one worker (owning every partition) for a whole test module."""
    brokers = make_broker(tmp)
    broker = next(brokers)
    workers: list[WorkerProcess] = []
    try:
        worker = start_worker(broker, tmp, workers, "w1", **worker_env)
        yield Pipeline(broker, worker, tmp)
    finally:
        for w in workers:
            w.stop()
        brokers.close()
