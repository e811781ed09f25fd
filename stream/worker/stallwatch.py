"""Where the event loop was while it stalled: code locations for on-call.

``cspa_event_loop_lag_seconds`` says the loop ran late; this says where. A daemon thread
wakes every ``INTERVAL_SECONDS`` and, while the loop's timer (``LoopLag``) is more than
``THRESHOLD_SECONDS`` overdue, records the loop thread's innermost frames. When the
timer finally runs, the stall's most frequent record is its ``where``.

The log line, ``event loop stalled stalls=... longest_ms=... samples=... ran_ms=...
cpu_wait_ms=... faults=... where=...``,
comes at the first stall, then at most once per ``report_seconds`` (60 by default,
setting ``CSPA_STALL_LOG_SECONDS``; a backlog replay folds batches of 50-600 ms back to
back: a line each would flood the log): ``stalls``
counts those since the last line, and the rest describe the longest of them. A stall
of a second or more (what ``WorkerLoopStalled`` counts) is logged at once.

``ran_ms`` and ``cpu_wait_ms`` split the longest stall's time, from the timer's sleep
to its late wake (``looplag.PERIOD_SECONDS`` plus the lag), by the loop thread's own
scheduler counters (``/proc/thread-self/schedstat``, read once a tick): the milliseconds
it ran on a CPU (its Python, and the kernel's work for it, page faults included) and
those it was ready but waited for a CPU. The rest it was blocked: idle in ``select``, or
waiting for the interpreter lock. A stall mostly ``cpu_wait_ms`` is the machine's, not
the worker's code: ``where`` is then only where the thread happened to be. ``-`` where
the counters cannot be read.

``faults`` counts the minor page faults the loop thread took in the same window
(``/proc/thread-self/stat``): pages the kernel had to map or copy for it, such as the
first write to each page a checkpoint's forked child still shares. Tens to a few hundred
are a batch's usual allocation (a median of 32 per logged stall in the national bench);
many thousands in a stall that mostly ran is memory work, not Python (each costs a few
microseconds, more with a copy).

Reading ``where``:
- a worker function (``stream/worker/...``): that call held the loop;
- the loop idle in ``selectors.py`` (``select``): nothing on the loop held it; the
  process was starved (another thread holding the interpreter lock, or no free CPU:
  the broker, a checkpoint's child pickling, a co-tenant);
- ``-`` (no sample): the stall was inside one C call that kept the interpreter lock
  (a fork, a full garbage collection), so the watcher could not look until it ended.

Privacy: only file paths relative to their package root, line numbers and function
names, never a value (a frame's locals are not read).

Cost: one wake per interval, a few microseconds of the interpreter lock each; frames
are only walked while the loop is overdue.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import Counter
from types import FrameType
from typing import NamedTuple

#: how far past its due time the loop's timer must be before frames are sampled, and a
#: stall is logged (seconds): the issue's bound for a stall
THRESHOLD_SECONDS = 0.05
#: how often the watcher looks (seconds): a stall of the threshold gets ~5 samples
INTERVAL_SECONDS = 0.01
#: at most one log line per this many seconds (by default), but for a stall of
#: ``ALWAYS_SECONDS`` or more
REPORT_SECONDS = 60.0
ALWAYS_SECONDS = 1.0
#: frames kept per sample, innermost first
DEPTH = 4
#: logged as ``where`` when no sample was taken
UNSEEN = "-"

log = logging.getLogger("cspa.worker")
#: the calling thread's scheduler counters: ns on a CPU, ns waiting for one, slices
_SCHEDSTAT = "/proc/thread-self/schedstat"
#: the calling thread's status line: its minor page faults are the 8th field after the
#: command name's closing parenthesis (``proc(5)``: field 10, ``minflt``)
_STAT = "/proc/thread-self/stat"
_MINFLT = 7


class _Stall(NamedTuple):
    lag: float  # seconds
    where: str
    samples: int
    ran: float | None  # seconds the loop thread ran in the stall's window (None: unknown)
    waited: float | None  # seconds it was ready and waited for a CPU
    faults: int | None  # minor page faults it took


class _Counts(NamedTuple):
    """The loop thread's counters at one instant (None: not readable here)."""

    ran: float | None  # seconds on a CPU so far
    waited: float | None  # seconds ready and waiting for one so far
    faults: int | None  # minor page faults so far


_NONE = _Stall(0.0, UNSEEN, 0, None, None, None)


def _ms(seconds: float | None) -> str:
    return UNSEEN if seconds is None else f"{seconds * 1e3:.0f}"


def _count(n: int | None) -> str:
    return UNSEEN if n is None else str(n)


def _spent(before: _Counts | None, after: _Counts) -> tuple[float | None, float | None,
                                                             int | None]:
    """(ran, waited, faults) between two readings, each None where either lacks it."""
    if before is None:
        return None, None, None
    b, a = before, after
    return (None if b.ran is None or a.ran is None else a.ran - b.ran,
            None if b.waited is None or a.waited is None else a.waited - b.waited,
            None if b.faults is None or a.faults is None else a.faults - b.faults)


#: path prefixes dropped up to their end: installed packages, the standard library
_LIBRARIES = ("/site-packages/", "/dist-packages/", "/lib/python3")
#: the project's own packages, kept from their name on
_PACKAGES = ("/stream/", "/bench/", "/tests/")


def location(frame: FrameType) -> str:
    """``path:line(function)``, the path from its package root (no home, no venv)."""
    return f"{_short(frame.f_code.co_filename)}:{frame.f_lineno}({frame.f_code.co_name})"


def _short(path: str) -> str:
    for root in _PACKAGES:
        if root in path:
            return path[path.rindex(root) + 1:]
    for root in _LIBRARIES:
        if root in path:
            rest = path[path.rindex(root) + len(root):]
            return rest.split("/", 1)[1] if root == "/lib/python3" and "/" in rest else rest
    return path.rsplit("/", 1)[-1]


def stack(frame: FrameType | None, depth: int = DEPTH) -> str:
    """The innermost ``depth`` frames from ``frame`` outwards, ``" < "``-joined."""
    found: list[str] = []
    while frame is not None and len(found) < depth:
        found.append(location(frame))
        frame = frame.f_back
    return " < ".join(found) or UNSEEN


class StallWatch:
    """Samples the loop thread's stack while its timer is overdue."""

    def __init__(self, threshold: float = THRESHOLD_SECONDS,
                 interval: float = INTERVAL_SECONDS,
                 report_seconds: float = REPORT_SECONDS) -> None:
        self.threshold = threshold
        self.interval = interval
        self.report_seconds = report_seconds
        self._due = float("inf")  # monotonic time the loop's timer should next run
        self._thread_id: int | None = None
        self._samples: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._stalls = 0  # since the last log line
        self._longest = _NONE
        self._next_line = 0.0  # monotonic time a line may next be logged
        self._stat: int | None = None  # the loop thread's schedstat, opened on it
        self._proc_stat: int | None = None  # the loop thread's stat (its faults), opened on it
        self._counted: _Counts | None = None  # at the window's start

    def expect(self, due: float) -> None:
        """On the loop: its timer is due at monotonic ``due``; starts the watcher once."""
        self._due = due
        if self._thread_id is None:
            self._thread_id = threading.get_ident()
            self._stat, self._proc_stat = _open_stat(), _open_stat(_STAT)
            threading.Thread(target=self._watch, name="cspa-stall-watch",
                             daemon=True).start()
        if self._counted is None:  # else ``woke`` has just read them (one read a tick)
            self._counted = self._counters()

    def woke(self, lag: float, now: float) -> None:
        """On the loop: its timer woke ``lag`` seconds late, at monotonic ``now``."""
        where, samples = self.take()
        before, after = self._counted, self._counters()
        if lag > self.threshold:
            self._stalls += 1
            if lag > self._longest.lag:
                self._longest = _Stall(lag, where, samples, *_spent(before, after))
        if self._stalls and (now >= self._next_line or lag >= ALWAYS_SECONDS):
            s = self._longest
            log.warning("event loop stalled stalls=%d longest_ms=%.0f samples=%d ran_ms=%s "
                        "cpu_wait_ms=%s faults=%s where=%s", self._stalls, s.lag * 1e3,
                        s.samples, _ms(s.ran), _ms(s.waited), _count(s.faults), s.where)
            self._stalls, self._longest = 0, _NONE
            self._next_line = now + self.report_seconds
        self._counted = after  # the next window starts now (the timer sleeps again next)

    def _counters(self) -> _Counts:
        """The loop thread's counters so far (two ``pread`` calls: once a tick)."""
        ran = waited = None
        if self._stat is not None:
            try:
                run_ns, wait_ns, _ = os.pread(self._stat, 96, 0).split()
                ran, waited = int(run_ns) / 1e9, int(wait_ns) / 1e9
            except (OSError, ValueError):
                pass
        return _Counts(ran, waited, _minor_faults(self._proc_stat))

    def take(self) -> tuple[str, int]:
        """(most frequent sampled stack, samples) since the last take; clears them."""
        with self._lock:
            taken, self._samples = self._samples, Counter()
        if not taken:
            return UNSEEN, 0
        return taken.most_common(1)[0][0], sum(taken.values())

    def stop(self) -> None:
        """Ends the watcher thread (tests; the worker's is a daemon)."""
        self._stopped.set()
        for fd in (self._stat, self._proc_stat):
            if fd is not None:
                os.close(fd)
        self._stat = self._proc_stat = None

    def _watch(self) -> None:
        while not self._stopped.wait(self.interval):
            if time.monotonic() - self._due > self.threshold:
                self._sample()

    def _sample(self) -> None:
        frame = sys._current_frames().get(self._thread_id or 0)
        if frame is None:
            return
        where = stack(frame)
        with self._lock:
            self._samples[where] += 1


def _open_stat(path: str = _SCHEDSTAT) -> int | None:
    """One of the calling thread's ``/proc`` files, kept open (it names the thread that
    opened it); None where there is none (not Linux, or the kernel keeps no such
    counters)."""
    try:
        return os.open(path, os.O_RDONLY)
    except OSError:
        return None


def _minor_faults(fd: int | None) -> int | None:
    """The minor page faults so far of the thread whose ``stat`` ``fd`` is, or None."""
    if fd is None:
        return None
    try:
        line = os.pread(fd, 1024, 0)
        # after the command name, which may hold spaces and parentheses itself
        return int(line[line.rindex(b")") + 2:].split()[_MINFLT])
    except (OSError, ValueError, IndexError):
        return None
