"""Huge pages for the worker's heap, so that a checkpoint's fork is short.

A checkpoint forks the worker (``stream.worker.snapshot``), and the fork holds the event
loop while the kernel copies the parent's page tables: one entry per 4 KiB page, about
400,000 of them with a national year in state (1.6 GiB), which took 37-65 ms
(BENCHMARKS.md, step 46). Mapped as 2 MiB pages, the same heap needs one entry per
2 MiB: a probe holding 1.6 GiB of small Python objects and arrays forked in 36-43 ms
with 4 KiB pages and in 7 ms once they were collapsed into 2 MiB ones, and a national
year's checkpoints forked in 2-15 ms (BENCHMARKS.md, step 47).

Python's allocator takes its memory in 1 MiB arenas and glibc in mappings of its own:
neither asks for huge pages, and with the kernel's usual setting
(``transparent_hugepage/enabled`` = ``madvise``) none are given. ``collapse`` marks the
heap's resident, private, writable mappings ``MADV_HUGEPAGE`` (so the kernel's
background ``khugepaged`` keeps them huge too) and collapses them at once
(``MADV_COLLAPSE``, Linux 6.1 and later; it does not depend on that setting, only
memory marked not to be huge refuses it). Each recovery's warm-up runs it, where the
loop is held anyway, and each checkpoint runs it first, in a thread: the system call
holds no interpreter lock, and the loop goes on.

What it costs:
- memory: a 2 MiB page is resident whole, so the holes of a mapping at least half
  resident are filled (a few per cent of the heap); mostly empty mappings, such as
  threads' stacks, are left alone;
- a write to a page shared with a checkpoint's child splits that 2 MiB mapping back
  into 4 KiB ones in the writer (the kernel then copies 4 KiB, as before); the next
  checkpoint's ``collapse`` joins them again, on the second core.

Where the kernel refuses (older than 6.1, or huge pages disabled, or a page in use
elsewhere), nothing changes: the fork copies those 4 KiB entries as before; the 2 MiB
pages refused are counted in the checkpoint's log line (``huge_refused``).
"""

from __future__ import annotations

import ctypes
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

#: the size of a huge page (x86-64, arm64 with 4 KiB base pages), bytes
HUGE = 2 << 20
#: madvise(2) advice numbers (Linux, all architectures)
MADV_HUGEPAGE = 14
MADV_COLLAPSE = 25
#: a mapping less resident than this share keeps its small pages (collapsing it would
#: make its holes resident)
RESIDENT_SHARE = 0.5

_HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ (\d+)[ \t]*(\S*)$", re.MULTILINE)
_RSS = re.compile(r"^Rss:\s+(\d+) kB", re.MULTILINE)
_HUGE = re.compile(r"^AnonHugePages:\s+(\d+) kB", re.MULTILINE)


class Span(NamedTuple):
    """A mapping's whole 2 MiB pages, [low, high), and how much of it is huge already."""

    low: int
    high: int
    huge: int  # bytes of the mapping in 2 MiB pages (smaps' AnonHugePages)


@dataclass(frozen=True)
class Collapse:
    """What one ``collapse`` did: the bytes of heap it covers (huge already or made so),
    seconds, and the 2 MiB pages the kernel left small (EINVAL: a page in use elsewhere,
    as by a child still exiting, or not present; EAGAIN: no huge page free)."""

    bytes: int
    refused: int
    seconds: float


#: what a worker that does not ask for huge pages logs
NOTHING = Collapse(0, 0, 0.0)


def spans(smaps: str) -> list[Span]:
    """The 2 MiB-aligned spans ``collapse`` covers, from ``/proc/<pid>/smaps``' text.

    Only private, writable, anonymous mappings (no file; the ``[heap]`` of ``brk``
    counts) at least ``RESIDENT_SHARE`` resident, and in each only the whole 2 MiB
    pages it covers.
    """
    found = []
    headers = list(_HEADER.finditer(smaps))
    for i, header in enumerate(headers):
        start, end = int(header[1], 16), int(header[2], 16)
        perms, inode, name = header[3], header[4], header[5]
        if perms[:2] != "rw" or perms[3] != "p" or inode != "0" or name not in ("", "[heap]"):
            continue
        body = smaps[header.end():headers[i + 1].start() if i + 1 < len(headers) else None]
        rss = _RSS.search(body)
        if rss is None or int(rss[1]) * 1024 < RESIDENT_SHARE * (end - start):
            continue
        low, high = -(-start // HUGE) * HUGE, end // HUGE * HUGE
        if high > low:
            huge = _HUGE.search(body)
            found.append(Span(low, high, int(huge[1]) * 1024 if huge else 0))
    return found


def _madvise() -> Callable[[int, int, int], int] | None:
    if sys.platform != "linux":
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # its calls release the interpreter lock
    call = libc.madvise
    call.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    call.restype = ctypes.c_int
    advise: Callable[[int, int, int], int] = call
    return advise


_MADVISE = _madvise()


def collapse(smaps: Path = Path("/proc/self/smaps")) -> Collapse:
    """Ask for the process's heap in 2 MiB pages now, and from now on (see the module).

    Blocking for up to seconds (about 2.5 s per GiB not yet huge, milliseconds for a
    heap huge already). Each 2 MiB page is its own call: the kernel holds the
    process's memory map while it copies one, and a collapse of a whole mapping in one
    call held a serving event loop up to 370 ms, one page at a time up to 66 ms, in a
    thread beside it (BENCHMARKS.md, step 47). Mappings wholly huge are skipped.
    Never raises for a refusal (a kernel without it): it is counted.
    """
    started = time.monotonic()
    if _MADVISE is None:
        return NOTHING
    covered = refused = 0
    for low, high, huge in spans(smaps.read_text()):
        covered += high - low
        if huge >= high - low:
            continue
        # a mapping unmapped meanwhile (by another thread) refuses: nothing is lost
        _MADVISE(low, high - low, MADV_HUGEPAGE)
        for page in range(low, high, HUGE):
            refused += _MADVISE(page, HUGE, MADV_COLLAPSE) != 0
    return Collapse(covered, refused, time.monotonic() - started)
