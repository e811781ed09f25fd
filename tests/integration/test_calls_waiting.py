"""Calls waiting now, on a real broker and a real worker whose clock the test moves.

The test sends call events (queued, answered, abandoned; some outcomes before their queue
event, some calls never answered) and works out by itself, from the events it sent, which
calls wait at the worker's clock, the oldest wait per queue, the calls past the waiting
limit, and the average speed of answer today. ``/metrics`` must say the same:

* at 12:30 with the first batch; then at 12:40 after outcomes for some waiting calls
  arrive (one before its own queue event would have);
* after a SIGTERM and a restart, rebuilt from the records alone;
* at 13:45, when the calls of the first batch still without an outcome have waited past
  the limit (1 hour) and count as expired, not waiting.
"""

from __future__ import annotations

import os
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests import factories as f
from tests.groundtruth import Dataset
from tests.integration.conftest import start_worker
from tests.integration.feed import produce_checked
from tests.integration.harness import WorkerProcess, total, wait_for

pytestmark = pytest.mark.integration

T = datetime.fromisoformat("2026-11-24T12:30:00+00:00")  # Tuesday, GMT = Europe/London
QUEUES = ("rfs", "consultation")
LIMIT = 3600.0


class Calls:
    """The events sent, and what they mean at a given clock (plain loops, no worker code)."""

    def __init__(self) -> None:
        self.queued: dict[str, tuple[str, datetime]] = {}
        self.outcome: dict[str, tuple[str, float]] = {}  # key -> (type, wait)
        self.offered_at: dict[str, datetime] = {}

    def events(self, rng: random.Random, n: int, start: datetime,
               span_minutes: int) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for i in range(n):
            k = f.key(f"call-{start.isoformat()}-{i}")
            queue = rng.choice(QUEUES)
            at = start + timedelta(seconds=rng.uniform(0, span_minutes * 60))
            out.append((k, f.queued(k, at, queue)))
            self.queued[k] = (queue, at)
            fate = rng.random()
            if fate < 0.6:  # answered or abandoned before T; the rest still wait
                wait = round(rng.uniform(2, 200), 1)
                kind = "answered" if fate < 0.5 else "abandoned"
                maker = f.answered if kind == "answered" else f.abandoned
                out.append((k, maker(k, at + timedelta(seconds=wait), wait, queue)))
                self.outcome[k] = (kind, wait)
                if rng.random() < 0.3:  # the outcome arrives first
                    out[-2], out[-1] = out[-1], out[-2]
        return out

    def resolve(self, keys: list[str], when: datetime) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for k in keys:
            queue, at = self.queued[k]
            wait = (when - at).total_seconds()
            out.append((k, f.answered(k, when, wait, queue)))
            self.outcome[k] = ("answered", wait)
        return out

    def waiting_keys(self) -> list[str]:
        return sorted(k for k in self.queued if k not in self.outcome)

    def expected(self, now: datetime) -> dict[tuple[str, str], float]:
        got: dict[tuple[str, str], float] = {}
        for q in QUEUES:
            for name in ("waiting", "oldest", "expired", "asa_sum", "asa_count"):
                got[name, q] = 0.0
        for k, (queue, at) in self.queued.items():
            if k in self.outcome:
                kind, wait = self.outcome[k]
                if kind == "answered" and at.date() == now.date() and at <= now:
                    got["asa_sum", queue] += wait
                    got["asa_count", queue] += 1
                continue
            wait = (now - at).total_seconds()
            if wait > LIMIT:
                got["expired", queue] += 1
            else:
                got["waiting", queue] += 1
                got["oldest", queue] = max(got["oldest", queue], wait)
        return got


def observed(worker: WorkerProcess) -> dict[tuple[str, str], float]:
    s = worker.samples()
    names = {"waiting": "cspa_calls_waiting", "oldest": "cspa_calls_oldest_wait_seconds",
             "expired": "cspa_calls_waiting_expired"}
    got = {(name, q): total(s, metric, queue=q) for name, metric in names.items()
           for q in QUEUES}
    for q in QUEUES:
        got["asa_sum", q] = total(s, "cspa_recent_calls_answer_wait_seconds_sum",
                                  window="today", queue=q)
        got["asa_count", q] = total(s, "cspa_recent_calls_answer_wait_seconds_count",
                                    window="today", queue=q)
    return got


def set_clock(path: Path, when: datetime) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(when.isoformat() + "\n")
    os.replace(tmp, path)


def send(bootstrap: str, events: list[tuple[str, dict[str, Any]]]) -> None:
    ds = Dataset()
    for k, event in events:
        ds.add("calls", k, event)
    produce_checked(bootstrap, ds.messages)


def agree(worker: WorkerProcess, calls: Calls, now: datetime) -> None:
    want = calls.expected(now)

    def same() -> bool:
        got = observed(worker)
        return all(got[k] == pytest.approx(v, abs=0.01) for k, v in want.items())

    try:
        wait_for(same, 60, f"calls waiting at {now:%H:%M}")
    except AssertionError:
        raise AssertionError(f"want {want}\ngot  {observed(worker)}") from None


def test_calls_waiting_on_a_real_worker(broker, workers, tmp_path):
    rng, calls = random.Random(1414), Calls()
    clock = tmp_path / "clock.txt"
    set_clock(clock, T)
    worker = start_worker(broker, tmp_path, workers, CSPA_CLOCK_FILE=str(clock))
    send(broker.bootstrap, calls.events(rng, 60, T - timedelta(minutes=50), 50))
    assert len(calls.waiting_keys()) > 10
    agree(worker, calls, T)

    later = T + timedelta(minutes=10)
    set_clock(clock, later)
    send(broker.bootstrap, calls.resolve(calls.waiting_keys()[::2], later))
    agree(worker, calls, later)

    worker.stop()
    worker.start()  # rebuilt from the records table
    agree(worker, calls, later)

    past_limit = T + timedelta(minutes=75)
    set_clock(clock, past_limit)
    expected = calls.expected(past_limit)
    assert sum(expected["expired", q] for q in QUEUES) > 0
    agree(worker, calls, past_limit)
