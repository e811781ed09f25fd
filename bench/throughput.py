"""``python -m bench.throughput``: only the one-worker replay, for profiling work.

The same backlog, broker settings and exactness check as the full benchmark's
throughput phase, without the peers, latency, recovery and scale-out phases, so one
change can be measured on the same replay in a couple of minutes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench import CACHE, dataset, expected, live, producing, replay, report
from bench.procs import Worker, free_port, wait_quiet
from stream.cli import ensure_topics
from stream.dev.broker import BrokerConfig, LocalBroker
from stream.settings import Settings


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__)
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--scale", type=float, default=150.0)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--profile", type=Path, help="py-spy a worker into this raw file")
    ap.add_argument("--profile-seconds", type=float, default=10.0)
    a = ap.parse_args(argv)
    msgs = dataset.backlog(a.events, a.seed, a.scale)
    want = expected.compute(msgs)
    tmp = Path(tempfile.mkdtemp(prefix="cspa-tp-"))
    broker = LocalBroker(BrokerConfig(tmp / "broker", port=free_port(),
                                      controller_port=free_port(), cache_dir=CACHE, heap="1g"))
    try:
        broker.start(timeout=120)
        ensure_topics(Settings(broker=broker.bootstrap))
        producing.produce(broker.bootstrap, msgs)
        wait_quiet()  # as the full benchmark does before each measured phase
        worker, sampler, tp = replay.throughput(broker.bootstrap, tmp, "tp", len(msgs), want,
                                                120 + a.events / 500)
        sampler.stop()
        worker.stop()
        tp["stalls"] = live.stall_summary(worker)
        if a.profile is not None:  # a second fresh worker, profiled while it replays
            prof = Worker(broker.bootstrap, tmp / "prof", "prof").start()
            while prof.alive() and _consumed(prof) == 0:
                time.sleep(0.05)
            print(json.dumps(live.profile(prof, a.profile_seconds, a.profile)))
            prof.stop()
    finally:
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    peak_mib = round(max(sampler.peak(), tp["peak_rss_bytes"]) / report.MIB)
    print(json.dumps({**{k: tp[k] for k in ("events", "seconds", "events_per_s", "stalls")},
                      "peak_rss_mib": peak_mib}))
    return 0


def _consumed(worker: Worker) -> float:
    try:
        return worker.consumed()
    except OSError:
        return 0.0


if __name__ == "__main__":
    sys.exit(main())
