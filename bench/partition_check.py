"""``python -m bench.partition_check``: what the worker's partition check costs, in process.

The benchmark's backlog (the same events as ``bench.throughput``), each placed where
the contract's partitioner puts it, cut into per-partition batches and folded by the
worker's own ``TopicAgent.apply`` (decode, fold, recount; no Kafka), each batch
checked just before (``FamilyProcessor.misplaced``: hashing every key and comparing),
``--rounds`` times. Figures are CPU seconds of this process (``time.process_time``),
the check and the apply timed batch by batch so that both see the same machine; the
check's cost over the apply's is its share of the work. Without Kafka's share of an
event's cost that is an upper bound on its share of the worker's throughput.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from faust.types import TP
from prometheus_client import CollectorRegistry

from bench import dataset
from stream.contract.decoder import Decoder
from stream.contract.partitioner import partition_of
from stream.contract.taxonomy import load_taxonomy
from stream.contract.topics import event_families, load_topics
from stream.settings import Settings
from stream.state import progress
from stream.worker.agents import TopicAgent
from stream.worker.app import fact_context
from stream.worker.batches import Batch
from stream.worker.metrics import PipelineMetrics
from stream.worker.processor import CellState, FamilyProcessor


def batches(msgs: list[dataset.Msg], size: int) -> list[tuple[str, Batch]]:
    """(family, batch) in arrival order: each partition's records in runs of ``size``."""
    families = event_families(load_topics())
    by_topic = {s.name: (f, s.partitions) for f, s in families.items()}
    runs: dict[tuple[str, int], list[Any]] = defaultdict(list)
    out: list[tuple[str, Batch]] = []
    for offset, m in enumerate(msgs):
        family, partitions = by_topic[m.topic]
        tp = (m.topic, partition_of(m.key, partitions))
        runs[tp].append(SimpleNamespace(offset=offset, key=m.key, value=m.value,
                                        timestamp=m.timestamp_ms))
        if len(runs[tp]) == size:
            out.append((family, Batch(TP(*tp), 1, runs.pop(tp))))
    out += [(by_topic[t][0], Batch(TP(t, p), 1, r)) for (t, p), r in runs.items()]
    return out


def replay(work: list[tuple[str, Batch]]) -> tuple[float, float]:
    """CPU seconds to apply every batch without the check, and to check every batch.

    The two are timed batch by batch, one after the other, so that both see the
    machine as it was at that moment: their ratio holds when its speed drifts.
    """
    settings = Settings()
    ctx, taxonomy = fact_context(settings), load_taxonomy()
    metrics = PipelineMetrics(CollectorRegistry())
    state = CellState()
    agents, checks = {}, {}
    for family, spec in event_families(load_topics()).items():
        processor = FamilyProcessor(spec.name, Decoder(family, taxonomy), ctx, state, metrics)
        checks[family] = FamilyProcessor(spec.name, Decoder(family, taxonomy), ctx, state,
                                         metrics, partitions=spec.partitions)
        table: Any = SimpleNamespace(data={})  # a table whose store is a plain dict
        nothing: Any = None  # apply writes nothing and sends no dead letters
        agents[family] = TopicAgent(processor, table, progress.Frontier(), nothing, nothing,
                                    metrics, epoch_of=lambda tp: 1)
    applying = checking = 0.0
    clock = time.process_time
    for family, batch in work:
        agent = agents[family]
        t0 = clock()
        wrong = checks[family].misplaced([r.key for r in batch.records], batch.tp.partition)
        t1 = clock()
        agent.apply(batch)
        t2 = clock()
        assert not wrong  # every record is where the contract puts it
        agent.pending.clear()
        agent.owners.clear()
        checking, applying = checking + t1 - t0, applying + t2 - t1
    return applying, checking


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.partition_check", description=__doc__)
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--batch", type=int, default=500, help="records per partition batch")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args(argv)
    msgs = dataset.backlog(a.events)
    work = batches(msgs, a.batch)
    applying, checking = [], []
    for _ in range(a.rounds):
        a_s, c_s = replay(work)
        applying.append(a_s)
        checking.append(c_s)
    n = len(msgs)
    shares = [c / a for c, a in zip(checking, applying, strict=True)]
    print(json.dumps({
        "events": n, "batch": a.batch, "batches": len(work),
        "apply_us_per_event": [round(s / n * 1e6, 2) for s in applying],
        "check_us_per_event": [round(s / n * 1e6, 3) for s in checking],
        "check_over_apply": [round(r, 4) for r in shares],
        "median_check_over_apply": round(statistics.median(shares), 4)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
