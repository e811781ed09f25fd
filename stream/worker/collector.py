"""The worker's policy for Python's cyclic garbage collector.

The worker's state is millions of small, long-lived containers (records, cells,
open items) that are freed by reference counting, not by the cyclic collector.
With CPython's default thresholds (700, 10, 10) the collector runs a young
collection every 700 container allocations, promotes the survivors into an old
generation that keeps growing with the state, and rescans all of it every time
that generation grows by a quarter. During a backlog replay the collector had 7 %
of the worker's samples (py-spy, native), and this policy took the replay from
about 22,000 to about 26,700 events/s (BENCHMARKS.md, step 11).

The policy: collect once, freeze what is alive after start-up (modules, classes,
the app; they live as long as the process, so scanning them again finds nothing)
and again after each recovery (the state it loaded), and keep the young and middle
generations small while the full collection, which would rescan the whole unfrozen
state, practically never runs. Every collection is then a pause of milliseconds:
while 1,000,000 contacts were folded, the longest young collection took 0.6 ms and
the longest middle one 1.9 ms, where step 11's (50,000, 20, 100) paused up to 106 ms
for a young collection and left a middle one of 250 ms due (BENCHMARKS.md, step 46).
Cycles are still collected: only their detection is later.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import time
from collections.abc import Callable

#: (young allocations net of frees before a young collection, young collections
#: before a middle one, middle collections before a full one may run). CPython's
#: default is (700, 10, 10); a full collection also waits until the old generation has
#: grown by a quarter, which CPython checks itself. A middle collection scans at most
#: the survivors of 11 young ones (22,000 containers); a full one waits for 1,000
#: middle ones (22 million containers kept: more than a national year's 2.3 million).
THRESHOLDS = (2_000, 10, 1_000)


def tune() -> None:
    """Apply the policy; call once, after the app is built and before it consumes.

    Collects first, so no garbage cycle is frozen (a frozen cycle is never freed).
    """
    settle()
    gc.set_threshold(*THRESHOLDS)


def settle() -> float:
    """Collect once, then freeze everything alive; the seconds it took. After start-up,
    and after each recovery's bulk load (``Worker.warm``, before ready).

    A recovery leaves the state's containers (cells, open items; millions with a
    national year) in the collector's older generations, where the next middle or full
    collection scans every one of them on the event loop: a full collection took 0.34 s
    with 1,000,000 contacts folded (767,000 containers; BENCHMARKS.md, step 46). Frozen,
    no later collection scans them; reference counting still frees them as they go. The
    collection first frees every garbage cycle, so none is frozen for good: only a cycle
    formed later among frozen objects would be.
    """
    started = time.monotonic()
    gc.collect()
    gc.freeze()
    return time.monotonic() - started


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to give back this way
        return None
    return trim


_TRIM = _malloc_trim()


def give_back() -> float:
    """Hand the C allocator's free pages back to the kernel; the seconds it took.

    After the bulk work of a start (a checkpoint read, the first merge of every cell)
    glibc keeps the pages of what was freed on the way (tables outgrown, arrays
    replaced) mapped: resident, copied by every checkpoint's fork and counted in the
    worker's RSS, though no object lives there. ``malloc_trim(0)`` releases them.
    A no-op where the C library is not glibc.
    """
    started = time.monotonic()
    if _TRIM is not None:
        _TRIM(0)
    return time.monotonic() - started
