"""The batch path that replaces Faust's per-message delivery (stream/batches.py)."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import pytest

from stream import batches

ROOT = Path(__file__).resolve().parents[2]


def _records(*offsets):
    return [SimpleNamespace(offset=o) for o in offsets]


def _offsets(records):
    return [r.offset for r in records]


def test_written_against_the_installed_and_pinned_faust():
    # Moving the pin means reviewing stream/batches.py against the new consumer first.
    assert version("faust-streaming") == batches.FAUST_VERSION
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"faust-streaming=={batches.FAUST_VERSION}" in deps


def test_the_faust_internals_it_replaces_are_still_there():
    from faust.transport.consumer import Consumer

    for name in ("_drain_messages", "_wait_next_records", "perform_seek", "_commit_offsets",
                 "_to_message", "wait_first"):
        assert callable(getattr(Consumer, name)), name


@pytest.mark.asyncio
async def test_the_fetch_wait_can_still_be_set_before_the_consumer_starts():
    from aiokafka import AIOKafkaConsumer
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    assert callable(AIOKafkaConsumerThread._create_worker_consumer)
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", fetch_max_wait_ms=1500)
    assert consumer._fetch_max_wait_ms == 1500  # the attribute start() hands the fetcher


def test_a_batch_that_continues_the_cursor_is_delivered_whole():
    batch, refetch = batches.follow(10, _records(10, 11, 12), moved=False)
    assert _offsets(batch) == [10, 11, 12] and not refetch


def test_records_already_delivered_are_dropped():
    batch, refetch = batches.follow(11, _records(9, 10, 11, 12), moved=True)
    assert _offsets(batch) == [11, 12] and not refetch


def test_a_gap_without_a_seek_is_transaction_markers_and_is_delivered():
    batch, refetch = batches.follow(10, _records(12, 13), moved=False)
    assert _offsets(batch) == [12, 13] and not refetch


def test_a_gap_after_a_seek_raced_the_fetch_is_read_again():
    batch, refetch = batches.follow(10, _records(40, 41), moved=True)
    assert batch == [] and refetch


def test_without_a_cursor_the_batch_sets_it():
    batch, refetch = batches.follow(None, _records(500, 501), moved=True)
    assert _offsets(batch) == [500, 501] and not refetch


def test_a_batch_wholly_below_the_cursor_delivers_nothing():
    batch, refetch = batches.follow(50, _records(10, 11), moved=True)
    assert batch == [] and not refetch
