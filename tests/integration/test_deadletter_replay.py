"""Dead letters replayed exactly once (issue 25, points 4 and 6), on a real broker.

An early producer sends a new optional field (``referrer_role``) before the workers know
it: a worker of the shipped contract dead-letters those events as ``unexpected_field``.
The worker is then upgraded (a release that knows the field, tests/integration/
newfield_worker.py), and two operators run ``python -m stream deadletter replay`` at the
same moment: each dead letter goes back to its source topic once, the figures count the
events once, and an event still bad after the upgrade returns with its new reason.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.cli import ensure_topics
from stream.contract.decoder import Rejection
from stream.contract.topics import load_topics
from stream.settings import Settings
from stream.upstream import deadletter
from stream.worker.processor import deadletter_message
from tests.groundtruth import Message
from tests.integration.conftest import start_worker
from tests.integration.harness import (
    ROOT,
    WorkerProcess,
    produce_sync,
    rekey_topic,
    total,
    wait_for,
)

pytestmark = pytest.mark.integration
TOPIC = "cspa.contacts.v1"
START = datetime(2019, 9, 16, 8, 30, tzinfo=UTC)


def received(n: int, **extra: object) -> Message:
    key = f"{n:032x}"
    at = START + timedelta(minutes=n)
    body = {"event_id": f"dl-test-{n:04d}", "event_type": "contact.received",
            "schema_version": 1, "occurred_at": at.isoformat(), "source_system": "lcs",
            "contact_key": key, "channel": "phone", "source_code": "6", "team": "rfs", **extra}
    return Message(TOPIC, key.encode(), orjson.dumps(body), int(at.timestamp() * 1000))


class UpgradedWorker(WorkerProcess):
    """The same worker (app id, data dir, port) run from the later release."""

    def start(self) -> UpgradedWorker:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.newfield_worker"], cwd=ROOT,
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self.ready, 90, "upgraded worker ready")
        return self


def cli(bootstrap: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "stream", *args], cwd=ROOT,
                            env={**WorkerProcess(bootstrap, ROOT / ".cache" / "unused").env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def run_cli(bootstrap: str, *args: str) -> tuple[str, str]:
    """(stdout, stderr) of one command."""
    out, err = cli(bootstrap, *args).communicate(timeout=120)
    return out.decode(), err.decode()


async def committed_values(bootstrap: str) -> list[bytes]:
    """Every committed value of the contacts topic (a fenced replay's aborted ones left out)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(TOPIC, p) for p in range(6)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        out: list[bytes] = []
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            out += [r.value for records in batch.values() for r in records]
        return out
    finally:
        await consumer.stop()


def received_total(worker: WorkerProcess) -> float:
    return total(worker.samples(), "cspa_contacts_received")


def test_new_field_is_dead_lettered_then_replayed_exactly_once(broker, workers, tmp_path):
    plain = [received(n) for n in range(3)]
    early = [received(n, referrer_role="police_officer") for n in range(3, 8)]
    still_bad = [received(8, referrer_role=7)]  # wrong type even once the field is known
    worker = start_worker(broker, tmp_path, workers)
    produce_sync(broker.bootstrap, plain + early + still_bad)
    wait_for(lambda: total(worker.samples(), "cspa_events_rejected_total",
                           reason="unexpected_field") == 6, 90, "6 dead letters")
    assert received_total(worker) == 3

    # list: where and why, never the key or the value.
    listed, logged = run_cli(broker.bootstrap, "deadletter", "list", "--reason",
                             "unexpected_field")
    rows = [line.split("\t") for line in listed.splitlines()[1:]]
    assert [(r[3], r[6], r[7]) for r in rows] == [(TOPIC, "unexpected_field", "no")] * 6
    assert "police_officer" not in listed + logged
    assert not any(m.key.decode() in listed + logged for m in early)
    shown, _ = run_cli(broker.bootstrap, "deadletter", "show", rows[0][1])
    assert "police_officer" in shown
    assert sum(m.key.decode() in shown for m in early) == 1

    # The workers upgrade; two operators replay at once.
    worker.stop()
    upgraded = UpgradedWorker(broker.bootstrap, worker.workdir)  # same data dir and group
    workers[0] = upgraded
    upgraded.start()
    replayers = [cli(broker.bootstrap, "deadletter", "replay", "--reason", "unexpected_field")
                 for _ in range(2)]
    outputs = [b"".join(p.communicate(timeout=180)).decode() for p in replayers]
    assert all(p.returncode == 0 for p in replayers), outputs
    sent = [int(re.search(r"replayed (\d+)", o).group(1)) for o in outputs]  # type: ignore[union-attr]
    assert sum(sent) == 6, outputs

    wait_for(lambda: total(upgraded.samples(), "cspa_events_rejected_total",
                           reason="wrong_type") == 1, 90, "the still-bad event back")
    wait_for(lambda: received_total(upgraded) == 8, 60, "the replayed events counted")
    # The upgraded worker read only the 6 replayed records, not the topic again.
    assert total(upgraded.samples(), "cspa_events_consumed_total") == 6

    # On the source topic: every dead-lettered value exactly twice (sent, replayed once).
    values = Counter(asyncio.run(committed_values(broker.bootstrap)))
    assert sum(values.values()) == 15
    assert all(values[m.value] == 2 for m in early + still_bad)
    assert all(values[m.value] == 1 for m in plain)

    # On the dead-letter topic: 6 marked replayed, the still-bad one back, pending.
    contents = asyncio.run(deadletter.read_all(Settings(broker=broker.bootstrap)))
    assert len(contents.replayed) == 6
    assert [d.reason for d in contents.letters] == ["unexpected_field"] * 6 + ["wrong_type"]
    assert contents.pending(deadletter.Filter("unexpected_field")) == []
    assert len(contents.pending(deadletter.Filter())) == 1
    again, _ = run_cli(broker.bootstrap, "deadletter", "replay", "--reason", "unexpected_field")
    assert again.strip() == "replayed 0 dead letter(s)"


async def _written(bootstrap: str, topic: str) -> int:
    """The end offsets of ``topic`` summed: 0 when nothing was ever written to it (a
    transaction's commit marker takes an offset too)."""
    spec = next(s for s in load_topics(app_id="cspa").values() if s.name == topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(spec.partitions)]
        return sum((await consumer.end_offsets(parts)).values())
    finally:
        await consumer.stop()


def test_a_hop_too_late_for_its_childs_window_is_left_where_it_is(broker):
    # The worker dead-letters a hop of its own repartition topic as child_window_passed
    # (written here as the worker writes it): replayed, it would only come back again.
    ensure_topics(Settings(broker=broker.bootstrap))
    hop_topic = rekey_topic("cspa")
    letters = [
        deadletter_message(hop_topic, 2, 9, None, b"ab" * 16, b'{"hop": 1}',
                           Rejection("child_window_passed", "too late")),
        deadletter_message(TOPIC, 1, 4, None, received(1).key, received(1).value,
                           Rejection("unexpected_field", "(extra field)")),
    ]
    produce_sync(broker.bootstrap, [Message("cspa.deadletter.v1", b"ab" * 16, v, None)
                                    for v in letters])
    out, err = run_cli(broker.bootstrap, "deadletter", "replay")
    assert out.strip() == ("replayed 1 dead letter(s); 1 from the workers' repartition topic "
                           "left as they are (hops too late for their child's window: not "
                           "events, see docs/contract.md)"), out + err
    assert asyncio.run(_written(broker.bootstrap, hop_topic)) == 0
    assert asyncio.run(committed_values(broker.bootstrap)) == [received(1).value]
    pending = asyncio.run(deadletter.read_all(Settings(broker=broker.bootstrap))).pending(
        deadletter.Filter())
    assert [d.reason for d in pending] == ["child_window_passed"]
