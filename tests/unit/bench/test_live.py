"""The bench reads the worker's stall lines as the worker writes them."""

from __future__ import annotations

import logging

from bench.live import stalls_logged
from stream.worker.stallwatch import StallWatch

#: the worker's log format (faust's: time, pid, level, message)
FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s "


def test_the_worker_s_stall_lines_round_trip(caplog):
    caplog.set_level(logging.WARNING, logger="cspa.worker")
    watch = StallWatch()
    watch.woke(0.25, 100.0)  # the first stall: logged at once
    watch.woke(0.07, 101.0)
    watch.woke(0.9, 102.0)
    watch.woke(0.0, 200.0)  # the window is over: the two held back, the longest 900 ms
    formatter = logging.Formatter(FORMAT)
    text = "\n".join(["[2026-12-05 21:30:36,255] [6111] [INFO] Worker ready"]
                     + [formatter.format(r) for r in caplog.records])
    assert stalls_logged(text) == [
        {"stalls": 1, "longest_ms": 250, "samples": 0, "ran_ms": None, "cpu_wait_ms": None,
         "faults": None, "where": "-"},
        {"stalls": 2, "longest_ms": 900, "samples": 0, "ran_ms": None, "cpu_wait_ms": None,
         "faults": None, "where": "-"}]


def test_a_stall_line_with_the_thread_s_counters_round_trips(caplog):
    caplog.set_level(logging.WARNING, logger="cspa.worker")
    watch = StallWatch()
    try:
        watch.expect(float("inf"))  # on this thread: its counters are read from here on
        sum(range(3_000_000))  # (some CPU between the two reads)
        watch.woke(0.25, 100.0)
    finally:
        watch.stop()
    (line,) = stalls_logged(logging.Formatter(FORMAT).format(caplog.records[0]))
    assert line["longest_ms"] == 250 and line["where"] == "-"
    assert line["ran_ms"] > 0 and line["cpu_wait_ms"] is not None
    assert line["faults"] is not None and line["faults"] >= 0


def test_where_keeps_every_frame():
    line = ("[2026-12-05 21:35:57,004] [6403] [WARNING] event loop stalled stalls=3 "
            "longest_ms=131 samples=5 ran_ms=120 cpu_wait_ms=4 "
            "where=stream/worker/rekey.py:68(hops_of) < "
            "stream/worker/agents.py:74(run) ")
    assert stalls_logged(line)[0]["where"] == (
        "stream/worker/rekey.py:68(hops_of) < stream/worker/agents.py:74(run)")


def test_a_stall_line_s_page_faults_are_read_and_an_older_line_has_none():
    newer = ("[2026-12-07 12:10:01,004] [6403] [WARNING] event loop stalled stalls=1 "
             "longest_ms=86 samples=7 ran_ms=70 cpu_wait_ms=12 faults=23456 "
             "where=stream/worker/changelog.py:201(_send)")
    older = newer.replace(" faults=23456", "")
    assert stalls_logged(newer)[0]["faults"] == 23456
    assert stalls_logged(newer)[0]["where"] == "stream/worker/changelog.py:201(_send)"
    assert stalls_logged(older)[0]["faults"] is None
    assert stalls_logged(older)[0]["cpu_wait_ms"] == 12


def test_the_stall_summary_counts_each_stall_of_a_worker_logging_every_one(caplog, tmp_path):
    from types import SimpleNamespace

    from bench.live import stall_summary

    caplog.set_level(logging.WARNING, logger="cspa.worker")
    watch = StallWatch(report_seconds=0)  # as the bench runs its workers: a line each
    for lag, at in ((0.25, 100.0), (0.07, 100.5), (0.9, 101.0), (0.01, 102.0)):
        watch.woke(lag, at)
    formatter = logging.Formatter(FORMAT)
    log = tmp_path / "worker.log"
    log.write_text("\n".join(["[2026-12-06 16:04:00,000] [1] [INFO] Worker ready"]
                             + [formatter.format(r) for r in caplog.records]) + "\n")
    worker = SimpleNamespace(log_path=log)
    assert stall_summary(worker) == {"count": 3, "longest_ms": 900, "held_ms": 1220}
    log.write_text("[2026-12-06 16:04:00,000] [1] [INFO] Worker ready\n")
    assert stall_summary(worker) == {"count": 0, "longest_ms": 0, "held_ms": 0}
