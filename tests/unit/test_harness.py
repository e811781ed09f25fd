"""The test harness's own waits: each has a deadline, says what it waited for, and a
worker that dies fails it at once (tests/integration/harness.py, tests/faults/conftest.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from tests.faults.conftest import commit_backlog
from tests.integration.harness import WorkerProcess, wait_for

TP = TopicPartition("cspa.contacts.v1", 3)


def _lag(*answers: object):
    """A stand-in for ``behind``: each call gives the next answer (raised if an exception)."""
    left = list(answers)

    def lag(bootstrap: str, **kw: object) -> dict[TopicPartition, int]:
        answer = left.pop(0) if len(left) > 1 else left[0]
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, dict)
        return answer
    return lag


def test_a_backlog_never_read_fails_rather_than_reads_as_none():
    with pytest.raises(AssertionError, match="never read.*broker busy"):
        commit_backlog("127.0.0.1:1", 0, lag=_lag(RuntimeError("broker busy")))


def test_a_backlog_read_after_a_failed_try_is_reported():
    assert commit_backlog("127.0.0.1:1", 1.5, lag=_lag(OSError("busy"), {TP: 4})) == {
        "cspa.contacts.v1[3]": 4}
    assert commit_backlog("127.0.0.1:1", 5, lag=_lag(OSError("busy"), {})) == {}


def test_the_last_backlog_read_stands_when_a_later_try_fails():
    assert commit_backlog("127.0.0.1:1", 1.5, lag=_lag({TP: 2}, OSError("busy"))) == {
        "cspa.contacts.v1[3]": 2}


def _dying_worker(tmp_path: Path) -> WorkerProcess:
    """A 'worker' whose process writes a last word to its log and exits at once."""
    worker = WorkerProcess("127.0.0.1:1", tmp_path / "w")
    with worker.log_path.open("ab") as log:
        worker.proc = subprocess.Popen([sys.executable, "-c",
                                        "print('settings invalid: the last word'); exit(3)"],
                                       stdout=log, stderr=subprocess.STDOUT)
    worker.proc.wait(30)
    return worker


def test_a_wait_on_a_worker_that_died_fails_at_once_with_its_log_tail(tmp_path):
    worker = _dying_worker(tmp_path)
    started = time.monotonic()
    with pytest.raises(AssertionError, match="(?s)exited with 3.*the last word"):
        wait_for(lambda: worker.get_json("/cells"), 60, "figures")
    assert time.monotonic() - started < 10  # not the 60 s deadline


def test_a_worker_stopped_by_the_test_is_not_taken_for_dead(tmp_path):
    worker = _dying_worker(tmp_path)
    worker.stop()
    with pytest.raises(OSError):  # refused: nothing listens (what a poll retries)
        worker.get("/health")


def test_a_wait_says_what_it_waited_for_at_its_deadline():
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"after 0.3s waiting for the thing \(last: 0\)"):
        wait_for(lambda: 0, 0.3, "the thing", interval=0.05)
    assert time.monotonic() - started < 5


def test_a_wait_retries_a_server_that_is_not_up_rather_than_returning_the_error():
    def refused() -> bool:
        raise ConnectionRefusedError(111, "Connection refused")

    with pytest.raises(AssertionError, match="waiting for the server.*Connection refused"):
        wait_for(refused, 0.3, "the server", interval=0.05)
