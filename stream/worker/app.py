"""The Faust application: one agent per event topic, a records table each.

Built by ``create_app(settings)``; nothing here reads the environment. Faust is
given an empty ``env`` so its own variables (``BROKER_URL``, ``WEB_PORT``...)
cannot silently override the settings.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.sensors.prometheus import setup_prometheus_sensors
from faust.web import Request, Response, View
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

from stream.contract import partitioner
from stream.contract.decoder import Decoder, Limits
from stream.contract.topics import CHILDREN, DEADLETTER, event_families, folded, load_topics
from stream.settings import Settings
from stream.state import day_blocks, partner_responses, progress
from stream.state.calls import CallDefinitions
from stream.state.calls_waiting import listen
from stream.state.clock import Clock, make_clock
from stream.state.facts import FactContext, fact_context
from stream.state.fingerprint import fingerprint, fold_inputs
from stream.state.timeliness import OpenWork
from stream.worker import cell_dump, hugepages, localstate, webauth
from stream.worker import collector as memory
from stream.worker.agents import TopicAgent
from stream.worker.batches import BatchApp, batch_consumer
from stream.worker.changelog import ChangelogWriter
from stream.worker.checkpoint import BrokerView, Checkpointer, usable
from stream.worker.exposition import Page
from stream.worker.live_gauges import (
    AdvisorAuditsCollector,
    CallsWaitingCollector,
    PartnerRequestsCollector,
    TimelinessCollector,
)
from stream.worker.localstate import LocalStore, claim
from stream.worker.localstate import load as load_checkpoint
from stream.worker.looplag import LoopLag
from stream.worker.metrics import (
    FiguresCollector,
    LagCollector,
    PipelineMetrics,
    RegistryCollector,
)
from stream.worker.processor import TP, CellState, FamilyProcessor
from stream.worker.recovery import TableRecovery
from stream.worker.rekey import ChildProcessor, Rekey
from stream.worker.roster import Roster, keep_following
from stream.worker.scrape_rhythm import ScrapeRhythm
from stream.worker.slices import Slices
from stream.worker.stallwatch import StallWatch
from stream.worker.turn import Turn
from stream.worker.watch import WatchCollector

log = logging.getLogger("cspa.worker")

#: A scrape while the worker recovers, with more values than this to merge afresh
#: (about 50 ms of the event loop at 0.4-0.9 us a value), waits for the recovery's own
#: render (``Worker.warm``) instead, the loop free meanwhile ...
MERGE_WAIT_VALUES = 100_000
#: ... for at most this long (seconds): then it merges, within a 15 s scrape timeout.
MERGE_WAIT_SECONDS = 5.0
#: A scrape merges the cells changed since the last one, moves open work's runs and
#: renders each part of the page in slices of about this much of the event loop
#: (seconds), letting it go after each (issue 28.2: no stall over 50 ms;
#: ``stream.worker.slices``).
MERGE_SLICE_SECONDS = 0.01


@dataclass
class Worker:
    """The app and the state its views and tests look at."""

    app: BatchApp
    settings: Settings
    registry: CollectorRegistry  # everything /metrics serves (``page``'s text)
    pipeline: CollectorRegistry  # the pipeline's own metrics only: /metrics/pipeline
    state: CellState
    metrics: PipelineMetrics
    ctx: FactContext
    clock: Clock
    work: OpenWork
    processors: dict[str, FamilyProcessor] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)  # source topic -> records table
    frontiers: dict[str, progress.Frontier] = field(default_factory=dict)  # per source topic
    writers: dict[str, ChangelogWriter] = field(default_factory=dict)  # per source topic
    agents: dict[str, TopicAgent] = field(default_factory=dict)  # per source topic
    #: the loop's time for batch work in each of its turns, shared by the agents
    turn: Turn = field(default_factory=Turn)
    #: (topic, partition) -> where recovery says to resume (progress.start_offset)
    starts: dict[TP, int | None] = field(default_factory=dict)
    #: set once a first assignment's recovery has completed and the figures are rebuilt
    recovered: bool = False
    #: what judged the derived state (stream.state.fingerprint), served by /ready (and /health)
    fingerprint: str = ""
    #: the read-time definitions (``CallDefinitions.to_json``): a report takes them from here
    definitions: dict[str, Any] = field(default_factory=dict)
    #: the taxonomy file, as read: a report labels and orders categories by it
    taxonomy_text: str = ""
    #: /metrics: ``registry``'s exposition, unchanged figure families' text kept
    page: Page = field(default_factory=lambda: Page([]))
    #: its checkpoints fork from 2 MiB pages (``_add_checkpoints``, CSPA_HUGE_PAGES)
    huge_pages: bool = False
    #: when scrapes end: a checkpoint forks just after one (``stream.worker.scrape_rhythm``)
    rhythm: ScrapeRhythm = field(default_factory=ScrapeRhythm)

    def ready(self) -> bool:
        """Serving the figures of its partitions: recovered once, not rebalancing now.

        Before the first assignment the worker is neither recovering nor rebalancing
        yet, and owns nothing: not ready (it said ready then, serving empty figures).
        """
        app = self.app
        return self.recovered and not (app.in_recovery or app.rebalancing)

    def warm(self) -> None:
        """Render ``/metrics`` once and drop the text: what the next scrape would merge
        and format afresh is then kept (the end of each table's recovery, before ready).

        The first scrape after a restart or an assignment merged every owned cell and
        formatted every series on the event loop: seconds with a national year, over
        issue 28's 1 s. Recovery blocks the loop for its rebuild anyway, and /ready says
        503 meanwhile. The state the recovery loaded is then frozen for the cyclic
        collector (``collector.settle``), so no later collection scans it on the loop,
        and, with checkpoints in huge pages, mapped in 2 MiB pages
        (``stream.worker.hugepages``): the first collapse of a national year takes about
        4 s and, run beside a serving loop, held it up to 370 ms (BENCHMARKS.md, step
        47); each checkpoint's collapse then joins only what its fork's copies split.
        """
        started, cpu, merged = time.monotonic(), time.process_time(), self.state.merged_cells
        try:
            self.page.render()
        except Exception as exc:  # noqa: BLE001 - the scrape will say it; recovery goes on
            log.warning("metrics page not warmed error=%s", type(exc).__name__)
            memory.settle()
            return
        settled = memory.settle()  # (the state just loaded: never scanned again)
        trimmed = memory.give_back()  # (the merge's transient tables)
        huge = hugepages.collapse() if self.huge_pages else hugepages.NOTHING
        log.info("metrics page warmed merged_cells=%d seconds=%.2f cpu_seconds=%.2f "
                 "gc_seconds=%.3f trim_seconds=%.3f huge_mib=%d huge_seconds=%.2f",
                 self.state.merged_cells - merged, time.monotonic() - started,
                 time.process_time() - cpu, settled, trimmed, huge.bytes >> 20, huge.seconds)

    async def metrics_text(self) -> bytes:
        """``/metrics``' text. Recovering, with a large merge ahead (a restart's restored
        cells, partitions gained), it first waits for the recovery to render the page
        (``warm``): the same merge would hold the event loop, and the recovery with it,
        for seconds with a national year.

        Otherwise it makes the page in slices of about ``MERGE_SLICE_SECONDS``, the loop
        free after each (``stream.worker.slices``): the cells changed since the last
        scrape merged, open work's runs moved to the clock, then each part of the page
        rendered; the batches held once a step leaves work over. 15,000 changed series
        took 0.7 s to render in one go, and a usual scrape's three phases, run back to
        back, held the loop 59 ms in the national bench of steps 1-64. Its end is noted
        in ``rhythm``."""
        text = await self._rendered()
        self.rhythm.scraped()
        return text

    async def _rendered(self) -> bytes:
        if not self.ready() and self.state.backlog(self.owned()) > MERGE_WAIT_VALUES:
            until = time.monotonic() + MERGE_WAIT_SECONDS
            while not self.ready() and time.monotonic() < until:
                await asyncio.sleep(0.1)
        async with self._slices() as slices:
            await slices.until_done(lambda: self.state.merge_some(self.owned(),
                                                                  MERGE_SLICE_SECONDS))
            now = self.clock.time()
            await slices.until_done(lambda: self.work.prepare(
                now, self.owned(), day_blocks.Budget(MERGE_SLICE_SECONDS)))
            return b"".join([await slices.text(part) for part in self.page.parts])

    async def merge(self) -> None:
        """Merge the cells changed since the last scrape, a slice of
        ``MERGE_SLICE_SECONDS`` at a time, the batches held past the first: a read of the
        cells just after has at most what one turn's batches changed left to merge (the
        loop is let go once after the last slice). The first scrape after a national
        year's replay merged every cell in one go, 2-3 s of the loop held (BENCHMARKS.md,
        step 48).
        """
        async with self._slices() as slices:
            await slices.until_done(lambda: self.state.merge_some(self.owned(),
                                                                  MERGE_SLICE_SECONDS))

    def _slices(self) -> Slices:
        """A scrape's slices (``stream.worker.slices``), holding the batches when needed."""
        return Slices(MERGE_SLICE_SECONDS, self._batches_held)

    @asynccontextmanager
    async def _batches_held(self) -> AsyncIterator[None]:
        """No agent folds a batch inside (each one's ``busy``, taken in one order)."""
        async with AsyncExitStack() as held:
            for agent in self.agents.values():
                await held.enter_async_context(agent.busy)
            yield

    def mark_recovered(self) -> None:
        """A table's recovery has ended: the figures of its partitions are served."""
        self.recovered = True

    def owned(self) -> set[TP]:
        """(topic, partition) pairs this worker actively owns right now."""
        try:
            actives = self.app.assignor.assigned_actives()
        except Exception:  # noqa: BLE001 - before the first assignment
            return set()
        topics = {p.topic for p in self.processors.values()}
        return {(tp.topic, tp.partition) for tp in actives if tp.topic in topics}

    def lag(self) -> dict[str, int]:
        """Messages behind the high-water mark, per topic, over owned partitions."""
        consumer = self.app.consumer
        lags: dict[str, int] = dict.fromkeys(self.frontiers, 0)
        for tp in self.app.assignor.assigned_actives():
            frontier = self.frontiers.get(tp.topic)
            if frontier is None:  # not a source topic (a changelog)
                continue
            # the frontier: where processing stands (set at every assignment)
            position = frontier.next.get(tp.partition)
            if position is None:  # before the first assignment: the committed offset
                committed = consumer._committed_offset  # type: ignore[attr-defined]
                position = committed.get(tp) or 0
            try:
                lags[tp.topic] += max(0, consumer.highwater(tp) - position)
            except Exception:  # noqa: BLE001 - high water unknown until the first fetch
                continue
        return lags

    def resume_offsets(self, assigned: Any) -> dict[Any, int | None]:
        """Where each assigned source partition resumes, as recovery found the state.

        None: the state knows nothing of the partition; Faust's committed offset stands.
        """
        out: dict[Any, int | None] = {}
        for tp in assigned:
            if tp.topic in self.tables:
                marker = progress.resume_offset(self.tables[tp.topic], tp.partition)
                out[tp] = marker if marker is not None else self.starts.get(
                    (tp.topic, tp.partition))
        return out

    def on_resume_seek(self, plan: Any, committed: Any, targets: Any) -> None:
        """After an assignment's seeks: every frontier starts where the consumer now does.

        A marker restored from the changelog is on Kafka already, so it may be committed
        at once; the seeks are logged and counted by direction.
        """
        for topic, frontier in self.frontiers.items():
            mine = {tp.partition: offset for tp, offset in targets.items() if tp.topic == topic}
            frontier.drop(mine)
            writer = self.writers[topic]
            writer.forget_markers()
            for partition, offset in mine.items():
                frontier.reset(partition, offset)  # the consumer starts there now
                if progress.resume_offset(self.tables[topic], partition) == offset:
                    writer.durable[partition] = offset  # restored from Kafka: committable
        for tp, offset in plan.items():
            before = committed.get(tp) or 0
            direction = "back" if offset < before else "forward"
            self.metrics.resume_seeks.labels(tp.topic, direction).inc()
            log.warning("resume topic=%s partition=%d offset=%d committed=%d (%s)",
                        tp.topic, tp.partition, offset, before, direction)

    async def wait_idle(self) -> None:
        """Until no agent is inside a batch and every changelog write has landed (a
        rebalance waits for this).

        A write landing later, after the assignment's recovery has dropped the revoked
        partitions from a ``local://`` store, would put its offset and held-back markers
        back there without the records before them: a later assignment of the partition
        would read its changelog from that offset and resume from that marker, and the
        figures would lose every record in between.
        """
        for agent in self.agents.values():
            await agent.idle.wait()
        for topic, writer in self.writers.items():
            try:
                await writer.drain()
            except Exception as exc:  # noqa: BLE001 - the agent's next write raises it
                # (the failed write stays first in flight: no marker vouches for it)
                log.warning("changelog write failed before a rebalance topic=%s error=%s",
                            topic, type(exc).__name__)

    async def commit_progress(self) -> None:
        """Commit the source offsets the state's markers vouch for; settle idle writers."""
        offsets = {}
        for topic, writer in self.writers.items():
            if self.agents[topic].idle.is_set():
                await writer.settle()
            offsets.update({TopicPartition(topic, p): o for p, o in writer.durable.items()})
        if offsets and not (self.app.rebalancing or self.app.in_recovery):
            await batch_consumer(self.app).commit_markers(offsets)

    def held(self, topic: str) -> set[int]:
        """Partitions of ``topic`` whose figures this worker keeps: its active ones, and
        with a ``local://`` store its standby copies too (kept in step as their
        changelog is read, so a failover serves them at once)."""
        active = {p for t, p in self.owned() if t == topic}
        table = self.tables[topic]
        if not isinstance(table.data, LocalStore):
            return active
        changelog = table.changelog_topic.get_topic_name()
        try:
            standbys = self.app.assignor.assigned_standbys()
        except Exception:  # noqa: BLE001 - before the first assignment
            return active
        return active | {tp.partition for tp in standbys if tp.topic == changelog}

    def offsets(self, owned: set[TP]) -> list[list[Any]]:
        """[topic, partition, next offset] of each owned source partition: how far the
        figures served with them reach (the frontier; before any batch, the state's
        progress marker; a partition known to neither is left out)."""
        out: list[list[Any]] = []
        for topic, partition in sorted(owned):
            frontier = self.frontiers.get(topic)
            offset = frontier.next.get(partition) if frontier else None
            if offset is None and topic in self.tables:
                offset = progress.resume_offset(self.tables[topic], partition)
            if offset is not None:
                out.append([topic, partition, offset])
        return out

    def current(self) -> tuple[Any, dict[str, int]]:
        owned = self.owned()
        counts: dict[str, int] = {t: 0 for t in (p.topic for p in self.processors.values())}
        for topic, _ in owned:
            counts[topic] += 1
        return self.state.current(owned), counts


def create_app(settings: Settings, broker: BrokerView | None = None) -> Worker:
    """Build the worker's Faust app from settings.

    With a ``local://`` store and ``broker`` (what the broker holds, looked up before
    the start), the state resumes from the data directory's checkpoint if it is one
    of this broker's.
    """
    localstate.private_dir(settings.data_dir)  # before Faust writes anything there
    app = BatchApp(
        settings.app_id, env={}, broker=f"kafka://{settings.broker}", store=settings.store,
        datadir=str(settings.data_dir), web_host=settings.web_host,
        web_bind=settings.web_host, web_port=settings.web_port, web_enabled=True,
        web_tables_enabled=False, web_router_enabled=False,
        processing_guarantee=settings.processing_guarantee,
        broker_credentials=_credentials(settings),
        # Without the Create right (production) Faust must not try to create its topics.
        topic_allow_declare=settings.create_topics,
        table_standby_replicas=settings.standby_replicas,
        # Only for a topic Faust would create itself: ensure_topics creates them all first,
        # with -1 too (which Faust's setting cannot express).
        topic_replication_factor=max(settings.replication_factor, 1),
        consumer_auto_offset_reset="earliest",
        producer_acks=-1, logging_config=None,
        broker_session_timeout=settings.session_timeout_seconds,
        # Throughput: batch the changelog writes (one produce request per event
        # otherwise) and fetch in large batches. Offsets are committed from the
        # progress markers (Worker.commit_progress), not by Faust's acknowledgements.
        producer_linger=0.005, producer_max_batch_size=1_048_576,
        broker_max_poll_records=settings.batch_size,
        broker_commit_interval=settings.commit_seconds,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_seconds / 3),
    )
    webauth.protect(app, settings)  # TLS and basic auth (CSPA_WEB_CONFIG_FILE), or loopback
    disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series
    # Two registries: the pipeline's own metrics are cheap to collect and served on
    # their own too (/metrics/pipeline, for frequent health polling); /metrics adds
    # the figures and timeliness, evaluated from the whole state at every scrape.
    pipeline = CollectorRegistry(auto_describe=True)
    metrics = PipelineMetrics(pipeline)
    pipeline.register(ProcessCollector(registry=None))
    registry = CollectorRegistry(auto_describe=True)
    registry.register(RegistryCollector(pipeline))
    ctx = fact_context(settings)
    worker = Worker(app, settings, registry, pipeline, CellState(), metrics, ctx,
                    make_clock(settings.timezone, settings.clock_file),
                    OpenWork(ctx.rules, ctx.calendar, settings.open_work_horizon))
    worker.fingerprint = fingerprint(fold_inputs(settings), localstate.FORMAT)
    definitions = CallDefinitions.of(settings)
    worker.definitions = definitions.to_json()
    worker.taxonomy_text = settings.taxonomy_path.read_text(encoding="utf-8")
    figures = FiguresCollector(worker.current, definitions, settings.metrics_months,
                               worker.clock.now)
    pipeline.register(LagCollector(worker.lag))
    timeliness = TimelinessCollector(worker.work, worker.clock.time, worker.owned)
    waiting = listen(worker.work, ctx.taxonomy.ordered("call_queue"),
                     settings.calls_waiting_limit_seconds)
    calls_waiting = CallsWaitingCollector(waiting, worker.clock.time, worker.owned)
    partners = PartnerRequestsCollector(
        partner_responses.listen(worker.work, ctx.taxonomy.ordered("agency")),
        worker.clock.time, worker.owned)
    roster = Roster(ctx)  # the audits table over every partition: exact with several workers
    advisors = AdvisorAuditsCollector(roster.current, ctx.calendar,
                                      ctx.taxonomy.ordered("team"), worker.clock.now,
                                      lambda: roster.changes)
    for collector in (figures, timeliness, calls_waiting, partners, advisors):
        registry.register(collector)
    # /metrics: the registry's text, each unchanged figure family's kept from the last scrape
    worker.page = Page([pipeline, figures, timeliness, calls_waiting, partners, advisors])
    # Faust's own sensors (milliseconds, not promtool-clean) on their own registry and path.
    setup_prometheus_sensors(app, pattern="/metrics/faust", registry=CollectorRegistry(),
                             name_prefix="faust")
    topics = load_topics(app_id=settings.app_id)
    limits = Limits(settings.max_payload_bytes, settings.max_future_skew_seconds)
    dlq = app.topic(topics[DEADLETTER].name, value_serializer="raw", key_serializer="raw",
                    partitions=topics[DEADLETTER].partitions)
    for family, spec in event_families(topics).items():
        processor = FamilyProcessor(spec.name, Decoder(family, ctx.taxonomy, limits), ctx,
                                    worker.state, metrics, worker.work, spec.partitions)
        worker.processors[family] = processor
        _add_agent(worker, processor, spec.partitions, dlq)
    _add_children(worker, topics, dlq)
    if not partitioner.COMPILED:  # then the check costs 3-4 % of the apply (BENCHMARKS.md)
        log.warning("partition check in pure Python: murmur2 not compiled at make install "
                    "(needs gcc and Python's headers)")
    metrics.prime(p.topic for p in worker.processors.values())
    # Cheap to collect: on the pipeline registry, so /metrics/pipeline serves it too.
    pipeline.register(WatchCollector(
        worker.ready, worker.owned,
        {spec.name: spec.partitions for spec in folded(topics).values()},
        ctx.calendar, worker.clock.now))
    app.resume_offsets = worker.resume_offsets
    app.on_resume_seek = worker.on_resume_seek
    app.on_refetch = lambda tp: metrics.refetches.labels(tp.topic).inc()
    app.on_stale_batch = lambda tp: metrics.stale_batches.labels(tp.topic).inc()
    app.wait_idle = worker.wait_idle
    app.timer(settings.commit_seconds, name="commit-progress")(worker.commit_progress)
    # cspa_event_loop_lag_seconds, and the log line naming where a stall held the loop
    app.task(LoopLag(metrics.loop_lag.observe,
                     watch=StallWatch(report_seconds=settings.stall_log_seconds)).run)
    _add_roster(worker, roster, topics["audits"].name, topics["audits"].partitions)
    _add_checkpoints(worker, broker)
    _add_views(worker)
    return worker


def _add_checkpoints(worker: Worker, broker: BrokerView | None) -> None:
    """With the local:// store: resume from a usable checkpoint, and take them on a timer."""
    settings = worker.settings
    stores = {t: table.data for t, table in worker.tables.items()}
    if not all(isinstance(store, LocalStore) for store in stores.values()):
        return
    if settings.checkpoint_key_file is None:
        log.warning("checkpoints off: no CSPA_CHECKPOINT_KEY_FILE to sign them with; "
                    "every start restores from the changelogs")
        return
    key = localstate.read_key(settings.checkpoint_key_file)
    path = settings.data_dir / f"checkpoint-{settings.app_id}.pickle"
    if claim(path) is None:
        log.warning("checkpoints off: another worker uses data_dir=%s", settings.data_dir)
        return
    checkpointer = Checkpointer(
        path, settings.app_id, broker.cluster if broker else None, stores, worker.agents,
        worker.writers, worker.state, worker.work, worker.metrics, worker.ready,
        worker.owned, worker.fingerprint, key, settings.huge_pages, worker.rhythm.after_scrape)
    worker.huge_pages = settings.huge_pages
    if broker is not None:
        _resume(worker, checkpointer, broker)
    worker.app.timer(settings.checkpoint_seconds, name="checkpoint")(checkpointer.take)


def _resume(worker: Worker, checkpointer: Checkpointer, broker: BrokerView) -> None:
    """Take the data directory's checkpoint if it is one of this broker's."""
    started = time.monotonic()  # the load's seconds: reading, checking, unpickling, taking
    # its derived state is read only if the same rules and settings judged it
    cp = load_checkpoint(checkpointer.path, checkpointer.key,
                         wants=lambda head: head.get("fingerprint") == worker.fingerprint)
    if cp is None:
        return
    changelogs = {t: table.changelog_topic.get_topic_name() for t, table in worker.tables.items()}
    why = usable(cp, worker.settings.app_id, changelogs, broker)
    if why is not None:
        log.warning("checkpoint not used reason=%s", why)
        return
    was = cp.get("fingerprint") or "none"
    if was != worker.fingerprint:
        # Judged by other rules or fold-time settings: its records stand (they are the
        # changelogs'), its figures and open work are refolded from them by recovery.
        log.warning("checkpoint derived state not used reason=fingerprint was=%s now=%s: "
                    "figures and open work are refolded from its records", was,
                    worker.fingerprint)
        records = checkpointer.restore(cp, derived_too=False)
        log.info("checkpoint records loaded records=%d seconds=%.2f", records,
                 time.monotonic() - started)
        return
    records = checkpointer.restore(cp)
    if records is None:
        return
    trimmed = memory.give_back()  # (what reading it freed)
    log.info("checkpoint loaded records=%d partitions=%d seconds=%.2f trim_seconds=%.3f",
             records, len(worker.state.parts), time.monotonic() - started, trimmed)


def _add_roster(worker: Worker, roster: Roster, topic: str, partitions: int) -> None:
    """Follow the audits table's changelog, every partition, for the unaudited gauge."""
    settings = worker.settings
    changelog = worker.tables[topic].changelog_topic.get_topic_name()

    def consumer() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(bootstrap_servers=settings.broker, enable_auto_commit=False,
                                client_id=f"{settings.app_id}-roster",
                                **settings.kafka_client_kwargs())

    async def run() -> None:
        await keep_following(roster, changelog, partitions, consumer)

    worker.app.task(run)


def _credentials(settings: Settings) -> Any:
    if settings.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password.get_secret_value(),
            mechanism=settings.sasl_mechanism, ssl_context=settings.ssl_context())
    if settings.security_protocol == "SSL":
        return faust.SSLCredentials(settings.ssl_context())
    return None


def _add_agent(worker: Worker, processor: FamilyProcessor, partitions: int,
               dlq: faust.TopicT) -> None:
    app = worker.app
    name = processor.topic
    # Subscribed through the conductor so Faust assigns its partitions with the table's;
    # its records reach the agent in batches through the channel (stream/worker/batches.py).
    app.topics.add(app.topic(name, value_serializer="raw", key_serializer="raw",
                             partitions=partitions))
    table = app.Table(f"records-{name}", partitions=partitions, key_type=str,
                      value_type=bytes)
    worker.tables[name] = table
    frontier = worker.frontiers[name] = progress.Frontier()
    writer = worker.writers[name] = ChangelogWriter(app, table)
    agent = worker.agents[name] = TopicAgent(
        processor, table, frontier, writer, dlq, worker.metrics,
        epoch_of=lambda tp: batch_consumer(app).epoch(tp), turn=worker.turn)
    channel = app.channel(maxsize=worker.settings.batches_buffered)
    app.batch_sinks[name] = channel.put  # type: ignore[assignment]  # takes any item

    recovery = TableRecovery(
        name, table, worker.state, worker.work, worker.ctx, frontier, worker.metrics,
        active=lambda: {p for t, p in worker.owned() if t == name},
        held=lambda: worker.held(name), starts=worker.starts, done=worker.mark_recovered,
        warm=worker.warm)
    if isinstance(table.data, LocalStore):  # restored records: kept cells follow them
        table.data.on_change = recovery.follow
    table.on_recover(recovery)
    app.agent(channel, name=f"agent-{name}")(agent.run)


def _add_children(worker: Worker, topics: Any, dlq: faust.TopicT) -> None:
    """The children table on the worker's own repartition topic, and the contacts
    agent's hops to it (stream/worker/rekey.py): each batch's hops go in the flight of
    its changelog records, so its progress marker waits for them too."""
    spec, contacts = topics[CHILDREN], topics["contacts"].name
    child = ChildProcessor(spec.name, worker.settings.child_window_grace_days, worker.ctx,
                           worker.state, worker.metrics, None, spec.partitions)
    worker.processors[CHILDREN] = child
    _add_agent(worker, child, spec.partitions, dlq)
    worker.agents[contacts].rekey = Rekey(spec.partitions, worker.ctx)
    worker.writers[contacts].hops_to = spec.name


def _add_views(worker: Worker) -> None:
    app = worker.app

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            # aiohttp refuses a charset inside content_type; pass the header whole.
            return self.bytes(await worker.metrics_text(),
                              headers={"Content-Type": CONTENT_TYPE_LATEST})

    @app.page("/metrics/pipeline")
    class PipelineView(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(generate_latest(worker.pipeline),
                              headers={"Content-Type": CONTENT_TYPE_LATEST})

    class CellsView(View):
        """The owned partitions' cells, with what a report needs to read them."""

        async def get(self, request: Request) -> Response:
            await worker.merge()  # (no await after it: the cells and offsets agree)
            agg, _ = worker.current()
            owned = worker.owned()
            head = {
                "owned": [[t, p] for t, p in sorted(owned)],
                # read with the cells, no await between: the offsets the figures reflect
                "offsets": worker.offsets(owned),
                "recovering": not worker.ready(),
                "fingerprint": worker.fingerprint,
                "definitions": worker.definitions,
                "taxonomy": worker.taxonomy_text,
            }
            # merged cells are replaced, never changed: this list is the instant's view
            body = await cell_dump.dumped(head, list(agg.cells.items()), MERGE_SLICE_SECONDS)
            return self.bytes(body, content_type="application/json")

    @app.page("/due")
    class DueView(View):
        async def get(self, request: Request) -> Response:
            limit = min(int(request.query.get("limit", "200")), 5000)
            stale = request.query.get("stale", "") in ("1", "true")  # the stale ones instead
            now, owned, work = worker.clock.time(), worker.owned(), worker.work
            return self.json({"now": worker.clock.now().isoformat(),
                              "owned": [[t, p] for t, p in sorted(owned)],
                              "recovering": not worker.ready(),
                              "fingerprint": worker.fingerprint,
                              "horizon_workdays": work.horizon,
                              "stale": work.stale_counts(now, owned),
                              "items": work.due_list(now, owned, limit, stale)})

    class ReadyView(View):
        """200 once the worker serves the figures of its partitions, 503 before that and
        during every rebalance or recovery (liveness is ``/live``, off the loop)."""

        async def get(self, request: Request) -> Response:
            # The owned partitions too: a cheap probe (``/cells`` serialises every
            # cell, seconds with a national year, the event loop blocked meanwhile).
            ready = worker.ready()
            owned = [[t, p] for t, p in sorted(worker.owned())]
            return self.json({"ready": ready, "owned": owned, "fingerprint": worker.fingerprint,
                              "definitions": worker.definitions},
                             status=200 if ready else 503)

    class HealthView(ReadyView):
        """``/ready`` under its former name, kept for probes written before it."""

    class FiguresView(CellsView):
        """``/cells`` under its former name, for reports older than the rename."""

    app.page("/cells")(CellsView)
    app.page("/figures")(FiguresView)
    app.page("/ready")(ReadyView)
    app.page("/health")(HealthView)
    del MetricsView, PipelineView, DueView
