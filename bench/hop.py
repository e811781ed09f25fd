"""What the repartition hop costs (issue 29.6): the same work with and without it, one run.

Every simulated contact names a child, so each one hops, re-keyed by child, to the
worker's repartition topic, and the children table folds it. The *without* side is the
same backlog with ``child_key`` taken out of every ``contact.received`` (the only event
that carries one): no hop, no children table, everything else the same. Each side's
backlog is produced to a broker of its own started for this phase (the bench's broker
holds more than the backlog by then), so both sides read the same events from topics of
the same shape on brokers of the same age, and the brokers sit idle in turn.

* Throughput: ``PAIRS`` interleaved pairs (with, without, with, without...), each after
  the quiet wait, each a fresh worker with empty state and the pairs' checkpoint
  interval, each checked exact against its own backlog's independent figures.
* Latency: one more replay per side (default intervals), then live traffic at the
  bench's rate, its contacts naming children on the *with* side only.
* Recovery: a little more live traffic, then that worker SIGKILLed and restarted on its
  data directory, then with it emptied (the cold rebuild), as the recovery phase does,
  at the backlog's size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

from bench import CACHE, dataset, expected, live, pairs, producing, replay
from bench.dataset import Msg
from bench.procs import free_port, quick_sums
from stream.cli import ensure_topics
from stream.dev.broker import BrokerConfig, LocalBroker
from stream.settings import Settings

#: interleaved (with, without) throughput pairs
PAIRS = 2
SIDES = ("with", "without")
#: live events generated as the load before the restart (about 1.3 events each)
LOAD = 1_000


def without_child_keys(messages: Iterable[Msg]) -> list[Msg]:
    """The messages with ``child_key`` taken out of every event carrying one."""
    out = []
    for m in messages:
        if b'"child_key"' in m.value:
            event = orjson.loads(m.value)
            event.pop("child_key", None)
            m = m._replace(value=orjson.dumps(event))
        out.append(m)
    return out


def side_broker(tmp: Path, side: str) -> LocalBroker:
    """A broker of the same settings as the bench's, for one side."""
    return LocalBroker(BrokerConfig(tmp / f"broker-hop-{side}", port=free_port(),
                                    controller_port=free_port(), cache_dir=CACHE,
                                    heap="1g"))


def measure(bootstraps: dict[str, str], tmp: Path, total: int,
            wants: dict[str, expected.Figures], timeout: float, periodic: float,
            live_traffic: tuple[float, float, float | None],
            quiet: Callable[[str], None], rounds: int = PAIRS) -> dict[str, Any]:
    """Both sides' throughput pairs (``rounds`` of them), then each side's latency and
    recovery."""
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    for i in range(1, rounds + 1):
        for side in SIDES:
            quiet(f"hop_{side}_{i}")
            runs[side].append(pairs.worker_run(bootstraps[side], tmp, i, total, wants[side],
                                               timeout, periodic, app=f"bench-hop-{side}"))
    out: dict[str, Any] = {"pairs": rounds, "periodic_seconds": periodic, "runs": runs}
    for side in SIDES:
        out[side] = {"throughput": pairs.spread([r["events_per_s"] for r in runs[side]]),
                     **_latency_and_recovery(side, bootstraps[side], tmp, total, wants[side],
                                             timeout, live_traffic, quiet)}
    ratios = [w["events_per_s"] / o["events_per_s"]
              for w, o in zip(runs["with"], runs["without"], strict=True)]
    out["throughput_ratio"] = {**pairs.spread(ratios), "each": ratios}
    return out


def _latency_and_recovery(side: str, bootstrap: str, tmp: Path, total: int,
                          want: expected.Figures, timeout: float,
                          live_traffic: tuple[float, float, float | None],
                          quiet: Callable[[str], None]) -> dict[str, Any]:
    """``live_traffic``: (events/s, seconds, the worker's checkpoint interval or None for
    its default)."""
    rate, seconds, checkpoint_s = live_traffic
    env = None if checkpoint_s is None else {"CSPA_CHECKPOINT_SECONDS": f"{checkpoint_s:g}"}
    quiet(f"hop_{side}_state")
    worker, sampler, tp = replay.throughput(bootstrap, tmp, f"bench-hop-{side}-state",
                                            total, want, timeout, env=env)
    hops = quick_sums(worker.pipeline_text(), "cspa_hops_sent_total")["cspa_hops_sent_total"]
    try:
        quiet(f"hop_{side}_latency")
        lat, sent = live.latency(worker, bootstrap, total, rate, seconds, timeout,
                                 children=side == "with")
        # a little more live traffic as the load: a checkpoint written after it holds it all
        load = list(dataset.live(LOAD, seed=9, children=side == "with"))
        restarted, rec = live.recovery(worker, bootstrap, load, len(load),
                                       total + len(sent), timeout)
    finally:
        sampler.stop()
        worker.stop()
    restarted.stop()
    lat.pop("buckets", None)
    return {"state_replay_events_per_s": tp["events_per_s"], "hops_sent": hops,
            "latency": lat,
            "recovery": {k: rec[k] for k in ("seconds", "series_compared", "restore_s",
                                             "records_rebuilt") if k in rec}
            | {"cold_seconds": rec["cold"]["seconds"],
               "cold_records": rec["cold"].get("records_rebuilt")}}


def figures(hop: dict[str, Any]) -> dict[str, float]:
    """The phase's figures for the results table (bench/report.py: ``hop_*``)."""
    w, o = hop["with"], hop["without"]
    return {"hop_with_events_per_s": w["throughput"]["median"],
            "hop_without_events_per_s": o["throughput"]["median"],
            "hop_throughput_ratio": hop["throughput_ratio"]["median"],
            "hop_latency_p99_with_ms": w["latency"]["p99_s"] * 1e3,
            "hop_latency_p99_without_ms": o["latency"]["p99_s"] * 1e3,
            "hop_recovery_with_s": w["recovery"]["seconds"],
            "hop_recovery_without_s": o["recovery"]["seconds"],
            "hop_cold_rebuild_with_s": w["recovery"]["cold_seconds"],
            "hop_cold_rebuild_without_s": o["recovery"]["cold_seconds"]}


def run(tmp: Path, msgs: list[Msg], want: expected.Figures, timeout: float,
        periodic: float, live_traffic: tuple[float, float, float | None],
        quiet: Callable[[str], None], rounds: int = PAIRS) -> dict[str, Any]:
    """The whole phase, each side's broker started and stopped inside it (``measure``)."""
    stripped = without_child_keys(msgs)
    backlogs = {"with": msgs, "without": stripped}
    wants = {"with": want, "without": expected.compute(stripped)}
    brokers = {side: side_broker(tmp, side) for side in SIDES}
    try:
        for side, broker in brokers.items():
            broker.start(timeout=120)
            ensure_topics(Settings(broker=broker.bootstrap))
            producing.produce(broker.bootstrap, backlogs[side])
        hop = measure({side: b.bootstrap for side, b in brokers.items()}, tmp, len(msgs),
                      wants, timeout, periodic, live_traffic, quiet, rounds)
    finally:
        for broker in brokers.values():
            broker.stop()
    hop["stripped_events"] = sum(a.value != b.value for a, b in zip(msgs, stripped,
                                                                    strict=True))
    return hop
