"""The hop's A/B: the *without* side differs from the backlog by its child keys alone."""

from __future__ import annotations

import time
from collections import Counter

import orjson

from bench import dataset, expected, hop, report
from stream.contract.decoder import Decoder, Rejection
from stream.contract.taxonomy import load_taxonomy
from stream.contract.topics import event_families


def _events(msgs: list[dataset.Msg]) -> list[dict]:
    return [orjson.loads(m.value) for m in msgs]


def test_only_child_keys_are_taken_out_and_every_other_field_is_kept():
    msgs = dataset.backlog(3_000, scale=5.0)
    stripped = hop.without_child_keys(msgs)
    named = [e for e in _events(msgs) if "child_key" in e]
    assert named and all(e["event_type"] == "contact.received" for e in named)
    assert not any("child_key" in e for e in _events(stripped))
    for before, after in zip(msgs, stripped, strict=True):
        assert (before.topic, before.key, before.timestamp_ms) == (
            after.topic, after.key, after.timestamp_ms)
        event = orjson.loads(before.value)
        event.pop("child_key", None)
        assert orjson.loads(after.value) == event
    # the figures compared for exactness do not depend on child keys: both sides the same
    assert expected.compute(stripped) == expected.compute(msgs)


def test_live_contacts_name_children_only_when_asked_and_some_children_twice():
    taxonomy = load_taxonomy()
    decoders = {s.name: Decoder(f, taxonomy) for f, s in event_families(dataset.TOPICS).items()}
    for children in (False, True):
        msgs = list(dataset.live(1_000, children=children))
        received = [e for e in _events(msgs) if e["event_type"] == "contact.received"]
        keys = Counter(e.get("child_key") for e in received)
        if children:
            assert None not in keys and max(keys.values()) > 1  # repeats: one child, 2+
        else:
            assert set(keys) == {None}
        for m in msgs:  # every one valid as the worker decodes it
            assert not isinstance(decoders[m.topic].decode(m.key, m.value, time.time()), Rejection)


def _side(hops: float, p99: float) -> dict:
    return {"throughput": {"median": 1.0}, "hops_sent": hops,
            "latency": {"p50_s": p99 / 2, "p99_s": p99},
            "recovery": {"seconds": 9.5, "cold_seconds": 20.25}}


def test_the_report_lists_each_pair_and_each_side():
    phase = {"runs": {"with": [{"events_per_s": 30_000}, {"events_per_s": 33_000}],
                      "without": [{"events_per_s": 40_000}, {"events_per_s": 44_000}]},
             "throughput_ratio": {"each": [0.75, 0.75]},
             "with": _side(3_000, 0.05), "without": _side(0, 0.04)}
    lines = report.hop_markdown({"phases": {"hop": phase}})
    assert "| 2 | 33,000 | 44,000 | 0.75x |" in lines
    assert "| with | 3,000 | 25.0 / 50.0 | 9.5 | 20.2 |" in lines
    assert "| without | 0 | 20.0 / 40.0 | 9.5 | 20.2 |" in lines
    assert report.hop_markdown({"phases": {}}) == []
