"""stream.worker.hugepages: which mappings are asked for in 2 MiB pages, the calls made,
and that this kernel then maps them so (smaps' AnonHugePages), copy-on-write intact."""

from __future__ import annotations

import ctypes
import mmap
import os
import re
from pathlib import Path

from stream.worker import hugepages
from stream.worker.hugepages import HUGE, spans

MiB = 1 << 20


def _mapping(start: int, end: int, perms: str = "rw-p", inode: int = 0, name: str = "",
             rss_kb: int | None = None, huge_kb: int = 0) -> str:
    rss = (end - start) // 1024 if rss_kb is None else rss_kb
    return (f"{start:x}-{end:x} {perms} 00000000 00:00 {inode}"
            + (f"                  {name}" if name else "          ")
            + f"\nSize:  {(end - start) // 1024} kB\nRss:  {rss} kB\nAnonymous:  {rss} kB\n"
            f"AnonHugePages:  {huge_kb} kB\nVmFlags: rd wr mr mw me ac\n")


def test_only_resident_private_writable_anonymous_memory_in_whole_2_mib_pages():
    base = 0x7F00_0000_0000
    smaps = "".join([
        _mapping(base + 4096, base + 3 * HUGE + 4096),  # whole pages: 1 and 2 only
        _mapping(base + 4 * HUGE, base + 6 * HUGE, name="[heap]"),
        _mapping(base + 8 * HUGE, base + 10 * HUGE, perms="r--p"),  # read-only
        _mapping(base + 10 * HUGE, base + 12 * HUGE, perms="rw-s"),  # shared
        _mapping(base + 12 * HUGE, base + 14 * HUGE, inode=1234, name="/usr/lib/x.so"),
        _mapping(base + 14 * HUGE, base + 16 * HUGE, name="[stack]"),
        _mapping(base + 16 * HUGE, base + 20 * HUGE, rss_kb=4096 - 4),  # under half resident
        _mapping(base + 20 * HUGE, base + 24 * HUGE, rss_kb=4096),  # exactly half
        _mapping(base + 24 * HUGE + 4096, base + 25 * HUGE),  # no whole page
    ])
    assert [(s.low, s.high) for s in spans(smaps)] == [
        (base + HUGE, base + 3 * HUGE), (base + 4 * HUGE, base + 6 * HUGE),
        (base + 20 * HUGE, base + 24 * HUGE)]


def test_each_2_mib_page_is_asked_for_on_its_own_and_whole_huge_mappings_are_skipped(
        tmp_path, monkeypatch):
    base = 0x7F00_0000_0000
    smaps = tmp_path / "smaps"
    smaps.write_text(_mapping(base, base + 3 * HUGE, huge_kb=HUGE // 1024)  # partly huge
                     + _mapping(base + 4 * HUGE, base + 6 * HUGE, huge_kb=2 * HUGE // 1024))
    calls: list[tuple[int, int, int]] = []

    def madvise(address: int, length: int, advice: int) -> int:
        calls.append((address, length, advice))
        return -1 if address == base + HUGE and advice == hugepages.MADV_COLLAPSE else 0

    monkeypatch.setattr(hugepages, "_MADVISE", madvise)
    done = hugepages.collapse(smaps)
    assert calls == [(base, 3 * HUGE, hugepages.MADV_HUGEPAGE)] + [
        (base + i * HUGE, HUGE, hugepages.MADV_COLLAPSE) for i in range(3)]
    assert (done.bytes, done.refused) == (5 * HUGE, 1)
    assert [s.huge for s in spans(smaps.read_text())] == [HUGE, 2 * HUGE]


def _private(size: int) -> mmap.mmap:
    """Private anonymous memory, as the heap is (``mmap``'s default is shared)."""
    return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)


def test_the_parser_reads_this_processs_own_smaps():
    # The real file's layout (an anonymous mapping's header ends in spaces): every
    # mapping's header is found, and a large touched buffer is among the spans.
    buffer = _private(64 * MiB)
    buffer.write(b"x" * (64 * MiB))
    start = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    text = Path("/proc/self/smaps").read_text()
    found = spans(text)
    assert len(hugepages._HEADER.findall(text)) == len(re.findall(r"^Size:", text, re.M))
    assert any(low <= start + 32 * MiB < high for low, high, _ in found)
    buffer.close()


def _huge_kb(start: int, end: int) -> int:
    text = Path("/proc/self/smaps").read_text()
    total = 0
    for header in hugepages._HEADER.finditer(text):
        low, high = int(header[1], 16), int(header[2], 16)
        if low < end and start < high:
            body = text[header.end():].split("VmFlags", 1)[0]
            total += int(re.search(r"AnonHugePages:\s+(\d+) kB", body)[1])  # type: ignore[index]
    return total


def test_a_collapse_maps_the_heap_in_2_mib_pages_and_a_fork_still_copies_on_write():
    # 256 MiB touched in 4 KiB pages takes 65,536 page-table entries, each copied by a
    # fork; collapsed, 128 entries of the level above hold it. A checkpoint's child must
    # still see the memory as it stood at the fork, whoever writes to it afterwards.
    size = 256 * MiB
    buffer = _private(size)
    pattern = bytes(range(256)) * (size // 256)
    buffer.write(pattern)
    start = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    assert _huge_kb(start, start + size) == 0  # (madvise mode: nothing huge unasked)
    done = hugepages.collapse()
    assert done.bytes >= size - HUGE  # (other spans may be refused)
    assert _huge_kb(start, start + size) >= (size - HUGE) // 1024
    assert buffer[:] == pattern  # the memory holds what it held
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: reads after the parent wrote
        os.read(reader, 1)
        same = buffer[:] == pattern
        buffer[HUGE * 4] = 0  # and writes: the parent must not see it
        os._exit(0 if same else 1)
    buffer[HUGE * 8: HUGE * 8 + 3] = b"new"
    os.write(writer, b"go")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert buffer[HUGE * 4] == pattern[HUGE * 4] and buffer[HUGE * 8: HUGE * 8 + 3] == b"new"
    os.close(reader)
    os.close(writer)
    buffer.close()
