"""The monthly-audit standard with two real workers sharing the audits topic.

An advisor's joins and leaves are keyed by advisor and their audits by audit, so with
two workers many advisors have their record on one and an audit on the other. Each
worker follows every partition of the audits table's changelog (``stream.worker.roster``),
so each exports the exact count of advisors in post without an audit this month: the
same as one worker would, and as the test works out by hand from the events it sent.
The test first shows that its data would fool a count made from each worker's own
partitions (their sum is too high).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import tests.reportgen as rg
from stream.contract.partitioner import partition_of
from tests.integration.conftest import start_worker
from tests.integration.harness import WorkerProcess, total, wait_for
from tests.integration.reporting import pipeline
from tests.integration.test_quality_live import NOW, unaudited_by_hand

pytestmark = pytest.mark.integration

AUDITS = rg.TOPICS["audits"]


def owned_audits(worker: WorkerProcess) -> set[int]:
    return {p for t, p in worker.get_json("/ready")["owned"] if t == AUDITS}


def unaudited_of(worker: WorkerProcess, teams: list[str]) -> dict[str, float]:
    s = worker.samples()
    return {team: total(s, "cspa_advisors_unaudited", team=team) for team in teams}


def test_each_of_two_workers_exports_the_exact_count(tmp_path: Path) -> None:
    clock = tmp_path / "clock.txt"
    clock.write_text(NOW + "\n")
    full = rg.generate(contacts=0, emails=0, calls=0, enquiries=0, audits=30, quality=True)
    data = rg.Dataset([m for m in full.messages if m.topic == AUDITS])
    want = unaudited_by_hand(rg.facts_of(data), "2019-11")
    with pipeline(tmp_path, CSPA_CLOCK_FILE=str(clock)) as p:
        p.send(data.messages)
        second: list[WorkerProcess] = []
        try:
            w2 = start_worker(p.broker, tmp_path, second, "w2", CSPA_CLOCK_FILE=str(clock))
            workers = (p.worker, w2)
            split = wait_for(lambda: _split(workers), 120, "the audits partitions split")
            # the premise: counted from each worker's own partitions, the sum is too high
            own = [unaudited_by_hand(rg.facts_of(rg.Dataset(
                [m for m in data.messages if partition_of(m.key, 6) in parts])), "2019-11")
                for parts in split]
            assert sum(sum(o.values()) for o in own) > sum(want.values()) > 0
            for w in workers:
                wait_for(lambda w=w: unaudited_of(w, list(want)) == want, 90,
                         "each worker's unaudited advisors exact")
        finally:
            for w in second:
                w.stop()


def _split(workers: tuple[WorkerProcess, ...]) -> list[set[int]] | None:
    """Each worker's audits partitions, once both own some and together all six."""
    if not all(w.ready() for w in workers):
        return None
    parts = [owned_audits(w) for w in workers]
    whole = all(parts) and set().union(*parts) == set(range(6)) and sum(map(len, parts)) == 6
    return parts if whole else None
