"""The stall watch names the code that held a real event loop, and nothing else."""

from __future__ import annotations

import asyncio
import logging
import mmap
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from stream.worker.looplag import PERIOD_SECONDS, LoopLag
from stream.worker.stallwatch import (
    ALWAYS_SECONDS,
    REPORT_SECONDS,
    UNSEEN,
    StallWatch,
    location,
    stack,
)

HOLD = 0.3  # seconds the injected call holds the loop
#: one frame as logged: a relative path, a line, a function name; no value of any kind
FRAME = r"[\w./-]+\.py:\d+\([\w<>]+\)"


def _hold_the_loop(child_reference: str, seconds: float = HOLD) -> None:
    """Busy, in Python, so the interpreter lock passes to the watcher between bytecodes."""
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        len(child_reference)


def _holding() -> None:
    _hold_the_loop("CHILD-REF-0042")


async def _run(lag: LoopLag, hold: Callable[[], None] | None,
               busy_before: float = 0.0) -> None:
    """A few idle ticks, then ``busy_before`` seconds of 10 ms calls 10 ms apart (each
    far short of a stall), then ``hold`` on the loop, then a few ticks more."""
    task = asyncio.create_task(lag.run())
    await asyncio.sleep(4 * PERIOD_SECONDS)
    ends = time.monotonic() + busy_before
    while time.monotonic() < ends:
        _hold_the_loop("x", 0.01)
        await asyncio.sleep(0.01)
    if hold is not None:
        asyncio.get_running_loop().call_soon(hold)
    await asyncio.sleep(4 * PERIOD_SECONDS)
    task.cancel()


def stalls(caplog: pytest.LogCaptureFixture, hold: Callable[[], None] | None,
           busy_before: float = 0.0) -> list[str]:
    """The stall lines of ``_run`` on a watched loop."""
    watch = StallWatch()
    caplog.set_level(logging.WARNING, logger="cspa.worker")
    try:
        asyncio.run(_run(LoopLag(lambda _: None, watch=watch), hold, busy_before))
    finally:
        watch.stop()
    return [r.getMessage() for r in caplog.records if "event loop stalled" in r.getMessage()]


def test_a_stall_is_logged_with_the_function_that_held_the_loop(caplog):
    found = stalls(caplog, _holding)
    assert len(found) == 1
    stalls_, lag_ms, samples, ran_ms, _, faults, where = re.fullmatch(
        r"event loop stalled stalls=(\d+) longest_ms=(\d+) samples=(\d+) ran_ms=(\d+) "
        r"cpu_wait_ms=(\d+) faults=(\d+) where=(.*)", found[0]).groups()
    assert stalls_ == "1"
    assert int(lag_ms) >= (HOLD - PERIOD_SECONDS) * 1e3
    assert int(samples) >= 5  # every 10 ms while over 50 ms late: about 20
    first = where.split(" < ")[0]
    assert first.startswith("tests/unit/worker/test_stallwatch.py:")
    assert first.endswith("(_hold_the_loop)")
    assert re.fullmatch(f"{FRAME}( < {FRAME})*", where)
    assert "CHILD-REF" not in where  # the argument the function held is not read


def _split(line: str) -> tuple[int, int, int]:
    """(longest_ms, ran_ms, cpu_wait_ms) of a stall line."""
    found = re.search(r"longest_ms=(\d+) .*ran_ms=(\d+) cpu_wait_ms=(\d+) ", line)
    assert found, line
    lag, ran, waited = (int(g) for g in found.groups())
    return lag, ran, waited


def _stall_of(caplog: pytest.LogCaptureFixture, hold: Callable[[], None],
              busy_before: float = 0.0) -> tuple[int, int, int]:
    """(longest_ms, ran_ms, cpu_wait_ms) of the one stall line of ``stalls``."""
    lines = stalls(caplog, hold, busy_before)
    assert len(lines) == 1, lines
    return _split(lines[0])


def test_a_stall_in_the_code_is_time_the_loop_thread_ran(caplog):
    # Busy in Python: the thread was on a CPU for most of the stall's window.
    lag, ran, waited = _stall_of(caplog, _holding)
    assert ran >= 0.6 * lag and waited <= 0.3 * lag


PAGES = 20_000  # 78 MiB of fresh 4 KiB pages


def _touching_fresh_pages() -> None:
    """Hold the loop while the kernel maps pages for it: one write to each page of a new
    anonymous mapping (each a minor fault), then busy for the rest of the hold."""
    ends = time.monotonic() + HOLD
    with mmap.mmap(-1, PAGES * mmap.PAGESIZE) as fresh:
        fresh.madvise(mmap.MADV_NOHUGEPAGE)  # a fault a 4 KiB page, whatever the THP setting
        for at in range(0, PAGES * mmap.PAGESIZE, mmap.PAGESIZE):
            fresh[at] = 1
    _hold_the_loop("x", max(0.0, ends - time.monotonic()))


def _faults(line: str) -> int:
    found = re.search(r" faults=(\d+) where=", line)
    assert found, line
    return int(found[1])


def test_a_stall_counts_the_page_faults_the_loop_thread_took_in_it(caplog):
    # Pages mapped (or copied from a forked child) for the loop thread in the stall's
    # window are counted; a stall of the same length in plain Python takes few.
    (touching,) = stalls(caplog, _touching_fresh_pages)
    caplog.clear()
    (busy,) = stalls(caplog, _holding)
    assert _faults(touching) >= PAGES * 0.9
    assert _faults(busy) < PAGES * 0.05


def test_a_loop_blocked_off_the_cpu_neither_ran_nor_waited_for_one(caplog):
    # Blocked (here a sleep, as on a lock or a disk): neither on a CPU nor queued for one.
    lag, ran, waited = _stall_of(caplog, lambda: time.sleep(HOLD))
    assert lag >= (HOLD - PERIOD_SECONDS) * 1e3
    assert ran <= 0.2 * lag and waited <= 0.2 * lag


def test_only_the_stall_s_own_window_is_counted(caplog):
    # Half a second of work before a blocked stall is not the stall's: its window starts
    # when the timer last slept.
    lag, ran, waited = _stall_of(caplog, lambda: time.sleep(HOLD), busy_before=0.5)
    assert lag >= (HOLD - PERIOD_SECONDS) * 1e3
    assert ran <= 0.2 * lag


def test_a_loop_starved_of_cpu_shows_the_wait(caplog):
    # The loop's thread and a spinning process share one CPU: the thread is ready but
    # gets about half of it, so a good share of the stall is waiting for the CPU,
    # whatever ``where`` says: the machine's stall, not the code's.
    cpu = min(os.sched_getaffinity(0))
    spinner = subprocess.Popen([sys.executable, "-c",
                                f"import os; os.sched_setaffinity(0, {{{cpu}}})\nwhile True: pass"])
    allowed = os.sched_getaffinity(0)
    try:
        time.sleep(0.3)  # spinning
        os.sched_setaffinity(0, {cpu})  # this thread (and the watcher it starts)
        lag, ran, waited = _stall_of(caplog, _holding)
    finally:
        os.sched_setaffinity(0, allowed)
        spinner.kill()
        spinner.wait()
    assert waited >= 0.25 * lag


def test_an_idle_loop_logs_nothing(caplog):
    assert stalls(caplog, None) == []


def test_without_a_watch_nothing_is_logged(caplog):
    caplog.set_level(logging.WARNING, logger="cspa.worker")
    asyncio.run(_run(LoopLag(lambda _: None), _holding))
    assert not [r for r in caplog.records if "event loop stalled" in r.getMessage()]


def test_a_location_is_relative_and_names_line_and_function():
    here = sys._getframe()
    line, found = here.f_lineno, location(here)
    assert found == (f"tests/unit/worker/test_stallwatch.py:{line}"
                     "(test_a_location_is_relative_and_names_line_and_function)")
    assert stack(None) == UNSEEN
    assert len(stack(here, depth=2).split(" < ")) == 2


def test_nothing_sampled_takes_the_unseen_marker():
    assert StallWatch().take() == (UNSEEN, 0)


def test_stalls_are_logged_at_most_once_a_window_but_a_long_one_at_once(caplog):
    caplog.set_level(logging.WARNING, logger="cspa.worker")
    watch = StallWatch()  # no expect(): no thread, nothing sampled

    def lines(*wakes: tuple[float, float]) -> list[str]:
        caplog.clear()
        for lag, now in wakes:
            watch.woke(lag, now)
        return [r.getMessage().split(" samples=")[0] for r in caplog.records]

    t = 1_000.0
    assert lines((0.08, t)) == ["event loop stalled stalls=1 longest_ms=80"]  # the first
    assert lines((0.09, t + 1), (0.01, t + 2), (0.12, t + 3), (0.07, t + 4)) == []
    assert lines((0.0, t + REPORT_SECONDS)) == [
        "event loop stalled stalls=3 longest_ms=120"]  # the window's count and longest
    assert lines((0.06, t + REPORT_SECONDS + 1),
                 (ALWAYS_SECONDS + 0.2, t + REPORT_SECONDS + 2)) == [
        "event loop stalled stalls=2 longest_ms=1200"]  # over a second: not held back
    assert lines((0.01, t + 3 * REPORT_SECONDS)) == []  # nothing pending, nothing said


def test_with_no_window_every_stall_has_its_line(caplog):
    # CSPA_STALL_LOG_SECONDS=0 (the bench's): a line per stall, none held back
    caplog.set_level(logging.WARNING, logger="cspa.worker")
    watch = StallWatch(report_seconds=0.0)
    for lag, now in ((0.08, 1.0), (0.06, 1.1), (0.01, 1.2), (0.3, 1.3)):
        watch.woke(lag, now)
    assert [r.getMessage().split(" samples=")[0] for r in caplog.records] == [
        "event loop stalled stalls=1 longest_ms=80", "event loop stalled stalls=1 longest_ms=60",
        "event loop stalled stalls=1 longest_ms=300"]


def test_the_setting_is_read_from_the_environment(monkeypatch):
    from stream.settings import Settings

    assert Settings().stall_log_seconds == REPORT_SECONDS
    monkeypatch.setenv("CSPA_STALL_LOG_SECONDS", "0")
    assert Settings().stall_log_seconds == 0.0
