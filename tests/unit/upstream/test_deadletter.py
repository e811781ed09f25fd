"""Dead letters read back: parsing, filters, the listing that never shows a value."""

from __future__ import annotations

import dataclasses

import orjson

from stream.contract.decoder import Rejection
from stream.upstream import deadletter
from stream.worker.processor import deadletter_message

KEY = b"ab" * 16
VALUE = b'{"event_type":"contact.received","secret_field":"a name"}'


def letter(offset: int, reason: str = "unexpected_field") -> deadletter.DeadLetter:
    raw = deadletter_message("cspa.contacts.v1", 3, 41, 1_568_622_780_000.0, KEY, VALUE,
                             Rejection(reason, "(extra field): extra_forbidden"))
    parsed = deadletter.parse(0, offset, raw)
    assert isinstance(parsed, deadletter.DeadLetter)
    return parsed


def test_a_dead_letter_reads_back_as_the_worker_wrote_it():
    d = letter(7)
    assert (d.partition, d.offset, d.source_topic, d.source_partition, d.source_offset) == (
        0, 7, "cspa.contacts.v1", 3, 41)
    assert (d.key, d.value, d.timestamp_ms) == (KEY, VALUE, 1_568_622_780_000.0)


def test_a_marker_names_the_dead_letter_it_replayed():
    assert deadletter.parse(0, 9, deadletter.marker(letter(7))) == (0, 7)
    assert deadletter.parse(0, 9, b"not json") is None


def test_filters_and_pending_leave_out_what_was_replayed():
    letters = [letter(0), letter(1, "unknown_category"), letter(2)]
    contents = deadletter.Contents(letters, {(0, 2)})
    assert [d.offset for d in contents.pending(deadletter.Filter("unexpected_field"))] == [0]
    assert [d.offset for d in contents.pending(deadletter.Filter())] == [0, 1]
    late = deadletter.Filter(since=letters[0].rejected_at + 3600)
    assert contents.pending(late) == []
    assert deadletter.parse_since("2019-09-16") == 1_568_592_000.0  # naive: UTC midnight


def test_the_listing_shows_where_and_why_never_the_key_or_value():
    contents = deadletter.Contents([letter(0), letter(1)], {(0, 1)})
    text = "\n".join(deadletter.listing(contents, deadletter.Filter()))
    assert KEY.decode() not in text and "a name" not in text and "secret_field" not in text
    rows = [line.split("\t") for line in text.splitlines()[1:]]
    assert [(r[3], r[4], r[5], r[6], r[7]) for r in rows] == [
        ("cspa.contacts.v1", "3", "41", "unexpected_field", "no"),
        ("cspa.contacts.v1", "3", "41", "unexpected_field", "yes")]
    shown = deadletter.showing(letter(0))
    assert KEY.decode() in shown and orjson.loads(VALUE)["secret_field"] in shown


def test_a_replay_resends_event_letters_only():
    # A hop the worker judged too late for its child's window (``child_window_passed``)
    # came from its own repartition topic: sent again it would only be rejected again.
    hop = deadletter.parse(0, 5, deadletter_message(
        "cspa-children-repartition", 2, 9, None, KEY, b"{}",
        Rejection("child_window_passed", "received 400 days before the child's latest")))
    assert isinstance(hop, deadletter.DeadLetter)
    empty = dataclasses.replace(letter(6), value=None)
    result = deadletter.ReplayResult()
    sent = deadletter.sendable([letter(4), hop, empty, letter(7)], result)
    assert [d.offset for d in sent] == [4, 7]
    assert (result.skipped_internal, result.skipped_empty, result.sent) == (1, 1, 0)
