"""A copy-on-write snapshot of the worker's memory, written by a forked child process.

A checkpoint must be a consistent picture of the state: taken between batches, every
changelog write landed (``stream.worker.checkpoint``). Serialising that state where it
lives holds the event loop for as long as the pickling takes (3.5-6 s with a national
year, most of it the derived state, a web of small objects that cannot be copied
cheaply). ``os.fork`` gives the child the whole address space as it stands, shared
page by page with the parent until either side writes a page: the child pickles and
writes that frozen picture while the parent's loop goes on at once. The loop holds
only for the fork itself, which copies page tables, not pages (milliseconds per GB).

The child does nothing but run the write it was given and report, through a pipe,
``ok <result>`` or ``error <exception type>``; then ``os._exit`` (no atexit handler, no
buffer of the parent's flushed twice, never a return into the parent's code).
It takes no lock the parent's threads might have held at the fork, logs nothing,
keeps only the standard streams and its pipe open, runs without the cyclic collector
(a full collection would touch, and so copy, every page of the state), and is killed
with its parent (``PR_SET_PDEATHSIG``, Linux): an orphan must not hold the data
directory's files or the web port, nor finish a checkpoint a new worker has moved past.
Short of memory, the kernel kills the child first (``oom_score_adj`` 1000).

CPU: the child runs at the lowest priority (nice 19). Its pickling takes a core for
5-20 s with a national year, and on a host with two cores (the bench's; a small
council VM) the loop's thread otherwise waited for a CPU behind it: the national run
of step 59 logged a loop stall of 97 ms in a checkpoint, in which the loop's thread ran
16 ms and waited 120 ms for a CPU. Niced, the child takes only what the worker leaves
idle; a checkpoint may take longer under load, which costs a longer replay after a
crash, never a figure (BENCHMARKS.md, step 60).

Memory: the pages the child touches are copied, and pickling touches the reference
count of every object it writes, so the child comes to hold most of the state's
pages as its own while it runs (about the size of the state, besides the parent).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass

#: prctl(2) option: the signal the kernel sends a process when its parent exits
_PR_SET_PDEATHSIG = 1
#: the child's niceness: the lowest priority there is, so the worker's loop runs first
_NICEST = 19
#: signals the parent may handle itself (asyncio, Faust): the child takes the defaults
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


class SnapshotFailed(RuntimeError):
    """The child did not complete its write; the message names why (no data)."""


@dataclass
class Snapshot:
    """A child process writing a snapshot; ``wait`` (blocking: call it in a thread)."""

    pid: int
    reader: int  # the pipe the child reports on

    def wait(self) -> str:
        """The child's result (what its write returned, as text) once it has exited.

        Raises SnapshotFailed if the write raised, or the child died (a signal).
        """
        with os.fdopen(self.reader, "rb") as pipe:
            report = pipe.read().decode("ascii", "replace")
        _, status = os.waitpid(self.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        verdict, _, detail = report.partition(" ")
        if code == 0 and verdict == "ok":
            return detail
        if verdict == "error":
            raise SnapshotFailed(f"snapshot write failed error={detail}")
        raise SnapshotFailed(f"snapshot writer exited code={code}")


def start(write: Callable[[], object]) -> Snapshot:
    """Fork a child that runs ``write`` on the memory as it is now; returns at once.

    Call it with the state consistent and no await in between: the child sees exactly
    what the parent held at this call, whatever the parent does afterwards.
    """
    reader, writer = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        _run(write, reader, writer, parent)
    os.close(writer)
    return Snapshot(pid, reader)


def _run(write: Callable[[], object], reader: int, writer: int, parent: int) -> None:
    report, code = b"error Exited", 1
    try:
        gc.disable()
        _detach(reader, writer, parent)
        report, code = f"ok {write()}".encode("ascii"), 0
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, by type only
        report = f"error {type(exc).__name__}".encode("ascii")
    finally:
        with contextlib.suppress(OSError):
            os.write(writer, report)
        os._exit(code)


def _detach(reader: int, writer: int, parent: int) -> None:
    """Leave the parent's signal handling, files and sockets; die with the parent."""
    for sig in _SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    with contextlib.suppress(ValueError):
        signal.set_wakeup_fd(-1)  # asyncio's wake-up pipe is the parent's
    os.close(reader)
    os.closerange(3, writer)  # the parent's sockets, its lock file, its loop's epoll
    os.closerange(writer + 1, os.sysconf("SC_OPEN_MAX"))
    if sys.platform == "linux":
        # Out of memory (the child's copied pages count against the worker's limit),
        # the kernel kills the child rather than the worker: a checkpoint lost, no more.
        with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.nice(_NICEST)  # the parent's loop first
    if os.getppid() != parent:  # the parent died before the prctl above
        raise SnapshotFailed("parent gone")
