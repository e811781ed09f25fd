"""A catalogue of hostile messages through the real broker: each one dead-lettered with its
reason and counted, while the valid events around it are all counted exactly."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import orjson
import pytest

from tests import factories as f
from tests.faults.conftest import (
    b64,
    counted,
    produce_tracked,
    read_deadletter,
    wait_caught_up,
    write_result,
)
from tests.groundtruth import TOPICS, Dataset, Message, expected, generate
from tests.integration.harness import total
from tests.integration.test_pipeline import assert_figures_match

pytestmark = [pytest.mark.integration, pytest.mark.faults]

CONTACTS, CALLS = TOPICS["contacts"], TOPICS["calls"]
MAPS, AUDITS = TOPICS["map_enquiries"], TOPICS["audits"]
REKEY = TOPICS["children"]  # the worker's own repartition topic: a bug or an intruder there
SECRET = "Jane Example 2011-04-01"  # must never come back in a detail


def _msg(topic: str, key: bytes | None, value: bytes | None) -> Message:
    return Message(topic, key, value, None)  # type: ignore[arg-type]


def catalogue(at: datetime) -> list[tuple[str, str, Message]]:
    """(kind, expected reason, message) of every hostile input."""
    k = f.key("hostile")
    kb = k.encode()
    good = f.received(k, at)
    call = f.answered(k, at, 12.0)

    def js(event: dict) -> bytes:
        return orjson.dumps(event)

    without_channel = {n: v for n, v in good.items() if n != "channel"}
    return [
        ("invalid UTF-8", "invalid_utf8", _msg(CONTACTS, kb, b'{"event_id": "\xff\xfe"}')),
        ("invalid JSON", "invalid_json", _msg(CONTACTS, kb, b'{"event_id": "abc", ')),
        ("JSON with a byte-order mark", "invalid_json",
         _msg(CONTACTS, kb, b"\xef\xbb\xbf" + js(good))),
        ("JSON nested 5000 deep", "invalid_json", _msg(CONTACTS, kb, b"[" * 5000 + b"]" * 5000)),
        ("a JSON array", "not_an_object", _msg(CONTACTS, kb, b'[{"event_type": "x"}]')),
        ("a JSON number", "not_an_object", _msg(CONTACTS, kb, b"42")),
        ("wrong type (code as number)", "wrong_type",
         _msg(CONTACTS, kb, js({**good, "source_code": 6}))),
        ("wrong type (wait as string)", "wrong_type",
         _msg(CALLS, kb, js({**call, "wait_seconds": "12"}))),
        ("missing field", "missing_field", _msg(CONTACTS, kb, js(without_channel))),
        ("extra field", "unexpected_field", _msg(CONTACTS, kb, js({**good, SECRET: SECRET}))),
        ("unknown category", "unknown_category",
         _msg(CONTACTS, kb, js({**good, "channel": "carrier_pigeon"}))),
        ("unknown agency", "unknown_category",
         _msg(MAPS, kb, js(f.map_completed(k, at, ["ministry_of_magic"])))),
        ("unknown grade", "unknown_category", _msg(AUDITS, kb, js(f.audit(k, at, grade="wow")))),
        ("timestamp without offset", "naive_timestamp",
         _msg(CONTACTS, kb, js({**good, "occurred_at": at.replace(tzinfo=None).isoformat()}))),
        ("timestamp far in the future", "timestamp_out_of_range",
         _msg(CONTACTS, kb, js({**good, "occurred_at": (datetime.now(UTC) + timedelta(
             days=400)).isoformat()}))),
        ("timestamp before 2000", "timestamp_out_of_range",
         _msg(CONTACTS, kb, js({**good, "occurred_at": "1999-12-31T23:59:59+00:00"}))),
        ("negative wait_seconds", "invalid_value",
         _msg(CALLS, kb, js({**call, "wait_seconds": -5.0}))),
        ("NaN wait_seconds", "invalid_value",
         _msg(CALLS, kb, js(call).replace(b"12.0", b"NaN"))),
        ("huge payload (100 KB)", "payload_too_large",
         _msg(CONTACTS, kb, js({**good, "padding": "x" * 100_000}))),
        ("key not matching the body", "key_mismatch",
         _msg(CONTACTS, f.key("someone-else").encode(), js(good))),
        ("no key", "key_mismatch", _msg(CONTACTS, None, js(good))),
        ("identifier instead of a pseudonymous key", "invalid_value",
         _msg(CONTACTS, SECRET.encode(), js({**good, "contact_key": SECRET}))),
        ("schema version from the future", "unsupported_schema_version",
         _msg(CONTACTS, kb, js({**good, "schema_version": 2, "new_field": SECRET}))),
        ("unknown event type", "unknown_event_type",
         _msg(CONTACTS, kb, js({**good, "event_type": "contact.deleted"}))),
        ("event type of another topic", "unknown_event_type", _msg(CONTACTS, kb, js(call))),
        ("empty value", "empty_payload", _msg(CONTACTS, kb, b"")),
        ("tombstone (null value)", "empty_payload", _msg(CALLS, kb, None)),
        ("not a hop on the repartition topic", "invalid_value",
         _msg(REKEY, f.key("hostile-child").encode(), js({"c": 1, "t": SECRET}))),
        ("a hop that is not JSON", "invalid_value",
         _msg(REKEY, f.key("hostile-child").encode(), b"{oops " + SECRET.encode())),
    ]


def test_hostile_messages_are_dead_lettered_and_valid_ones_counted(broker, fresh_worker):
    rng = random.Random(66)
    start = date.today() - timedelta(days=60)
    ds = generate(seed=66, start=start, days=45, contacts=400, calls=400, enquiries=80,
                  audits=40, bad=0)
    # Valid but out of order: completions whose time is earlier than their opening,
    # sent before it. They must be matched, not rejected.
    at = datetime.combine(start + timedelta(days=10), datetime.min.time(), UTC) + timedelta(
        hours=11)
    ooo_contact, ooo_map = f.key("early-decision"), f.key("early-completion")
    ooo = Dataset()
    ooo.add("contacts", ooo_contact, f.decided(ooo_contact, at - timedelta(hours=3), "level_3"))
    ooo.add("contacts", ooo_contact, f.received(ooo_contact, at, "phone", "2A"))
    ooo.add("map_enquiries", ooo_map,
            f.map_completed(ooo_map, at - timedelta(hours=1), ["police", "gp"]))
    ooo.add("map_enquiries", ooo_map, f.map_opened(ooo_map, at))
    valid = ds.messages + ooo.messages
    truth = expected(Dataset(valid))

    hostile = catalogue(at)
    stream: list[tuple[str | None, Message]] = [(None, m) for m in valid]
    for kind, _, message in hostile:  # interleaved at random places
        stream.insert(rng.randrange(len(stream) + 1), (kind, message))

    worker = fresh_worker()
    places = produce_tracked(broker.bootstrap, [m for _, m in stream])
    wait_caught_up(worker, timeout=180)

    dead = read_deadletter(broker.bootstrap, len(hostile), timeout=60)
    by_source = {(d["source_topic"], d["partition"], d["offset"]): d for d in dead}
    assert len(by_source) == len(dead) == len(hostile)  # one each, nothing else
    reasons = {kind: reason for kind, reason, _ in hostile}
    by_kind: dict[str, str] = {}
    for (kind, message), (partition, offset) in zip(stream, places, strict=True):
        record = by_source.get((message.topic, partition, offset))
        if kind is None:
            assert record is None, f"a valid event was dead-lettered: {record['reason']}"
            continue
        assert record is not None, f"{kind}: not on the dead-letter topic"
        by_kind[kind] = record["reason"]
        assert record["_key"] == message.key
        assert b64(record["key_b64"]) == message.key
        assert b64(record["value_b64"]) == message.value  # the original bytes, to replay
        assert SECRET not in record["detail"] and "carrier_pigeon" not in record["detail"]
    write_result("hostile_inputs.json", {
        "by_kind": by_kind, "by_reason": dict(Counter(by_kind.values())),
        "hostile_messages": len(hostile), "valid_events": len(valid)})
    assert by_kind == reasons

    samples = worker.samples()
    want = Counter((m.topic, reason) for _, reason, m in hostile)
    for (topic, reason), n in want.items():
        assert total(samples, "cspa_events_rejected_total", topic=topic, reason=reason) == n, (
            topic, reason)
    assert total(samples, "cspa_events_rejected_total") == len(hostile)
    # (the repartition topic also carries the worker's own hops: counted apart)
    hops = total(samples, "cspa_events_consumed_total", topic=REKEY)
    assert total(samples, "cspa_events_consumed_total") - hops == len(
        [m for _, m in stream if m.topic != REKEY])
    assert hops == total(samples, "cspa_hops_sent_total") + len(
        [m for _, m in stream if m.topic == REKEY])

    # The worker kept going: every valid event around the hostile ones is counted exactly,
    # the out-of-order pairs included (completion time before opening: 0 days, not rejected).
    assert counted(samples, truth) == (0, 0)
    assert_figures_match(samples, truth)
    assert total(samples, "cspa_map_enquiry_workdays_count") == total(
        truth, "cspa_map_enquiry_workdays_count")
    assert worker.proc is not None and worker.proc.poll() is None
