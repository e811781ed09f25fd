"""Scale-out: the same fresh backlog consumed by 1 and by 2 workers of one app id; and
failover: one of 2 workers with standby replicas killed.

For each count a new app id, whose group offsets are first set to the end of the topics
(the earlier phases' messages are not its backlog). Its workers start, settle on a stable
assignment, and are paused (SIGSTOP, with a 60 s session timeout so the group keeps
them); the backlog is then produced afresh at full speed, the workers resumed (SIGCONT),
and the clock runs from their first message to the N-th. So no worker starts late, no
rebalance happens mid-replay, and the producer does not compete for the cores.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.dataset import Msg
from bench.live import SLOW_SCRAPE_S, _snapshot, same_figures
from bench.procs import Worker, wait_for
from bench.producing import produce
from bench.replay import ExactnessError, check_exact, replay
from stream.contract.topics import event_families, folded, load_topics

SESSION_TIMEOUT = "60"


def folded_topics(app_id: str) -> dict[str, int]:
    """Every topic a worker of ``app_id`` folds and owns, with its partition count: the
    event topics and the app id's own repartition topic."""
    return {s.name: s.partitions for s in folded(load_topics(app_id=app_id)).values()}


async def _skip_to_end(bootstrap: str, group: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        # a fresh app id starts each event topic at its end, so no earlier phase's events
        # are folded again; its repartition topic is its own, new and empty (not made yet)
        tps = [TopicPartition(s.name, p) for s in event_families(load_topics()).values()
               for p in range(s.partitions)]
        consumer.assign(tps)
        end = await consumer.end_offsets(tps)
        await consumer.commit(dict(end))
        return sum(end.values())
    finally:
        await consumer.stop()


def _owned(workers: list[Worker]) -> list[tuple[int, str, int]] | None:
    """(worker, topic, partition) owned; None unless every event partition has one owner."""
    owned: list[tuple[int, str, int]] = []
    for i, w in enumerate(workers):
        if not w.ready():
            return None
        owned += [(i, t, p) for t, p in w.get_json("/health")["owned"]]
    wanted = sum(folded_topics(workers[0].app_id).values()) if workers else 0
    complete = len(owned) == len({o[1:] for o in owned}) == wanted
    return owned if complete else None


def _settled(workers: list[Worker]) -> bool:
    """The same complete assignment two seconds apart (no rebalance under way)."""
    first = _owned(workers)
    time.sleep(2.0)
    return first is not None and first == _owned(workers)


def _signal(workers: list[Worker], sig: signal.Signals) -> None:
    for w in workers:
        if w.proc is not None and w.proc.poll() is None:
            os.killpg(w.pid, sig)


def scale_out(bootstrap: str, workdir: Path, backlog: list[Msg], timeout: float,
              counts: tuple[int, ...] = (1, 2)) -> dict[str, Any]:
    out: dict[str, Any] = {"events": len(backlog)}
    for k in counts:
        app_id = f"bench-scale{k}"
        skipped = asyncio.run(_skip_to_end(bootstrap, app_id))
        workers = [Worker(bootstrap, workdir / app_id / f"w{i}", app_id,
                          env={"CSPA_SESSION_TIMEOUT_SECONDS": SESSION_TIMEOUT})
                   for i in range(k)]
        try:
            for w in workers:
                w.start()
            wait_for(partial(_settled, workers), 180, f"{k} worker(s) settled", interval=0.5)
            _signal(workers, signal.SIGSTOP)
            _, produce_s = produce(bootstrap, backlog)
            _signal(workers, signal.SIGCONT)
            run = replay(workers, len(backlog), timeout)
            run |= {"skipped_offsets": skipped, "produce_seconds_while_paused": produce_s,
                    "peak_rss_bytes": [w.hwm() for w in workers],
                    "owned": {w.port: len(w.get_json("/health")["owned"]) for w in workers}}
            out[str(k)] = run
        finally:
            _signal(workers, signal.SIGCONT)
            for w in workers:
                w.stop()
        time.sleep(0.5)
    out["speedup"] = out[str(counts[-1])]["events_per_s"] / out[str(counts[0])]["events_per_s"]
    return out


def failover(bootstrap: str, workdir: Path, backlog: list[Msg], expected: Any,
             timeout: float, standby_replicas: int = 1, extra: Iterable[Msg] = (),
             extra_events: int = 0) -> dict[str, Any]:
    """Two workers with standby replicas replay a fresh backlog; one is SIGKILLed.

    Seconds from the kill until the survivor alone owns every partition, says it is
    ready and serves figures equal to the independent ones (the killed member leaves
    the group after the session timeout, 10 s by default, which is in the figure).
    With ``extra`` (``extra_events`` messages: a national year) loaded as well, the
    survivor's figures must equal the sum of both workers' before the kill.
    """
    app_id = "bench-failover"
    asyncio.run(_skip_to_end(bootstrap, app_id))
    env = {"CSPA_STANDBY_REPLICAS": str(standby_replicas)}
    workers = [Worker(bootstrap, workdir / app_id / f"w{i}", app_id, env=env) for i in range(2)]
    try:
        for w in workers:
            w.start()
        wait_for(partial(_settled, workers), 180, "2 workers settled", interval=0.5)
        produce(bootstrap, backlog)
        if extra_events:
            produce(bootstrap, extra)
        replay(workers, len(backlog) + extra_events, timeout)
        time.sleep(3.5)  # markers on Kafka, standbys caught up with the changelogs
        owned = [len(w.get_json("/health")["owned"]) for w in workers]
        before: dict[Any, float] = {}
        if extra_events:
            for w in workers:
                for k, v in _snapshot(w.samples(timeout=SLOW_SCRAPE_S)).items():
                    before[k] = before.get(k, 0.0) + v
        killed = time.time()
        workers[1].stop(signal.SIGKILL)

        probes: list[tuple[float, float, bool]] = []  # (s after the kill, s taken, exact)
        owns_all: list[float] = []

        def exact_alone() -> bool | None:
            if _owned(workers[:1]) is None:
                return None
            owns_all[:] = owns_all or [time.time() - killed]
            started = time.time()
            try:
                if extra_events:
                    ok = same_figures(_snapshot(workers[0].samples(timeout=SLOW_SCRAPE_S)),
                                      before)
                else:
                    check_exact(workers[0], expected)
                    ok = True
            except (ExactnessError, OSError):
                ok = False
            probes.append((round(started - killed, 2), round(time.time() - started, 2), ok))
            return ok or None

        wait_for(exact_alone, timeout, "the survivor's exact figures", interval=0.5)
        # When the survivor owned every partition and was ready, and each figure
        # probe after that: when it began, how long the scrape took, whether exact.
        return {"events": len(backlog) + extra_events, "standby_replicas": standby_replicas,
                "owned_before": owned, "seconds": time.time() - killed,
                "ready_owning_all_s": owns_all[0] if owns_all else None, "probes": probes}
    finally:
        for w in workers:
            w.stop()
