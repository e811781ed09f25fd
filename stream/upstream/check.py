"""``python -m stream check FILE|-``: the worker's verdict on messages, offline.

For integrators without our Python API: each JSON Lines line is one Kafka message,
``{"topic": ..., "key": ..., "value": ...}`` (or ``"family"`` instead of ``"topic"``;
optionally ``"partition"``, the partition the producer would send it to). The value
is the event as a JSON object, or the message value as a string (its UTF-8 bytes
exactly). Each goes through the worker's own ``Decoder.decode`` (the schema, the
time bounds, the size limit, the Kafka key equal to the case key) and, with a
partition, the contract's partitioner. Nothing is sent.

Each line prints ``line N: ok`` or ``line N: REASON: DETAIL``, the reason and
detail the worker would dead-letter the message with; never a key or a value.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from stream.contract.decoder import Decoder, Limits, Rejection
from stream.contract.partitioner import partition_of, wrong_partition_detail
from stream.contract.taxonomy import load_taxonomy
from stream.contract.topics import TopicSpec, event_families, load_topics
from stream.settings import Settings


class BadLine(ValueError):
    """A line that is not a message (its problem names fields, never values)."""


def add_command(subparsers: Any) -> None:
    """Add ``check`` to an argparse subparsers object."""
    check = subparsers.add_parser(
        "check", help="give JSON Lines messages the worker's verdict, sending nothing")
    check.add_argument("file", help="JSON Lines file, or - for stdin")
    check.set_defaults(fn=run_check)


def run_check(args: argparse.Namespace, settings: Settings) -> int:
    """Print one verdict per line; 0 if all are ok, 1 if any is not, 2 if unreadable."""
    try:
        lines = (sys.stdin.buffer.read() if args.file == "-"
                 else Path(args.file).read_bytes()).splitlines()
    except OSError as exc:
        print(f"check: {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    checker = Checker(settings)
    failed = total = 0
    for number, verdict in checker.verdicts(lines):
        total += 1
        failed += verdict != "ok"
        print(f"line {number}: {verdict}")
    print(f"check: {total} messages, {total - failed} ok, {failed} refused", file=sys.stderr)
    return 1 if failed else 0


class Checker:
    """The worker's decoders, one per family, with the configured limits."""

    def __init__(self, settings: Settings) -> None:
        taxonomy = load_taxonomy(settings.taxonomy_path)
        limits = Limits(settings.max_payload_bytes, settings.max_future_skew_seconds)
        self.families = event_families(load_topics())
        self.by_topic = {spec.name: spec for spec in self.families.values()}
        self.decoders = {f: Decoder(f, taxonomy, limits) for f in self.families}

    def verdicts(self, lines: Iterable[bytes]) -> Iterator[tuple[int, str]]:
        """(line number, ``ok`` or ``reason: detail``) for each non-blank line."""
        now = time.time()
        for number, line in enumerate(lines, 1):
            if line.strip():
                yield number, self.verdict(line, now)

    def verdict(self, line: bytes, now: float) -> str:
        """What the worker would make of the message one line describes."""
        try:
            spec, key, value, partition = self._message(line)
        except BadLine as exc:
            return f"bad_line: {exc}"
        result = self.check(spec, key, value, partition, now)
        return "ok" if result is None else f"{result.reason}: {result.detail}"

    def check(self, spec: TopicSpec, key: bytes | None, value: bytes, partition: int | None,
              now: float) -> Rejection | None:
        """The rejection the worker would give one message, or None (accepted)."""
        if partition is not None and key is not None:
            expected = partition_of(key, spec.partitions)
            if expected != partition:
                return Rejection("wrong_partition", wrong_partition_detail(expected, partition))
        result = self.decoders[spec.family].decode(key, value, now)
        return result if isinstance(result, Rejection) else None

    def _message(self, line: bytes) -> tuple[TopicSpec, bytes | None, bytes, int | None]:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise BadLine("not valid JSON") from None
        if not isinstance(obj, dict):
            raise BadLine("not a JSON object")
        spec = self._spec(obj)
        key = obj.get("key")
        if key is not None and not isinstance(key, str):
            raise BadLine("key must be a string or null")
        if "value" not in obj:
            raise BadLine("no value")
        value = obj["value"]
        raw = value.encode() if isinstance(value, str) else orjson.dumps(value)
        partition = obj.get("partition")
        if partition is not None and (type(partition) is not int
                                      or not 0 <= partition < spec.partitions):
            raise BadLine(f"partition must be an integer from 0 to {spec.partitions - 1}")
        return spec, None if key is None else key.encode(), raw, partition

    def _spec(self, obj: Mapping[str, Any]) -> TopicSpec:
        topic, family = obj.get("topic"), obj.get("family")
        if isinstance(topic, str) and topic in self.by_topic:
            return self.by_topic[topic]
        if isinstance(family, str) and family in self.families:
            return self.families[family]
        topics = ", ".join(sorted(self.by_topic))
        raise BadLine(f"topic (one of {topics}) or family "
                      f"(one of {', '.join(sorted(self.families))}) missing or unknown")
