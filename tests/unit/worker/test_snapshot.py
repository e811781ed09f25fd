"""The forked snapshot writer (stream.worker.snapshot): the child writes the memory as it
stood at the fork, whatever the parent does afterwards, and reports how its write went."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from stream.worker import snapshot


def _slow_dump(state: dict[str, list[int]], path: Path, hold: Path) -> int:
    """Wait until the parent has changed its state, then pickle ours (the child's)."""
    while not hold.exists():
        time.sleep(0.01)
    path.write_bytes(pickle.dumps(state))
    return len(state["values"])


def test_the_child_writes_the_state_as_it_was_at_the_fork(tmp_path):
    state = {"values": [1, 2, 3]}
    out, hold = tmp_path / "snap", tmp_path / "changed"
    child = snapshot.start(lambda: _slow_dump(state, out, hold))
    # The parent moves on at once: the state changes before the child writes anything.
    state["values"].append(4)
    state["values"][0] = 99
    hold.touch()
    assert child.wait() == "3"
    assert pickle.loads(out.read_bytes()) == {"values": [1, 2, 3]}
    assert state == {"values": [99, 2, 3, 4]}


def test_a_write_that_raises_is_reported_by_type_only(tmp_path):
    def fails() -> int:
        raise PermissionError(f"no access to {tmp_path}/case-12345")

    child = snapshot.start(fails)
    with pytest.raises(snapshot.SnapshotFailed) as caught:
        child.wait()
    assert str(caught.value) == "snapshot write failed error=PermissionError"


def test_a_child_killed_by_a_signal_is_a_failure():
    child = snapshot.start(lambda: os.kill(os.getpid(), signal.SIGKILL))
    with pytest.raises(snapshot.SnapshotFailed, match="exited code=-9"):
        child.wait()


def test_the_child_keeps_none_of_the_parents_files(tmp_path):
    # An open file of the parent (a socket, the data directory's lock) is closed in the
    # child: it could otherwise outlive the parent and hold a port or a lock.
    held = os.open(tmp_path / "lock", os.O_RDWR | os.O_CREAT)
    try:
        child = snapshot.start(lambda: sorted(int(fd) for fd in os.listdir("/proc/self/fd")))
        fds = [int(fd) for fd in child.wait().strip("[]").split(",")]
    finally:
        os.close(held)
    # the standard streams, the pipe to the parent, and the listing's own directory
    assert held not in fds and len([fd for fd in fds if fd > 2]) <= 2


def test_the_child_yields_the_cpu_to_the_worker():
    # The child's pickling takes a core for seconds; on a two-core host the loop's
    # thread must not wait behind it (the parent keeps its own priority).
    before = os.getpriority(os.PRIO_PROCESS, 0)
    child = snapshot.start(lambda: os.getpriority(os.PRIO_PROCESS, 0))
    assert child.wait() == "19"
    assert os.getpriority(os.PRIO_PROCESS, 0) == before < 19


@pytest.mark.skipif(sys.platform != "linux", reason="/proc/self/oom_score_adj is Linux's")
def test_out_of_memory_the_kernel_kills_the_child_first():
    child = snapshot.start(lambda: Path("/proc/self/oom_score_adj").read_text().strip())
    assert child.wait() == "1000"


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
def test_the_child_dies_with_its_parent(tmp_path):
    # A parent SIGKILLed mid-checkpoint must not leave a child finishing the file (a new
    # worker may be writing its own by then) or holding the parent's port and lock.
    pid_file, out = tmp_path / "child.pid", tmp_path / "snap"
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, time
        from pathlib import Path
        from stream.worker import snapshot
        def slow():
            Path({str(pid_file)!r}).write_text(str(os.getpid()))
            time.sleep(30)
            Path({str(out)!r}).write_text("written")
        snapshot.start(slow)
        time.sleep(60)
    """)])
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the child never started"
            time.sleep(0.05)
        child = int(pid_file.read_text())
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _alive(child):
            assert time.monotonic() < deadline, "the child outlived its parent"
            time.sleep(0.05)
    finally:
        parent.kill()
    assert not out.exists()


def _alive(pid: int) -> bool:
    """Running, not a zombie (the child is reparented to init, which reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
