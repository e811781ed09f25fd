"""The ceiling: how fast the backlog can be read at all.

* ``aiokafka``: a plain aiokafka consumer (no group, no commits) reading every topic from
  the start and decoding each value with orjson; the clock runs from the first record to
  the N-th. Run in its own process: ``python -m bench.ceiling --bootstrap B --n N T...``.
* ``java``: Kafka's own ``org.apache.kafka.tools.ConsumerPerformance`` from the broker's
  jars, once per topic (4.1.1 has no topic regex); its CSV line gives MB/s and msg/s,
  with (``nMsg.sec``) and without (``fetch.nMsg.sec``) the group join.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from bench import ROOT

JAVA_FIELDS = ("start.time", "end.time", "data.consumed.in.MB", "MB.sec",
               "data.consumed.in.nMsg", "nMsg.sec", "rebalance.time.ms", "fetch.time.ms",
               "fetch.MB.sec", "fetch.nMsg.sec")


async def _consume(bootstrap: str, topics: list[str], n: int, timeout: float) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    count, nbytes, first, last, loads = 0, 0, 0.0, 0.0, orjson.loads
    deadline = time.monotonic() + timeout
    try:
        while count < n and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for records in batches.values():
                if not first:
                    first = time.perf_counter()
                for r in records:
                    loads(r.value)
                    nbytes += len(r.value)
                count += len(records)
                last = time.perf_counter()
    finally:
        await consumer.stop()
    seconds = max(last - first, 1e-9)
    return {"events": count, "seconds": seconds, "events_per_s": count / seconds,
            "mb_per_s": nbytes / seconds / 1e6, "complete": count >= n}


def aiokafka_ceiling(bootstrap: str, topics: list[str], n: int,
                     timeout: float = 600) -> dict[str, Any]:
    """Run the aiokafka ceiling in a fresh process; its JSON result."""
    res = subprocess.run([sys.executable, "-m", "bench.ceiling", "--bootstrap", bootstrap,
                          "--n", str(n), "--timeout", str(timeout), *topics], cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                         text=True, timeout=timeout + 60, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"aiokafka ceiling failed:\n{res.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return result


def parse_java(stdout: str) -> dict[str, float]:
    """The figures of ConsumerPerformance's CSV result line (header and value line)."""
    lines = [ln for ln in stdout.splitlines() if ln.count(",") == len(JAVA_FIELDS) - 1]
    if len(lines) < 2:
        raise ValueError(f"no ConsumerPerformance result in:\n{stdout[-2000:]}")
    names = [x.strip() for x in lines[0].split(",")]
    values = [x.strip() for x in lines[-1].split(",")]
    return {k: float(v) for k, v in zip(names, values, strict=True) if k in JAVA_FIELDS[2:]}


def java_ceiling(bootstrap: str, counts: dict[str, int], lib: Path,
                 timeout_ms: int = 60_000) -> dict[str, Any]:
    """ConsumerPerformance per topic; totals use the summed times (topics one after another)."""
    java = Path(os.environ["JAVA_HOME"], "bin", "java") if "JAVA_HOME" in os.environ else "java"
    log4j = f"-Dlog4j2.configurationFile={ROOT / 'tools' / 'kafka' / 'log4j2.properties'}"
    per_topic: dict[str, dict[str, float]] = {}
    for topic, n in counts.items():
        cmd = [str(java), "-Xmx512m", log4j, "-cp", f"{lib}/*",
               "org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server", bootstrap,
               "--topic", topic, "--messages", str(n), "--timeout", str(timeout_ms)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False,
                             timeout=timeout_ms / 1000 + 120)
        if res.returncode != 0:
            raise RuntimeError(f"ConsumerPerformance failed on {topic}:\n{res.stderr[-2000:]}")
        per_topic[topic] = parse_java(res.stdout)
    msgs = sum(t["data.consumed.in.nMsg"] for t in per_topic.values())
    mb = sum(t["data.consumed.in.MB"] for t in per_topic.values())
    fetch_s = sum(t["fetch.time.ms"] for t in per_topic.values()) / 1000
    total_s = sum(t["data.consumed.in.nMsg"] / t["nMsg.sec"] for t in per_topic.values()
                  if t["nMsg.sec"] > 0)
    return {"events": msgs, "mb": mb, "fetch_seconds": fetch_s,
            "events_per_s": msgs / max(fetch_s, 1e-9), "mb_per_s": mb / max(fetch_s, 1e-9),
            "events_per_s_with_join": msgs / max(total_s, 1e-9), "per_topic": per_topic,
            "complete": msgs >= sum(counts.values())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.ceiling")
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("topics", nargs="+")
    a = ap.parse_args(argv)
    print(json.dumps(asyncio.run(_consume(a.bootstrap, a.topics, a.n, a.timeout))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
