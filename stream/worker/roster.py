"""The monthly-audit standard over every partition, on every worker.

An advisor's joins and leaves are keyed by advisor, their audits by audit
(``docs/contract.md``), so the two sit in different partitions of the audits topic; with
several workers, each owns only some of them. ``cspa_advisors_unaudited`` worked out from
one worker's partitions counted an advisor as unaudited when their audit sat on another
worker. So every worker also follows the changelog of the audits records table, all its
partitions, into cells of its own (``Roster``): the records the agents folded, their
facts by the same functions, nothing decoded, counted or dead-lettered twice. The audits
topic is small (a council grades a few hundred audits a month), and so is this copy.

Every worker then exports the same exact figure (read it with ``max by (team)``), once
it has read the changelog up to the end offsets it found when it started; before that it
exports none, so a half-read changelog raises no alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.state import archive, records
from stream.state.aggregates import Aggregates
from stream.state.facts import FactContext
from stream.state.families import facts_of
from stream.state.progress import is_marker

log = logging.getLogger("cspa.worker")

#: seconds before following again after the changelog could not be read
RETRY_SECONDS = 5.0


class Roster:
    """The audits table's records over all its partitions, and their cells.

    Fed the changelog's records in order (key: the table key; value: the stored record,
    or ``None`` for a tombstone), it holds what the table holds over all partitions, as
    the report's merge of every worker's cells does.
    """

    def __init__(self, ctx: FactContext) -> None:
        self._ctx = ctx
        self._stored: dict[str, bytes] = {}
        self.cells = Aggregates()
        #: True once the changelog was read up to the end offsets found at start
        self.ready = False
        #: records applied and resets so far: the cells are unchanged while it is
        self.changes = 0

    def reset(self) -> None:
        """Forget everything: the changelog is to be read again from its start."""
        self._stored.clear()
        self.cells = Aggregates()
        self.ready = False
        self.changes += 1

    def apply(self, key: str, value: bytes | None) -> None:
        """One changelog record: the table's ``key`` now stores ``value``."""
        if is_marker(key):
            return
        self.changes += 1
        old = self._stored.pop(key, None)
        if value is not None:
            self._stored[key] = value
        if archive.is_archive(key):  # an erased partition's cells (retention)
            archive.apply(self.cells, old, -1)
            archive.apply(self.cells, value, +1)
            return
        before = records.loads(old) if old is not None else None
        after = records.loads(value) if value is not None else None
        self.cells.replace(facts_of(before, self._ctx), facts_of(after, self._ctx))

    def current(self) -> Aggregates | None:
        """The cells over every partition, or None until the changelog is read."""
        return self.cells if self.ready else None


async def follow(roster: Roster, changelog: str, partitions: int,
                 consumer: AIOKafkaConsumer) -> None:
    """Read ``changelog`` from its start into ``roster``, then keep up (until cancelled).

    No consumer group: every partition is assigned, nothing is committed, each start
    reads it whole (the table's changelog is compacted: one record per audit, review,
    sample or advisor, at most a few the same key).
    """
    tps = [TopicPartition(changelog, p) for p in range(partitions)]
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            for batch in batches.values():
                _apply(roster, batch)
            if not roster.ready and await _reached(consumer, ends):
                roster.ready = True
                log.info("advisor roster read changelog=%s", changelog)
    finally:
        # (bounded: aiokafka's stop can wait on a fetch the broker never answers)
        with contextlib.suppress(Exception, asyncio.TimeoutError):
            await asyncio.wait_for(consumer.stop(), 10)


def _apply(roster: Roster, batch: Iterable[Any]) -> None:
    for message in batch:
        roster.apply(str(orjson.loads(message.key)), message.value)


async def _reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


async def keep_following(roster: Roster, changelog: str, partitions: int,
                         consumer: Callable[[], AIOKafkaConsumer]) -> None:
    """``follow`` for as long as the worker runs, from the start again after an error
    (the broker gone, access refused), with nothing exported meanwhile."""
    while True:
        roster.reset()
        try:
            await follow(roster, changelog, partitions, consumer())
        except Exception as exc:  # noqa: BLE001 - the worker must keep going
            log.error("advisor roster not read error=%s; again in %.0f s",
                      type(exc).__name__, RETRY_SECONDS)
        roster.ready = False
        await asyncio.sleep(RETRY_SECONDS)
