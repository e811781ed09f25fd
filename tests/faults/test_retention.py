"""Retention on a real broker: after ``retention --apply`` no record of an expired case is
left in any topic the product writes, nor in the worker's next checkpoint, and the figures
still equal the independent ground truth, months before the cut-off included.

An expired case is one whose every event occurred before the cut-off, worked out here from
the generated events, not by the code under test. The events are sent in event-time order,
as upstream systems send them (Kafka deletes only a prefix of a log: an event that arrives
after newer ones is deleted at a later run, ``stream.worker.retention``).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.cli import changelog_topics, ensure_topics
from stream.settings import Settings
from stream.worker import localstate
from tests.faults.conftest import wait_caught_up
from tests.groundtruth import TOPICS, expected, generate
from tests.integration.harness import ROOT, WorkerProcess, produce_sync, wait_for
from tests.integration.test_pipeline import assert_figures_match

pytestmark = pytest.mark.integration

LONDON = ZoneInfo("Europe/London")
CUTOFF = datetime(2019, 9, 1, tzinfo=LONDON)  # data: 2019-07-20 + 80 days


def _older_than() -> str:
    """The --older-than that puts the cut-off at CUTOFF (calendar months before today)."""
    today = datetime.now(LONDON).date()
    return f"{today.year * 12 + today.month - (CUTOFF.year * 12 + CUTOFF.month)}m"


def _expired_keys(messages) -> set[bytes]:
    """Keys of cases whose every event occurred before the cut-off."""
    latest: dict[tuple[str, bytes], datetime] = defaultdict(
        lambda: datetime.min.replace(tzinfo=UTC))
    for m in messages:
        if m.key == b"bad":
            continue
        at = datetime.fromisoformat(orjson.loads(m.value)["occurred_at"])
        latest[(m.topic, m.key)] = max(latest[(m.topic, m.key)], at)
    return {key for (_, key), at in latest.items() if at < CUTOFF}


async def _read_all(bootstrap: str, topics: list[str]) -> dict[str, list[bytes]]:
    """Every record (key and value bytes) of each topic, from its start to its end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    out: dict[str, list[bytes]] = {}
    try:
        meta = await consumer._client.fetch_all_metadata()  # every topic, not only assigned
        for topic in topics:
            tps = [TopicPartition(topic, p)
                   for p in sorted(meta.partitions_for_topic(topic) or ())]
            assert tps, f"topic {topic} not found"
            out[topic] = []
            ends = await consumer.end_offsets(tps)
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    out[topic] += [(r.key or b"") + b"\0" + (r.value or b"") for r in records]
            out[topic].sort()  # partitions interleave differently from one read to the next
    finally:
        await consumer.stop()
    return out


def _retention(bootstrap: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CSPA_BROKER": bootstrap, "CSPA_APP_ID": "cspa"}
    return subprocess.run([sys.executable, "-m", "stream", "retention", "--older-than",
                           _older_than(), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def _found(pattern: re.Pattern[bytes], topics: dict[str, list[bytes]]) -> dict[str, int]:
    return {t: n for t, rs in topics.items() if (n := sum(bool(pattern.search(r)) for r in rs))}


def test_retention_erases_expired_cases_everywhere_and_keeps_the_figures(broker, workers,
                                                                          tmp_path):
    ds = generate(seed=26, start=date(2019, 7, 20), days=80)
    truth = expected(ds)
    expired = _expired_keys(ds.messages)
    live = {m.key for m in ds.messages if m.key != b"bad"} - expired
    assert len(expired) > 100 and len(live) > 100  # both sides of the cut-off
    pattern = re.compile(b"|".join(re.escape(k) for k in sorted(expired)))
    ds.messages.sort(key=lambda m: m.timestamp_ms or 2**62)  # event-time order; bad ones last

    settings = Settings(broker=broker.bootstrap)
    ensure_topics(settings)
    produce_sync(broker.bootstrap, ds.messages)
    worker = WorkerProcess(broker.bootstrap, tmp_path / "w1",
                           env={"CSPA_CHECKPOINT_SECONDS": "0.5"})
    workers.append(worker)
    worker.start()
    wait_caught_up(worker)
    assert_figures_match(worker.samples(), truth)
    checkpoint = worker.workdir / "data" / "checkpoint-cspa.pickle"
    wait_for(checkpoint.exists, 60, "a checkpoint")
    topics = [*(t for t in TOPICS.values()), *changelog_topics(settings),
              "cspa-__assignor-__leader"]
    before = asyncio.run(_read_all(broker.bootstrap, topics))
    # the checks below can fail: expired cases are in every kind of topic before
    sent = {m.topic for m in ds.messages}
    used = {c for c in changelog_topics(settings) if any(t in c for t in sent)}  # fed ones
    assert set(_found(pattern, before)) >= {TOPICS["contacts"], *used}

    dry = _retention(broker.bootstrap)
    assert dry.returncode == 0, dry.stderr
    assert "dry run" in dry.stdout
    assert "erase\tcspa-records-cspa.contacts.v1-changelog" in dry.stdout
    assert not pattern.search(dry.stdout.encode())  # counts only, never a key
    refused = _retention(broker.bootstrap, "--apply")
    assert refused.returncode == 1 and "running" in refused.stderr
    assert asyncio.run(_read_all(broker.bootstrap, topics)) == before  # nothing deleted

    worker.stop()
    applied = _retention(broker.bootstrap, "--apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    after = asyncio.run(_read_all(broker.bootstrap, topics))
    assert _found(pattern, after) == {}
    kept = re.compile(b"|".join(re.escape(k) for k in sorted(live)))
    assert set(_found(kept, after)) >= {TOPICS["contacts"], *used}

    written = checkpoint.stat().st_mtime
    worker.start()
    wait_caught_up(worker)
    assert "checkpoint not used reason=erased" in worker.log_path.read_text()
    assert_figures_match(worker.samples(), truth)  # months before the cut-off included
    wait_for(lambda: checkpoint.stat().st_mtime > written, 60, "a new checkpoint")
    cp = localstate.load(checkpoint, localstate.read_key(worker.workdir / "checkpoint.key"))
    assert cp is not None
    keys = [k.encode() for _, (data, _, _) in cp["tables"].items() for k in data]
    values = [v for _, (data, _, _) in cp["tables"].items() for v in data.values()]
    assert not any(pattern.search(k) for k in keys + values)
    assert any(kept.search(k) for k in keys)

    worker.stop()
    again = _retention(broker.bootstrap)
    assert again.returncode == 0 and "nothing to delete" in again.stdout, again.stdout
