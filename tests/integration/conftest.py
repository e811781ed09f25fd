from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stream.dev.broker import LocalBroker
from tests.integration.harness import WorkerProcess, make_broker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    yield from make_broker(tmp_path)


@pytest.fixture
def workers(broker: LocalBroker, tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    """Worker processes a test starts; all stopped at the end (logs shown on failure)."""
    started: list[WorkerProcess] = []
    yield started
    for w in started:
        w.stop()
        # Shown by pytest only when the test failed ("Captured stdout teardown").
        print(f"\n--- {w.log_path}, last lines:\n{w.log_tail(30)}")


def start_worker(broker: LocalBroker, tmp_path: Path, workers: list[WorkerProcess],
                 name: str = "w1", **env: str) -> WorkerProcess:
    from stream.cli import ensure_topics
    from stream.settings import Settings

    ensure_topics(Settings(broker=broker.bootstrap))
    w = WorkerProcess(broker.bootstrap, tmp_path / name, env=env)
    workers.append(w)
    return w.start()
