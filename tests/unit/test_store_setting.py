"""CSPA_STORE: only the stores the exactness test runs are accepted (stream/settings.py)."""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from stream.settings import STORES, Settings
from tests.integration.harness import WorkerProcess


def test_the_stores_the_exactness_test_runs_are_accepted():
    from tests.integration.test_pipeline import STORE_MODES

    assert STORE_MODES == STORES
    for store in STORES:
        assert Settings(store=store).store == store


@pytest.mark.parametrize("store", ["rocksdb://", "rocksdb:///var/lib/cspa", "aerospike://",
                                   "memory", ""])
def test_any_other_store_is_refused_with_the_ones_there_are(store, monkeypatch):
    monkeypatch.setenv("CSPA_STORE", store)
    with pytest.raises(ValidationError, match="CSPA_STORE must be one of local://, memory://"):
        Settings()


def test_rocksdb_is_refused_saying_why():
    with pytest.raises(ValidationError, match="rocksdb:// is not supported: it needs rocksdict"):
        Settings(store="rocksdb://")


def test_a_worker_given_rocksdb_stops_at_once_and_its_test_says_why(tmp_path):
    # No broker needed: the settings are read before anything connects. The harness
    # fails the wait for the worker at once, with the log's tail, not after 90 s.
    worker = WorkerProcess("127.0.0.1:1", tmp_path / "w", env={"CSPA_STORE": "rocksdb://"})
    started = time.monotonic()
    with pytest.raises(AssertionError, match="(?s)worker exited with 1.*needs rocksdict"):
        worker.start()
    assert time.monotonic() - started < 60
