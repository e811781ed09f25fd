"""``python -m bench.partition_check``: what the worker's partition check costs, in process.

The benchmark's backlog (the same events as ``bench.throughput``), each placed where
the contract's partitioner puts it, cut into per-partition batches of ``--batch``
records and folded by the worker's own ``TopicAgent.apply`` (decode, fold, recount; no
Kafka), ``--rounds`` times. Each batch's records are made afresh just before it, as
aiokafka's fetcher makes them (``ConsumerRecord``s with their own key and value bytes),
and not timed: the check and the apply then find them in the cache, as in the worker
(records made once and replayed 300,000 at a time come from memory, and whichever
touches a batch first is charged for that).

Figures are CPU seconds of this process (``time.process_time``), per event, timed
batch by batch so that all see the machine as it was at that moment (their ratios
hold when its speed drifts): ``check``, the worker's check
(``FamilyProcessor.misplaced``, the batch's key list included); ``apply``, the apply
that follows it (its processor checks nothing); ``python_check``, the check with the
pure-Python partitioner (``partitions_of_python``: the fallback where ``make install``
found no C compiler, and the only one before BENCHMARKS.md step 29). The check's cost
over the apply's is its share of the work: without Kafka's share of an event's cost
(fetch, Faust, changelog writes), an upper bound on its share of the worker's throughput.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from aiokafka.structs import ConsumerRecord
from faust.types import TP
from prometheus_client import CollectorRegistry

from bench import dataset
from stream.contract.decoder import Decoder
from stream.contract.partitioner import COMPILED, partition_of, partitions_of_python
from stream.contract.taxonomy import load_taxonomy
from stream.contract.topics import event_families, load_topics
from stream.settings import Settings
from stream.state import progress
from stream.state.facts import fact_context
from stream.worker.agents import TopicAgent
from stream.worker.batches import Batch
from stream.worker.metrics import PipelineMetrics
from stream.worker.processor import CellState, FamilyProcessor

#: one partition's run of messages: (family, topic, partition, [(offset, message)])
Run = tuple[str, str, int, list[tuple[int, dataset.Msg]]]


def runs(msgs: list[dataset.Msg], size: int) -> list[Run]:
    """Each partition's messages in runs of ``size``, in arrival order."""
    families = event_families(load_topics())
    by_topic = {s.name: (f, s.partitions) for f, s in families.items()}
    open_runs: dict[tuple[str, int], list[tuple[int, dataset.Msg]]] = defaultdict(list)
    out: list[Run] = []
    for offset, m in enumerate(msgs):
        family, partitions = by_topic[m.topic]
        tp = (m.topic, partition_of(m.key, partitions))
        open_runs[tp].append((offset, m))
        if len(open_runs[tp]) == size:
            out.append((family, *tp, open_runs.pop(tp)))
    out += [(by_topic[t][0], t, p, r) for (t, p), r in open_runs.items()]
    return out


def fetched(run: Run) -> Batch:
    """The run as aiokafka's fetcher hands it over: new records, new key and value bytes."""
    _, topic, partition, messages = run
    return Batch(TP(topic, partition), 1, [
        ConsumerRecord(topic, partition, offset, m.timestamp_ms, 0, bytes(memoryview(m.key)),
                       bytes(memoryview(m.value)), None, len(m.key), len(m.value), [])
        for offset, m in messages])


def agents(check: bool) -> dict[str, TopicAgent]:
    """One agent per family, on figures of their own, checking partitions or not."""
    settings = Settings()
    ctx, taxonomy = fact_context(settings), load_taxonomy()
    metrics = PipelineMetrics(CollectorRegistry())
    state, out = CellState(), {}
    for family, spec in event_families(load_topics()).items():
        processor = FamilyProcessor(spec.name, Decoder(family, taxonomy), ctx, state, metrics,
                                    partitions=spec.partitions if check else None)
        table: Any = SimpleNamespace(data={})  # a table whose store is a plain dict
        nothing: Any = None  # apply writes nothing and sends no dead letters
        out[family] = TopicAgent(processor, table, progress.Frontier(), nothing, nothing,
                                 metrics, epoch_of=lambda tp: 1)
    return out


def python_misplaced(keys: list[bytes | None], partitions: int, partition: int) -> bool:
    """``FamilyProcessor.misplaced`` on its usual batch (all in place), hashed in Python."""
    expected = partitions_of_python(keys, partitions)
    return expected.count(partition) != len(expected)


def replay(work: list[Run]) -> dict[str, float]:
    """CPU seconds to check every batch, to apply it, and to check it in Python."""
    checks, applying = agents(check=True), agents(check=False)
    clock, t = time.process_time, dict.fromkeys(("check", "apply", "python_check"), 0.0)
    for run in work:
        batch, family = fetched(run), run[0]
        agent, processor, partition = applying[family], checks[family].processor, run[2]
        assert processor.partitions is not None
        t0 = clock()
        wrong = processor.misplaced([r.key for r in batch.records], partition)
        t1 = clock()
        agent.apply_now(batch)
        t2 = clock()
        bad = python_misplaced([r.key for r in batch.records], processor.partitions, partition)
        t3 = clock()
        assert not wrong and not bad  # every record is where the contract puts it
        agent.pending.clear()
        agent.owners.clear()
        t["check"] += t1 - t0
        t["apply"] += t2 - t1
        t["python_check"] += t3 - t2
    return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.partition_check", description=__doc__)
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--batch", type=int, default=5000,
                    help="records per partition batch (the worker polls 5,000 at most)")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args(argv)
    msgs = dataset.backlog(a.events)
    work = runs(msgs, a.batch)
    rounds = [replay(work) for _ in range(a.rounds)]
    n = len(msgs)

    def us(name: str) -> list[float]:
        return [round(r[name] / n * 1e6, 3) for r in rounds]

    def share(name: str) -> float:
        return round(statistics.median(r[name] / r["apply"] for r in rounds), 4)

    print(json.dumps({
        "events": n, "batch": a.batch, "batches": len(work), "compiled": COMPILED,
        **{f"{k}_us_per_event": us(k) for k in ("apply", "check", "python_check")},
        "median_check_over_apply": share("check"),
        "median_python_check_over_apply": share("python_check")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
