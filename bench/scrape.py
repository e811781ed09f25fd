"""``python -m bench.scrape --contacts N``: what a full ``/metrics`` scrape costs, in process.

``N`` contacts of ``bench.dataset.recovery_contacts`` (received and decided, spread
over a year) are folded by the worker's own ``TopicAgent.apply`` into its cell state
and open work (no Kafka: the records table is a plain dict), served as the worker
serves ``/metrics`` (its figures and open work; the pipeline's few series left out).
Then the page's rendering is timed:
the render a restart's recovery does before the worker says ready (``warm``: what
the first scrape after a restart cost before issue 28), the first scrape after it, the
same again with nothing changed, and after each of ``--rounds`` rounds of
``--between`` live events (what 15 s at 1,000 events/s bring). Wall seconds are how
long the event loop is blocked when the scrape runs on it; CPU seconds what the scrape
costs on a machine shared with other work. ``--now`` sets the worker's clock (default: the
year after the data's, so every month is within ``CSPA_METRICS_MONTHS``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from faust.types import TP
from prometheus_client import CollectorRegistry

from bench import dataset
from stream.contract.decoder import Decoder
from stream.contract.partitioner import partition_of
from stream.contract.topics import event_families, load_topics
from stream.settings import Settings
from stream.state import progress, records
from stream.state.calls import CallDefinitions
from stream.state.calls_waiting import listen
from stream.state.facts import fact_context
from stream.state.timeliness import OpenWork
from stream.worker import collector
from stream.worker.agents import TopicAgent
from stream.worker.batches import Batch
from stream.worker.exposition import Page
from stream.worker.live_gauges import CallsWaitingCollector, TimelinessCollector
from stream.worker.metrics import FiguresCollector, PipelineMetrics
from stream.worker.processor import CellState, FamilyProcessor

BATCH = 500  # records per partition batch, as the worker's fetches hand them over


class Folder:
    """The worker's agents over plain dicts: fold messages into cells and open work."""

    def __init__(self, settings: Settings, now: float) -> None:
        ctx = fact_context(settings)
        self.metrics = PipelineMetrics(CollectorRegistry())
        self.state = CellState()
        self.work = OpenWork(ctx.rules, ctx.calendar, settings.open_work_horizon)
        self.waiting = listen(self.work, ctx.taxonomy.ordered("call_queue"),
                              settings.calls_waiting_limit_seconds)
        families = event_families(load_topics())
        self.topics = {spec.name: (family, spec.partitions) for family, spec in families.items()}
        self.agents: dict[str, TopicAgent] = {}
        self.tables: dict[str, dict[str, bytes]] = {}
        for family, spec in families.items():
            processor = FamilyProcessor(spec.name, Decoder(family, ctx.taxonomy), ctx,
                                        self.state, self.metrics, self.work, spec.partitions)
            table = self.tables[spec.name] = {}
            store: Any = SimpleNamespace(data=table)  # a table whose store is a dict
            nothing: Any = None  # no changelog writer, no dead letters
            self.agents[spec.name] = TopicAgent(processor, store,
                                                progress.Frontier(), nothing, nothing,
                                                self.metrics, epoch_of=lambda tp: 1)
        self.now = now

    def fold(self, msgs: Iterable[dataset.Msg]) -> None:
        """Fold messages in per-partition batches of ``BATCH``, in arrival order."""
        runs: dict[tuple[str, int], list[Any]] = defaultdict(list)
        for offset, m in enumerate(msgs):
            tp = (m.topic, partition_of(m.key, self.topics[m.topic][1]))
            runs[tp].append(SimpleNamespace(offset=offset, key=m.key, value=m.value,
                                            timestamp=m.timestamp_ms))
            if len(runs[tp]) == BATCH:
                self._apply(tp, runs.pop(tp))
        for tp, run in runs.items():
            self._apply(tp, run)

    def _apply(self, tp: tuple[str, int], run: list[Any]) -> None:
        agent = self.agents[tp[0]]
        agent.apply_now(Batch(TP(*tp), 1, run))
        table = self.tables[tp[0]]
        for key, record in agent.pending.items():  # what the changelog writer would store
            table[key] = records.dumps(record)
        agent.pending.clear()
        agent.owners.clear()
        agent.before.clear()

    def owned(self) -> set[TP]:
        return {TP(t, p) for t, (_, n) in self.topics.items() for p in range(n)}

    def page(self, settings: Settings) -> Page:
        """``/metrics``'s figures and open work, as ``app.build`` serves them."""
        owned: set[tuple[str, int]] = set(self.owned())

        def current() -> tuple[Any, dict[str, int]]:
            return self.state.current(owned), {t: n for t, (_, n) in self.topics.items()}

        def now() -> datetime:
            return datetime.fromtimestamp(self.now, dataset.LONDON)

        figures = FiguresCollector(current, CallDefinitions.of(settings),
                                   settings.metrics_months, now)
        timeliness = TimelinessCollector(self.work, lambda: self.now, lambda: owned)
        waiting = CallsWaitingCollector(self.waiting, lambda: self.now, lambda: owned)
        return Page([figures, timeliness, waiting])


def timed(page: Page) -> tuple[float, float, int]:
    """Wall and CPU seconds of one scrape (CPU: what a shared machine does not inflate)."""
    t0, c0 = time.perf_counter(), time.process_time()
    text = page.render()
    return time.perf_counter() - t0, time.process_time() - c0, len(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.scrape", description=__doc__)
    ap.add_argument("--contacts", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3, help="scrapes after live events")
    ap.add_argument("--between", type=int, default=15_000, help="live events between them")
    ap.add_argument("--now", default="2024-01-15T12:00:00",
                    help="the worker's clock, local time (ISO 8601)")
    a = ap.parse_args(argv)
    settings = Settings()
    collector.tune()  # the worker's garbage collector policy
    now = datetime.fromisoformat(a.now).replace(tzinfo=dataset.LONDON)
    folder = Folder(settings, now.timestamp())
    t0 = time.perf_counter()
    folder.fold(dataset.recovery_contacts(a.contacts))
    fold_s = time.perf_counter() - t0
    page = folder.page(settings)
    warm = timed(page)  # as TableRecovery does, before ready (Worker.warm)
    first = timed(page)
    again = timed(page)
    after = []
    for i in range(a.rounds):
        folder.fold(dataset.live(a.between, seed=100 + i))
        after.append(timed(page))
    print(json.dumps({
        "contacts": a.contacts, "fold_s": round(fold_s, 1), "bytes": first[2],
        "warm_s": round(warm[0], 3), "warm_cpu_s": round(warm[1], 3),
        "first_s": round(first[0], 3), "first_cpu_s": round(first[1], 3),
        "again_s": round(again[0], 3), "again_cpu_s": round(again[1], 3),
        "after_live_s": [round(t[0], 3) for t in after],
        "after_live_cpu_s": [round(t[1], 3) for t in after]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
