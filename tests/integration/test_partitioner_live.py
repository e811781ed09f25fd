"""A librdkafka producer (confluent-kafka) against the real worker (issue 25, point 1).

At librdkafka's default partitioner (``consistent_random``: CRC32 of the key) a case's
events land where the contract's partitioner (murmur2, Java's default) does not put
them: every one is dead-lettered as ``wrong_partition`` and none is counted. The same
events sent with ``partitioner=murmur2_random`` are counted exactly. Where librdkafka
put each record (its delivery reports) is the independent ground truth for both.
"""

from __future__ import annotations

import zlib
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
import pytest

from stream.contract.partitioner import partition_of
from stream.contract.taxonomy import load_taxonomy
from stream.contract.topics import load_topics
from stream.upstream.producer import EventValidator, encode
from tests.factories import key, received
from tests.integration.conftest import start_worker
from tests.integration.harness import consume_topic, consumed, total, wait_for

confluent_kafka = pytest.importorskip("confluent_kafka")
pytestmark = pytest.mark.integration
TOPICS = load_topics()
CONTACTS = TOPICS["contacts"]
VALIDATOR = EventValidator(load_taxonomy())
AT = datetime(2019, 9, 16, 9, 30, tzinfo=ZoneInfo("Europe/London"))


def send(bootstrap: str, messages: list[tuple[bytes, bytes]], **conf: str) -> list[int]:
    """Send with confluent-kafka; the partition librdkafka chose for each, in order."""
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap,
                                         "enable.idempotence": True, **conf})
    placed: dict[int, int] = {}

    def delivered(i: int):
        def report(err, msg):
            assert err is None, err
            placed[i] = msg.partition()
        return report

    for i, (k, value) in enumerate(messages):
        producer.produce(CONTACTS.name, value=value, key=k, timestamp=int(AT.timestamp() * 1000),
                         on_delivery=delivered(i))
    assert producer.flush(60) == 0
    return [placed[i] for i in range(len(messages))]


def test_librdkafka_default_is_dead_lettered_murmur2_random_counts(broker, workers, tmp_path):
    n = CONTACTS.partitions
    # Keys whose CRC32 partition differs from the murmur2 one (18 of 20 in the issue).
    keys = [k for k in (key(f"rdkafka-{i}") for i in range(40))
            if zlib.crc32(k.encode()) % n != partition_of(k.encode(), n)][:12]
    messages = [(k.encode(), encode(VALIDATOR.build("contacts", received(k, AT))))
                for k in keys]
    worker = start_worker(broker, tmp_path, workers)

    at_default = send(broker.bootstrap, messages)
    assert at_default == [zlib.crc32(k.encode()) % n for k in keys]  # what librdkafka does
    wait_for(lambda: consumed(worker) >= len(keys), 90, "the default-partitioned events")
    s = worker.samples()
    assert total(s, "cspa_events_rejected_total", reason="wrong_partition") == len(keys)
    assert total(s, "cspa_contacts_received") == 0
    letters = [orjson.loads(v) for v in consume_topic(broker.bootstrap,
                                                      TOPICS["deadletter"].name, len(keys))]
    by_offset = {(d["partition"], d["offset"]): d for d in letters}
    assert len(by_offset) == len(keys)
    assert {d["reason"] for d in letters} == {"wrong_partition"}
    got = sorted(d["detail"] for d in letters)
    # murmur2_random's placement (below) is where each key belongs.
    at_murmur2 = send(broker.bootstrap, messages, partitioner="murmur2_random")
    assert at_murmur2 == [partition_of(k.encode(), n) for k in keys]
    assert got == sorted(f"partition {a}, contract partitioner gives {b}"
                         for a, b in zip(at_default, at_murmur2, strict=True))

    wait_for(lambda: consumed(worker) >= 2 * len(keys), 90, "the murmur2-partitioned events")
    s = worker.samples()
    assert total(s, "cspa_contacts_received") == len(keys)
    assert total(s, "cspa_events_rejected_total") == len(keys)  # no more than before
