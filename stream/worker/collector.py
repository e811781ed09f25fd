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
the app; they live as long as the process, so scanning them again finds nothing),
and collect young objects less often. Cycles are still collected: only their
detection is later, and the young generation holds at most ``THRESHOLDS[0]``
container objects before it is scanned.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import time
from collections.abc import Callable

#: (young allocations before a young collection, young collections before a
#: middle one, middle collections before a full one may run). CPython's default is
#: (700, 10, 10); a full collection also waits until the old generation has grown
#: by a quarter, which CPython checks itself.
THRESHOLDS = (50_000, 20, 100)


def tune() -> None:
    """Apply the policy; call once, after the app is built and before it consumes.

    Collects first, so no garbage cycle is frozen (a frozen cycle is never freed).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)


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
