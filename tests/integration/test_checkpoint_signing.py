"""A checkpoint not signed with the worker's key is refused, on a real broker and worker.

The checkpoint is a pickle (reading one can run code), signed with HMAC-SHA-256 under
the key of ``CSPA_CHECKPOINT_KEY_FILE``. Each way of getting it wrong (a byte flipped,
the signature stripped as in the previous release's files, another key) is refused in
one log line naming no case, and the restarted worker serves exactly what it served
before, rebuilt from the changelogs. A last restart with the good file loads it: the
refusals were the signature's doing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from stream.worker import localstate
from tests.groundtruth import generate
from tests.integration.harness import wait_for
from tests.integration.test_fold_inputs import (
    assert_same,
    feed_and_checkpoint,
    log_since,
    served,
    start,
)

pytestmark = pytest.mark.integration

REFUSED = ("checkpoint refused: unsigned, altered or signed with another key; the state "
           "is rebuilt from the changelogs")


def flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def unsign(path: Path) -> None:
    path.write_bytes(path.read_bytes()[len(localstate.MAGIC) + 32:])  # a bare pickle


def test_a_tampered_checkpoint_is_refused_and_the_worker_rebuilds(broker, workers, tmp_path):
    ds = generate(seed=26, start=date(2019, 7, 22), days=30, contacts=80, calls=60,
                  enquiries=10, audits=5, bad=0)
    clock = tmp_path / "clock"  # open work's ages compared across restarts: a fixed now
    clock.write_text("2019-09-10T12:00:00+01:00\n")
    worker = start(broker, workers, tmp_path / "w1", {"CSPA_CHECKPOINT_SECONDS": "0.5",
                                                      "CSPA_CLOCK_FILE": str(clock)})
    feed_and_checkpoint(broker, worker, ds)
    before = served(worker)
    worker.stop()
    data = tmp_path / "w1" / "data"
    checkpoint = data / "checkpoint-cspa.pickle"
    assert checkpoint.read_bytes().startswith(localstate.MAGIC)
    assert data.stat().st_mode & 0o777 == 0o700 and checkpoint.stat().st_mode & 0o777 == 0o600

    other = localstate.new_key(tmp_path / "other.key")

    def other_key(path: Path) -> None:
        worker.env["CSPA_CHECKPOINT_KEY_FILE"] = str(other)

    tampers: list[Callable[[Path], None]] = [flip, unsign, other_key]
    for tamper in tampers:
        tamper(checkpoint)
        mark = len(worker.log_path.read_text(errors="replace"))
        worker.start()
        log = log_since(worker, mark)
        refusals = [line for line in log.splitlines() if "checkpoint refused" in line]
        assert len(refusals) == 1 and refusals[0].endswith(REFUSED), (tamper, refusals)
        assert "checkpoint loaded" not in log and "checkpoint records loaded" not in log
        assert_same(served(worker), before)
        # a new checkpoint, signed, before the next round tampers with it
        wait_for(lambda: "checkpoint written" in log_since(worker, mark), 60, "a checkpoint")
        worker.stop()

    mark = len(worker.log_path.read_text(errors="replace"))
    worker.start()
    log = log_since(worker, mark)
    assert "checkpoint loaded" in log and "checkpoint refused" not in log
    assert_same(served(worker), before)
