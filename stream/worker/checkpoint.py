"""Checkpoints of the worker's state (stream.worker.localstate): when to take one, what it
holds, and whether one found at start may be used with the broker it finds.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from stream.state.timeliness import OpenWork
from stream.worker import hugepages, localstate, snapshot
from stream.worker.agents import TopicAgent
from stream.worker.changelog import ChangelogWriter
from stream.worker.localstate import LocalStore
from stream.worker.metrics import PipelineMetrics
from stream.worker.processor import CellState

log = logging.getLogger("cspa.worker")

#: the checkpoint's derived state (cells, open work): the file's tail
DERIVED = "derived"
#: source topic -> the runs of its records dict (``stream.worker.partitioned``)
RUNS = "runs"


@dataclass(frozen=True)
class BrokerView:
    """What the broker holds, looked up before the worker starts: the cluster's id
    and each changelog partition's end offset (the offset its next record takes) and
    start offset (its first record kept: moved only by ``python -m stream retention``)."""

    cluster: str
    ends: dict[tuple[str, int], int]
    starts: dict[tuple[str, int], int] = field(default_factory=dict)


async def broker_view(bootstrap: str, changelogs: Iterable[str], **kwargs: Any) -> BrokerView:
    """The cluster id and the changelogs' end offsets (absent topics: no partitions)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kwargs)
    await admin.start()
    try:
        cluster = str((await admin.describe_cluster())["cluster_id"])
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **kwargs)
    await consumer.start()
    try:
        # (the consumer's own metadata covers only topics it has been assigned)
        cluster_meta = await consumer._client.fetch_all_metadata()
        tps = [TopicPartition(t, p) for t in changelogs
               for p in cluster_meta.partitions_for_topic(t) or ()]
        ends = await consumer.end_offsets(tps) if tps else {}
        starts = await consumer.beginning_offsets(tps) if tps else {}
    finally:
        await consumer.stop()
    return BrokerView(cluster, {(tp.topic, tp.partition): end for tp, end in ends.items()},
                      {(tp.topic, tp.partition): start for tp, start in starts.items()})


def usable(cp: Mapping[str, Any], app_id: str, changelogs: Mapping[str, str],
           view: BrokerView) -> str | None:
    """Why a checkpoint cannot be used with this broker; None if it can.

    Its offsets must be on this cluster's changelogs: a broker rebuilt from nothing
    (or another cluster) would otherwise have the worker skip records it never read.
    And none may lie below a changelog's start: retention rewrote that changelog
    without the erased cases and deleted what came before (``stream.worker.retention``),
    so the checkpoint still holds records the changelog no longer has.
    ``changelogs``: source topic -> its records table's changelog topic.
    """
    if cp.get("app_id") != app_id:
        return "app_id"
    if cp.get("cluster") != view.cluster:
        return "cluster"
    for topic, (_, _, offsets) in cp["tables"].items():
        name = changelogs.get(topic)
        if name is None:
            return "topics"
        for partition, offset in offsets.items():
            end = view.ends.get((name, partition), 0)
            if offset >= end:
                return f"offsets changelog={name} partition={partition} at={offset} end={end}"
            start = view.starts.get((name, partition), 0)
            if offset < start:
                return f"erased changelog={name} partition={partition} at={offset} start={start}"
    return None


@dataclass
class Checkpointer:
    """Writes the whole state to ``path`` when it has changed since the last time.

    A checkpoint is taken between batches (every agent's ``busy`` lock held) and
    after every changelog write has landed (``ChangelogWriter.drain``): what it
    holds is on Kafka, at or below the offsets it records. It is written by a forked
    child from the memory as it stood then (``stream.worker.snapshot``).
    """

    path: Path
    app_id: str
    cluster: str | None
    stores: dict[str, LocalStore]  # source topic -> its records table's store
    agents: dict[str, TopicAgent]
    writers: dict[str, ChangelogWriter]
    state: CellState
    work: OpenWork
    metrics: PipelineMetrics
    ready: Callable[[], bool]
    owned: Callable[[], Collection[Any]]
    #: what judged the derived state (stream.state.fingerprint): kept with it
    fingerprint: str = ""
    #: the HMAC key signing the file (``localstate.read_key``); never shown in a repr
    key: bytes = field(default=b"", repr=False)
    #: collapse the heap into 2 MiB pages before each fork (``stream.worker.hugepages``)
    huge_pages: bool = False
    #: waits for the next scrape to end, the seconds waited (``ScrapeRhythm.after_scrape``):
    #: the child then writes between two scrapes, not during one
    after_scrape: Callable[[], Awaitable[float]] | None = None
    _last: Any = field(default=None, init=False)
    _owned: frozenset[Any] | None = field(default=None, init=False)

    def _signature(self) -> Any:
        """Changes whenever any store takes a changelog record or a write lands."""
        return tuple((t, tuple(sorted(s.offsets.items()))) for t, s in sorted(self.stores.items()))

    async def take(self) -> bool:
        """One checkpoint, unless nothing changed or the worker is not serving.

        Processing holds only while the writes in flight land and the child that
        writes the file is forked (``stream.worker.snapshot``): the child pickles the
        state as it was at the fork, off the event loop and off its interpreter lock.
        With ``after_scrape``, the fork waits for the next scrape to end (at most about
        one scrape interval), so that the child writes between two scrapes.
        """
        if self.cluster is None or not self.ready() or self._signature() == self._last:
            return False
        owned, before = frozenset(self.owned()), self._owned
        self._owned = owned
        if before is not None and owned != before:
            # Partitions just moved: the first scrapes merge their cells afresh and a
            # rebalance often comes in waves: the checkpoint waits one interval rather
            # than add its pause (the drain, the fork) and its second core's work to that.
            # Not after a start: a restarted worker checkpoints as soon as it can.
            return False
        # Before the pause, in a thread: the fork then copies one page-table entry per
        # 2 MiB, not per 4 KiB (37-65 ms with a national year, 2-15 ms collapsed).
        huge = (await asyncio.to_thread(hugepages.collapse) if self.huge_pages
                else hugepages.NOTHING)
        waited = await self.after_scrape() if self.after_scrape is not None else 0.0
        started = time.monotonic()
        async with AsyncExitStack() as stack:
            for agent in self.agents.values():
                await stack.enter_async_context(agent.busy)
            for writer in self.writers.values():
                await writer.drain()
            if not self.ready():  # a rebalance began meanwhile
                return False
            signature = self._signature()
            localstate.private_dir(self.path.parent)  # (it may log: not in the child)
            forking = time.monotonic()
            child = snapshot.start(self._write)
            forked = time.monotonic() - forking  # the event loop's own stall
        paused = time.monotonic() - started
        try:
            size = int(await asyncio.to_thread(child.wait))
        except snapshot.SnapshotFailed as exc:
            log.warning("checkpoint not written: %s", exc)
            return False
        self._last = signature
        self.metrics.checkpoints.inc()
        self.metrics.checkpoint_pause.set(paused)
        self.metrics.checkpoint_bytes.set(size)
        log.info("checkpoint written bytes=%d paused=%.3f forked=%.3f seconds=%.2f "
                 "huge_mib=%d huge_refused=%d huge_seconds=%.2f scrape_wait=%.2f", size,
                 paused, forked, time.monotonic() - started, huge.bytes >> 20 if huge else 0,
                 huge.refused if huge else 0, huge.seconds if huge else 0.0, waited)
        return True

    def _write(self) -> int:
        """The checkpoint file, in the forked child: the state needs no copy there."""
        head = self.content(copy=False)
        return localstate.write(self.path, head, self.key, tail=(DERIVED, head.pop(DERIVED)))

    def content(self, copy: bool = True) -> dict[str, Any]:
        """Everything a restart needs, as one picklable value, taken at once (no await).

        The records are copies (``LocalStore.export``) unless ``copy`` is False, for a
        process whose memory nobody changes meanwhile (the snapshot's child). The
        derived state, a web of small mutable objects, is taken as it stands: pickled
        at once, or, in the file, as its tail (``localstate.write``), read only when its
        fingerprint is the worker's.
        """
        exported = {topic: store.export(copy) for topic, store in self.stores.items()}
        return {
            "format": localstate.FORMAT, "app_id": self.app_id, "cluster": self.cluster,
            "fingerprint": self.fingerprint,
            "tables": {topic: table for topic, (table, _) in exported.items()},
            # where each partition's records are in its table's dict: a key an older
            # release does not read (the format is unchanged)
            RUNS: {topic: runs for topic, (_, runs) in exported.items()},
            DERIVED: {"cells": self.state.export(),
                      "work": {tp: self.work.export(tp) for tp in self.state.parts}},
        }

    def restore(self, cp: dict[str, Any], derived_too: bool = True) -> int | None:
        """Take a checkpoint (before the app starts); the records it held.

        None, and nothing taken, if its derived state cannot be read back (a class it
        names has moved): the worker then restores from the changelogs alone. Without
        ``derived_too`` only the records are taken (they are what the changelogs hold,
        whatever judged them): recovery then refolds every partition from them.

        ``cp`` is consumed, so a restart holds each part once (BENCHMARKS.md, Memory):
        each table's dicts become its store's. The derived state is ``load``'s tail,
        or, in a file written before tails, pickled bytes, dropped once unpickled.
        """
        derived = cp.pop(DERIVED, None) if derived_too else None
        if derived_too and derived is None:  # its tail could not be read (``load`` logged)
            log.warning("checkpoint not used reason=derived error=unread")
            return None
        if isinstance(derived, bytes):  # an older writer pickled it inside
            try:
                derived = pickle.loads(derived)  # the worker's own file, never input
            except Exception as exc:  # noqa: BLE001 - an unusable checkpoint: a full restore
                log.warning("checkpoint not used reason=derived error=%s", type(exc).__name__)
                return None
        records, tables, runs = 0, cp.pop("tables"), cp.pop(RUNS, {})
        while tables:
            topic, table = tables.popitem()
            records += self.stores[topic].restore(table, runs.get(topic))
        if derived is None:
            return records
        self.state.restore(derived["cells"])
        for tp, work in derived["work"].items():
            self.work.restore(tp, work)
        self._last = self._signature()
        return records
