"""Rebalances while records flow: the seeks to the state's markers land on batches
already fetched, and still nothing is lost or counted twice.

What issues the seeks (stream/worker/batches.py): after every assignment
``BatchConsumer.perform_seek`` moves each source partition to where the state resumes
(its progress marker) and bumps the partition's epoch. A batch fetched before that seek
is dropped, its records read again from the marker, and counted in
``cspa_stale_batches_total`` when

* its put to the agent's channel was still waiting for room when the revocation
  stopped the flow or cleared the channel (``BatchConsumer._put``), or
* it reached the agent with an earlier epoch (``TopicAgent.handle``);

and in ``cspa_refetches_total`` when the position moved while it was being fetched
(``_contiguous``). That last one needs a seek outside the lock the fetch and every seek
take, which nothing issues today: it stays at 0 here (see docs/reliability.md).

A worker reads, in small fetches (``CSPA_BATCH_SIZE``) with room for one of them on
each agent's channel, a backlog that is still being produced (kept at about
``BACKLOG`` records, so that its fetcher is waiting for room whenever a rebalance
comes), while a second worker joins and leaves again and again. The survivor's
figures must equal the independent ground truth, and at least one batch must have
been dropped by a guard: a run in which none crossed a seek (after ``MAX_ROUNDS``
rounds) checked nothing, and fails saying so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest

from stream.cli import ensure_topics
from stream.settings import Settings
from tests.faults.conftest import (
    PARTITIONS,
    SOURCE_TOPICS,
    Samples,
    counted,
    differences,
    figures_state,
    wait_caught_up,
    write_result,
)
from tests.groundtruth import Dataset, expected, generate
from tests.integration.harness import WorkerProcess, produce_sync, total, wait_for
from tests.integration.test_pipeline import assert_figures_match

pytestmark = [pytest.mark.integration, pytest.mark.faults]

SEED = 24_024
#: join-and-leave cycles of the second worker: two rebalances of the first each
ROUNDS = 3
#: records per fetch, and batches an agent may have queued: many small batches, the
#: fetcher mostly waiting to hand the next one over when a revocation comes
ENV = {"CSPA_BATCH_SIZE": "20", "CSPA_BATCHES_BUFFERED": "1"}
#: recent events: the event topics' time retention would delete old ones (see the crash test)
RECENT = date.today() - timedelta(days=430)
ALL = {(t, p) for t in SOURCE_TOPICS for p in range(PARTITIONS[t])}
#: events per produce; the backlog of the first worker the producer keeps it behind
#: (records): thousands of 20-record batches, so its fetcher is always waiting for room
#: on a channel when a rebalance comes, whatever the machine's speed (a fixed rate let a
#: quiet machine's worker keep up, and no batch crossed a seek)
CHUNK, BACKLOG = 500, 20_000
#: data sets of about 6,500 events each: this many made before the rounds (under
#: coverage, making them as they are needed was slower than the worker read them, and
#: no backlog built up), more made as they are needed, up to ``SETS``
PREMADE, SETS = 24, 120
#: rebalance rounds after ``ROUNDS`` until a guard has dropped a batch, at most
MAX_ROUNDS = 6
GUARDS = {"stale_batches": "cspa_stale_batches_total", "refetches": "cspa_refetches_total"}


def _guarded(worker: WorkerProcess) -> dict[str, float]:
    """How often each guard dropped a batch in this incarnation (read from /metrics)."""
    samples = worker.samples()
    return {key: total(samples, name) for key, name in GUARDS.items()}


def _data_set(n: int) -> Dataset:
    return generate(seed=SEED + n, start=RECENT, days=300, contacts=1_500, calls=2_300,
                    enquiries=300, audits=80, bad=0)


class Producing(threading.Thread):
    """Produces whole data sets one after another, a chunk at a time, keeping the first
    worker about ``BACKLOG`` records behind, until told to stop or ``SETS`` are out.

    Whole sets: a data set cut anywhere would hold, say, a contact's decision without
    its receipt, which no full set has; each set has keys of its own (its seed).
    """

    def __init__(self, bootstrap: str, behind: Callable[[], float]) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.behind = bootstrap, behind
        self.premade = [_data_set(n) for n in range(PREMADE)]
        self.sets: list[Dataset] = []  # whole sets produced
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for n in range(SETS):
                if self.halt.is_set():
                    return
                ds = self.premade[n] if n < PREMADE else _data_set(n)
                for i in range(0, len(ds.messages), CHUNK):
                    while self.behind() > BACKLOG and not self.halt.is_set():
                        time.sleep(0.2)
                    produce_sync(self.bootstrap, ds.messages[i:i + CHUNK])
                self.sets.append(ds)
        except BaseException as exc:  # noqa: BLE001 - reported by ``finish``
            self.error = exc

    def finish(self) -> Dataset:
        """Stop after the set being produced; every event produced (the truth's input)."""
        self.halt.set()
        self.join(120)
        assert not self.is_alive(), "the producer did not stop in 120 s"
        assert self.error is None, f"producing failed: {self.error!r}"
        return Dataset([m for ds in self.sets for m in ds.messages])


def _lag(worker: WorkerProcess) -> float:
    """The worker's consumer lag (records), or 0 while it does not answer (restarting)."""
    try:
        return total(worker.pipeline_samples(), "cspa_consumer_lag")
    except OSError:
        return 0.0


def _flowing(worker: WorkerProcess, producing: Producing, when: str) -> None:
    """Fail unless records are still coming: a rebalance after the last record was read
    seeks under no fetch, and the test would check nothing."""
    assert producing.is_alive(), f"every event was produced {when}: make the data set larger"
    wait_for(lambda: _lag(worker) > BACKLOG / 10, 90, f"a backlog to read {when}")


def _rebalance(first: WorkerProcess, second: WorkerProcess,
               producing: Producing) -> tuple[int, dict[str, float]]:
    """The second worker joins and leaves, at least ``ROUNDS`` times and until a guard
    of either worker has dropped a batch (``MAX_ROUNDS`` at most), while records flow;
    the rounds, and what the second worker's guards dropped, summed over its incarnations."""
    seen = dict.fromkeys(GUARDS, 0.0)  # the second worker's, summed over its incarnations
    rounds = 0
    while rounds < ROUNDS or (rounds < MAX_ROUNDS
                              and sum(seen.values()) + sum(_guarded(first).values()) == 0):
        rounds += 1
        _flowing(first, producing, f"before the second worker joined ({rounds})")
        second.start()  # ready: the rebalance is done and it owns partitions
        _flowing(first, producing, f"before the second worker left ({rounds})")
        last = _guarded(second)
        second.stop()  # SIGTERM: leaves the group, the first worker takes everything back
        seen = {k: seen[k] + last[k] for k in seen}
        wait_for(lambda: figures_state(first) == (ALL, False), 120,
                 f"the first worker owning every partition again ({rounds})")
    return rounds, seen


def _from_changelog(bootstrap: str, first: WorkerProcess, tmp_path: Path,
                    workers: list[WorkerProcess], truth: Samples) -> tuple[int, int]:
    """(lost, double counted) of a new worker that rebuilds everything from the
    changelogs: (0, 0) says the state on Kafka is whole and the survivor's figures
    went wrong; anything else, that the state itself lost or repeated events."""
    first.stop()
    fresh = WorkerProcess(bootstrap, tmp_path / "w3", env=ENV)
    workers.append(fresh)
    fresh.start()
    wait_caught_up(fresh, timeout=240)
    return counted(fresh.samples(), truth)


def test_seeks_under_flowing_fetches_lose_nothing_and_count_nothing_twice(
        broker, workers, tmp_path):
    started = time.monotonic()
    ensure_topics(Settings(broker=broker.bootstrap))
    first = WorkerProcess(broker.bootstrap, tmp_path / "w1", env=ENV)
    producing = Producing(broker.bootstrap, lambda: _lag(first))
    second = WorkerProcess(broker.bootstrap, tmp_path / "w2", env=ENV)
    workers += [first, second]
    first.start()
    producing.start()
    try:
        rounds, seen = _rebalance(first, second, producing)
    finally:
        producing.halt.set()  # (a failed round must not leave it producing)
    produced = producing.finish()
    truth = expected(produced)

    wait_caught_up(first, timeout=240)
    samples = first.samples()
    lost, double = counted(samples, truth)
    guarded = {k: int(seen[k] + v) for k, v in _guarded(first).items()}
    write_result("seek_race.json", {
        "events": len(produced.messages), "rebalances": 2 * rounds, **guarded,
        "events_lost": lost, "events_double_counted": double,
        "seconds": round(time.monotonic() - started, 1)})
    assert (lost, double) == (0, 0), (
        f"(lost, double counted) {(lost, double)}; a fresh worker reading the changelogs: "
        f"{_from_changelog(broker.bootstrap, first, tmp_path, workers, truth)}; "
        f"{differences(samples, truth)}")
    assert_figures_match(samples, truth)
    assert guarded["stale_batches"] > 0, (
        f"no fetched batch crossed a seek in {2 * rounds} rebalances with records flowing "
        f"({guarded}): the race was not exercised, so nothing above tested it")
