"""A real three-broker KRaft cluster on loopback, topics at replication 3 and
``min.insync.replicas`` 2 (through the settings): one broker is SIGKILLed while the worker
folds and idempotent producers send with ``acks=all``, then restarted. Nothing is lost,
nothing counted twice, every figure equals the independent ground truth.

The broker killed is the consumer group's coordinator (the leader of ``__consumer_offsets``,
one partition here), so the group's coordinator moves too, besides a third of the
partitions' leaders. Seconds and peak memory (the three broker JVMs and the worker, summed
resident set sizes) go to ``results/cluster.json``. The rest of the suite runs on one broker.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from stream.cli import ensure_topics
from stream.dev.broker import LocalCluster, create_topics
from stream.settings import Settings
from tests.faults.conftest import (
    SOURCE_TOPICS,
    b64,
    counted,
    differences,
    read_deadletter,
    wait_caught_up,
    write_result,
)
from tests.groundtruth import expected, generate
from tests.integration.harness import (
    CACHE,
    WorkerProcess,
    free_port,
    produce_sync,
    total,
    wait_for,
)
from tests.integration.test_pipeline import assert_figures_match
from tests.integration.test_replication_check import run_worker

pytestmark = [pytest.mark.integration, pytest.mark.faults]

NODES = 3
ENV = {"CSPA_REPLICATION_FACTOR": "3", "CSPA_MIN_INSYNC_REPLICAS": "2"}
PRELOAD = 0.5  # share of the events sent before the worker starts: it is folding them
CHUNKS = 10  # the rest, sent while the broker is killed and restarted
PAUSE_SECONDS = 0.5  # between chunks: the producers are still sending through the outage
DOWN_SECONDS = 5.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    ports = [(free_port(), free_port()) for _ in range(NODES)]
    c = LocalCluster(tmp_path_factory.mktemp("cluster"), ports, heap="384m", cache_dir=CACHE)
    try:
        c.start(timeout=180)
        yield c
    finally:
        c.stop()


def settings(cluster: LocalCluster, app_id: str = "cspa") -> Settings:
    return Settings(broker=cluster.bootstrap, app_id=app_id, replication_factor=3,
                    min_insync_replicas=2)


# --- Kafka's own view, read directly --------------------------------------------------------

async def _topics(bootstrap: str, names: list[str]) -> list[dict[str, Any]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        return list(await admin.describe_topics(names))
    finally:
        await admin.close()


async def _min_insync(bootstrap: str, names: list[str]) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        res = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n, {"min.insync.replicas": None})
             for n in names])
        return {name: value for r in res for _, _, _, name, entries in r.resources
                for key, value, *_ in entries if key == "min.insync.replicas"}
    finally:
        await admin.close()


def coordinator(bootstrap: str) -> int:
    """Node id leading ``__consumer_offsets`` (one partition: every group's coordinator)."""
    (offsets,) = asyncio.run(_topics(bootstrap, ["__consumer_offsets"]))
    return int(offsets["partitions"][0]["leader"])


def in_sync(bootstrap: str, names: list[str]) -> bool:
    """Every partition of ``names`` has all its replicas in sync."""
    return all(len(p["isr"]) == len(p["replicas"]) == NODES
               for t in asyncio.run(_topics(bootstrap, names)) for p in t["partitions"])


# --- memory ---------------------------------------------------------------------------------

def _rss(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    kib = [ln.split()[1] for ln in status.splitlines() if ln.startswith("VmRSS:")]
    return int(kib[0]) * 1024 if kib else 0


class PeakMemory(threading.Thread):
    """Samples the summed RSS of the broker JVMs and the worker twice a second."""

    def __init__(self, cluster: LocalCluster, worker: WorkerProcess) -> None:
        super().__init__(daemon=True)
        self.cluster, self.worker = cluster, worker
        self.peak = self.brokers = self.worker_peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            brokers = sum(_rss(pid) for pid in self.cluster.pids())
            proc = self.worker.proc
            worker = _rss(proc.pid) if proc is not None else 0
            self.brokers = max(self.brokers, brokers)
            self.worker_peak = max(self.worker_peak, worker)
            self.peak = max(self.peak, brokers + worker)


# --- the tests ------------------------------------------------------------------------------

def test_worker_refuses_a_changelog_with_too_few_replicas(cluster, tmp_path):
    # Source topics at 3 replicas; one changelog made beforehand with only 2.
    bad = "short-records-cspa.calls.v1-changelog"
    asyncio.run(create_topics(cluster.bootstrap, [(bad, 6, {"cleanup.policy": "compact"})],
                              replication_factor=2))
    ensure_topics(settings(cluster))
    res = run_worker(cluster.bootstrap, tmp_path, CSPA_APP_ID="short", **ENV)
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.strip() == (f"refusing to start: topic {bad} has 2 replicas, "
                                  "CSPA_REPLICATION_FACTOR is 3")


def test_broker_sigkill_loses_nothing_and_counts_nothing_twice(cluster, tmp_path):
    started = time.monotonic()
    ds = generate(seed=2323, start=date.today() - timedelta(days=120), days=100, contacts=8000,
                  calls=10_000, enquiries=1600, audits=400, bad=12)
    truth = expected(ds)
    ensure_topics(settings(cluster))
    changelogs = [f"cspa-records-{t}-changelog" for t in SOURCE_TOPICS]
    topics = asyncio.run(_topics(cluster.bootstrap, [*SOURCE_TOPICS, *changelogs]))
    assert {len(p["replicas"]) for t in topics for p in t["partitions"]} == {3}
    assert set(asyncio.run(_min_insync(cluster.bootstrap, [*SOURCE_TOPICS, *changelogs]))
               .values()) == {"2"}

    worker = WorkerProcess(cluster.bootstrap, tmp_path / "w1", env=ENV)
    memory = PeakMemory(cluster, worker)
    memory.start()
    first = int(len(ds.messages) * PRELOAD)
    produce_sync(cluster.bootstrap, ds.messages[:first], acks="all")
    size = -(-(len(ds.messages) - first) // CHUNKS)
    chunks = [ds.messages[i:i + size] for i in range(first, len(ds.messages), size)]
    sent: list[int] = []
    failed: list[BaseException] = []

    def send() -> None:  # idempotent producers, acks=all (tests.integration.harness.produce)
        try:
            for chunk in chunks:
                sent.append(produce_sync(cluster.bootstrap, chunk, acks="all"))
                time.sleep(PAUSE_SECONDS)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failed.append(exc)

    producer = threading.Thread(target=send, daemon=True)
    try:
        worker.start()
        pid = worker.proc.pid if worker.proc else None
        victim = coordinator(cluster.bootstrap)
        node = cluster.nodes[victim - 1]
        producer.start()
        wait_for(lambda: total(worker.pipeline_samples(), "cspa_events_consumed_total"), 120,
                 "the worker folding")
        folding = total(worker.pipeline_samples(), "cspa_consumer_lag")
        t0 = time.monotonic()
        node.kill()
        assert not node.is_running()
        chunks_before = len(sent)
        time.sleep(DOWN_SECONDS)
        node.start(timeout=120)
        chunks_while_down = len(sent) - chunks_before
        down = round(time.monotonic() - t0, 1)
        print(f"\nnode {victim} (coordinator) killed with {folding:.0f} events not yet "
              f"folded, back after {down}s; {chunks_while_down} chunks sent meanwhile")
        assert folding > 0, "the worker had folded everything before the kill: preload more"
        producer.join(300)
        assert not producer.is_alive() and not failed, failed
        assert first + sum(sent) == len(ds.messages)

        wait_caught_up(worker, timeout=300)
        assert worker.proc is not None and worker.proc.pid == pid and worker.proc.poll() is None, (
            "the worker did not ride out the broker kill:\n" + worker.log_tail())
        samples = worker.samples()
        resynced = time.monotonic()
        wait_for(lambda: in_sync(cluster.bootstrap, [*SOURCE_TOPICS, *changelogs]), 120,
                 "the restarted node back in every partition's in-sync replicas")
        resynced_in = round(time.monotonic() - resynced, 1)
    finally:
        memory.done.set()
        worker.stop()
    lost, double = counted(samples, truth)
    dead = read_deadletter(cluster.bootstrap, ds.bad)
    distinct = {(d["partition"], d["offset"]) for d in dead}
    mib = 2**20
    write_result("cluster.json", {
        "nodes": NODES, "replication_factor": 3, "min_insync_replicas": 2,
        "events": len(ds.messages), "killed_node": victim, "killed_was_coordinator": True,
        "seconds_down": down, "events_unfolded_at_kill": folding,
        "chunks_sent_before_kill": chunks_before, "chunks_sent_while_down": chunks_while_down,
        "isr_restored_after_catch_up_seconds": resynced_in,
        "events_lost": lost, "events_double_counted": double,
        "deadlettered_distinct": len(distinct),
        "seconds": round(time.monotonic() - started, 1),
        "peak_rss_mib": round(memory.peak / mib), "peak_brokers_rss_mib": round(
            memory.brokers / mib), "peak_worker_rss_mib": round(memory.worker_peak / mib)})
    assert (lost, double) == (0, 0), differences(samples, truth)
    assert_figures_match(samples, truth)
    assert len(distinct) == ds.bad
    assert {b64(d["value_b64"]) for d in dead} == {m.value for m in ds.messages
                                                   if m.key == b"bad"}
