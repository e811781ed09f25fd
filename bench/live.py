"""Latency under steady traffic, recovery after a crash, and a py-spy profile."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.dataset import Msg
from bench.procs import Samples, Worker
from bench.producing import produce, produce_paced
from bench.replay import replay

LATENCY = "cspa_event_latency_seconds_bucket"
#: the worker's event-loop lateness (stream/worker/looplag.py), a timer every 50 ms
LOOP_LAG = "cspa_event_loop_lag_seconds_bucket"
#: The figures compared before the crash and after the restart.
RECOVERED = ("cspa_contacts_received", "cspa_contacts_decided",
             "cspa_contact_completion_workdays_count", "cspa_contact_completion_workdays_sum",
             "cspa_emails_resolved", "cspa_calls_offered", "cspa_calls_answered_within_target",
             "cspa_map_enquiries_completed", "cspa_audits", "cspa_child_contacts",
             "cspa_child_referrals")


def _buckets(samples: Samples, histogram: str = LATENCY) -> dict[float, float]:
    """Cumulative buckets of ``histogram`` summed over labels: upper bound -> count."""
    out: dict[float, float] = {}
    for (name, labels), value in samples.items():
        if name == histogram:
            bound = float(dict(labels)["le"])
            out[bound] = out.get(bound, 0.0) + value
    return out


def quantile(buckets: dict[float, float], q: float) -> float:
    """histogram_quantile: linear within the bucket holding the q-th observation."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return 0.0
    rank, lower, below = q * total, 0.0, 0.0
    for bound in bounds:
        if buckets[bound] >= rank:
            if bound == float("inf"):
                return lower  # beyond the last finite bucket: its bound is all we know
            inside = buckets[bound] - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, buckets[bound]
    return lower


def scrape_seconds(worker: Worker) -> float:
    """How long one full /metrics scrape takes (the worker's loop is blocked meanwhile)."""
    t0 = time.monotonic()
    worker.metrics_text()
    return time.monotonic() - t0


def due_seconds(worker: Worker) -> float:
    """How long the manager's list (``/due``, 200 items) takes to come back."""
    t0 = time.monotonic()
    worker.get("/due?limit=200")
    return time.monotonic() - t0


class _Scraper(threading.Thread):
    """Scrapes /metrics like Prometheus (every ``interval`` s), then reads ``/due`` as a
    manager's dashboard would; records how long each took."""

    def __init__(self, worker: Worker, interval: float = 15.0, offset: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.worker, self.interval, self.offset = worker, interval, offset
        self.seconds: list[float] = []
        self.due: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        if self.done.wait(self.offset):  # the second server's rhythm, out of step
            return
        while not self.done.wait(self.interval):
            try:
                self.seconds.append(scrape_seconds(self.worker))
                self.due.append(due_seconds(self.worker))
            except OSError:
                continue


class _MaxSampler(threading.Thread):
    """Polls /metrics/pipeline: processing wall time minus event time of the latest event."""

    def __init__(self, worker: Worker, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.worker, self.interval, self.max, self.samples = worker, interval, 0.0, 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.interval):
            try:
                s = self.worker.pipeline_samples()
            except OSError:
                continue
            for (name, labels), processed in s.items():
                if name == "cspa_last_processed_timestamp_seconds":
                    event = s.get(("cspa_last_event_timestamp_seconds", labels), 0.0)
                    if event > time.time() - 3600:  # live events only, not the backlog
                        self.max = max(self.max, processed - event)
                        self.samples += 1


def latency(worker: Worker, bootstrap: str, consumed: int, rate: float, seconds: float,
            timeout: float, children: bool = False,
            scrapers: int = 1) -> tuple[dict[str, Any], list[Msg]]:
    """Steady ``rate`` events/s of current events for ``seconds``, ``/metrics`` scraped
    every 15 s and ``/due`` after it: the latency's quantiles, and the event loop's
    lateness meanwhile. ``children``: the contacts name children (each one hops).
    ``scrapers``: Prometheus servers scraping (each every 15 s, out of step evenly)."""
    before = worker.pipeline_samples()
    checkpoints = _checkpoints(worker)
    log_from = worker.log_path.stat().st_size if worker.log_path.exists() else 0
    sampler = _MaxSampler(worker)
    servers = [_Scraper(worker, offset=15.0 * n / scrapers) for n in range(scrapers)]
    threads: list[_Scraper | _MaxSampler] = [sampler, *servers]
    for thread in threads:
        thread.start()
    try:
        sent = produce_paced(bootstrap, rate, seconds, children=children)
        replay([worker], consumed + len(sent), timeout, fresh=False)
    finally:
        for thread in threads:
            thread.done.set()
            thread.join(5)
    scrape_s = [s for server in servers for s in server.seconds]
    due_s = [s for server in servers for s in server.due]
    after = worker.pipeline_samples()
    delta = _delta(_buckets(before), _buckets(after))
    highest = _highest(delta)
    lag = _delta(_buckets(before, LOOP_LAG), _buckets(after, LOOP_LAG))
    return {"events": len(sent), "rate": rate, "seconds": seconds,
            "achieved_rate": len(sent) / seconds,
            "p50_s": quantile(delta, 0.5), "p99_s": quantile(delta, 0.99),
            "max_sampled_s": sampler.max, "max_samples": sampler.samples,
            "max_bucket_bound_s": highest,
            "max_beyond_buckets": max(delta.values(), default=0.0) > delta.get(highest, 0),
            "scrapers": scrapers, "scrapes": len(scrape_s),
            "scrape_max_s": max(scrape_s, default=0.0),
            "due_reads": len(due_s), "due_max_s": max(due_s, default=0.0),
            "loop_lag_p99_s": quantile(lag, 0.99), "loop_lag_max_bucket_bound_s": _highest(lag),
            "loop_lag_observations": max(lag.values(), default=0.0),
            "checkpoints": (_checkpoints(worker) or 0.0) - (checkpoints or 0.0),
            "stalls_logged": stalls_logged(_log_since(worker, log_from)),
            "buckets": {str(k): v for k, v in delta.items()}}, sent


#: (``faults`` is optional: a worker before it logged none)
_STALLED = re.compile(r"event loop stalled stalls=(\d+) longest_ms=(\d+) samples=(\d+) "
                      r"ran_ms=(\d+|-) cpu_wait_ms=(\d+|-) (?:faults=(\d+|-) )?"
                      r"where=(.*?)\s*$")


def stalls_logged(log: str) -> list[dict[str, Any]]:
    """The worker's ``event loop stalled`` lines (stream/worker/stallwatch.py): each one's
    count of stalls over 50 ms, the longest (ms), the milliseconds the loop's thread ran
    and waited for a CPU in it and the minor page faults it took (None: unknown) and the
    code it held the loop in."""
    return [{"stalls": int(m[1]), "longest_ms": int(m[2]), "samples": int(m[3]),
             "ran_ms": _count(m[4]), "cpu_wait_ms": _count(m[5]),
             "faults": _count(m[6] or "-"),
             "where": m[7]}
            for line in log.splitlines() if (m := _STALLED.search(line)) is not None]


def _count(field: str) -> int | None:
    """A logged whole number; None for ``-`` (the kernel gave none)."""
    return None if field == "-" else int(field)


def stall_summary(worker: Worker) -> dict[str, int]:
    """The stalls over 50 ms in the worker's whole log, as the bench's workers log each
    one on a line of its own (``CSPA_STALL_LOG_SECONDS=0``): how many, the longest and
    their sum (ms)."""
    lines = stalls_logged(_log_since(worker, 0))
    return {"count": sum(s["stalls"] for s in lines),
            "longest_ms": max((s["longest_ms"] for s in lines), default=0),
            "held_ms": sum(s["longest_ms"] for s in lines)}


def _log_since(worker: Worker, offset: int) -> str:
    if not worker.log_path.exists():
        return ""
    with worker.log_path.open("rb") as log:
        log.seek(offset)
        return log.read().decode("utf-8", "replace")


def _delta(before: dict[float, float], after: dict[float, float]) -> dict[float, float]:
    return {b: after[b] - before.get(b, 0.0) for b in after}


def _highest(delta: dict[float, float]) -> float:
    """The bound of the highest bucket holding an observation (every observation is at or
    under the first bound whose cumulative count is the total; the last finite bound
    when some are beyond it)."""
    total = max(delta.values(), default=0.0)
    highest = min((b for b in delta if delta[b] >= total), default=0.0)
    if highest == float("inf"):
        highest = max(b for b in delta if b != highest)
    return highest


def loaded_latency(worker: Worker, bootstrap: str, rate: float, seconds: float,
                   timeout: float, scrapers: int = 1) -> tuple[dict[str, Any], list[Msg]]:
    """``latency`` on a worker just restarted with a large state (the recovery phase's):
    its own consumed count is the base; its state and peak memory are recorded too."""
    base = int(worker.consumed())
    lat, sent = latency(worker, bootstrap, base, rate, seconds, timeout, scrapers=scrapers)
    samples = worker.samples(timeout=SLOW_SCRAPE_S)
    lat["contacts_in_state"] = sum(v for (n, _), v in samples.items()
                                   if n == "cspa_contacts_received")
    lat["peak_rss_bytes"] = worker.hwm()
    return lat, sent


def _snapshot(samples: Samples) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {k: round(v, 6) for k, v in samples.items() if k[0] in RECOVERED and v}


#: How long a full /metrics scrape may take in the recovery phase: the first after a
#: national year's load merges every cell afresh (the time is recorded).
SLOW_SCRAPE_S = 300.0


def recovery(worker: Worker, bootstrap: str, extra: Iterable[Msg], extra_events: int,
             consumed: int, timeout: float) -> tuple[Worker, dict[str, Any]]:
    """Load ``extra`` (``extra_events`` messages, generated as they are sent), let the
    worker checkpoint it, SIGKILL it and restart it on the same data directory: seconds
    to correct figures. Then once more with the data directory emptied: the cold
    rebuild from the changelogs alone (``cold``)."""
    before_load = _checkpoints(worker) or 0.0
    if extra_events:
        produce(bootstrap, extra)
    total = consumed + extra_events
    replay([worker], total, timeout, fresh=False)
    time.sleep(3.5)  # let the markers reach Kafka and the group commit them (every 1 s)
    checkpointed = _wait_checkpoint(worker, timeout, before_load)
    scrape_started = time.monotonic()
    samples = worker.samples(timeout=SLOW_SCRAPE_S)
    scrape_s = time.monotonic() - scrape_started
    before = _snapshot(samples)
    contacts = sum(v for (n, _), v in samples.items() if n == "cspa_contacts_received")
    again, warm = _restart(worker, before, timeout)
    again, cold = _restart(again, before, timeout, wipe=True)
    return again, {"contacts_in_state": contacts, "events_in_state": total,
                   "series_compared": len(before), "first_full_scrape_s": scrape_s,
                   "checkpoint_wait_s": checkpointed, **warm,
                   "cold": cold, "cold_rebuild_records_per_s": cold[
                       "cold_rebuild_records_per_s"]}


#: the state worker's checkpoint interval (``CSPA_CHECKPOINT_SECONDS``'s default), seconds
CHECKPOINT_S = 60.0


def _wait_checkpoint(worker: Worker, timeout: float, before_load: float) -> float:
    """Until the worker has written a checkpoint holding its whole load; seconds waited.

    One begun after the load is asked about does; so does one written during or just
    after the load when none follows it for two intervals: a worker checkpoints whenever
    its state changed since the last, so a quiet two intervals say the last one has it
    all (the timer can fire between the load's end and the first question).
    """
    started = time.monotonic()
    counted = None  # checkpoints written when first asked
    while True:
        now = _checkpoints(worker)
        if counted is not None and now is not None and now > counted:
            return time.monotonic() - started
        if (now is not None and now > before_load
                and time.monotonic() - started > 2 * CHECKPOINT_S + 5):
            return time.monotonic() - started
        counted = now if counted is None else counted
        if time.monotonic() - started > timeout:
            raise TimeoutError("no checkpoint written")
        time.sleep(0.5)


def _checkpoints(worker: Worker) -> float | None:
    try:
        samples = worker.pipeline_samples()
    except OSError:  # (a slow answer while a national checkpoint is taken: ask again)
        return None
    return sum(v for (n, _), v in samples.items() if n == "cspa_checkpoints_total")


def _restart(worker: Worker, before: dict[Any, float], timeout: float,
             wipe: bool = False) -> tuple[Worker, dict[str, Any]]:
    """SIGKILL, restart (``wipe``: with an empty data directory), wait for exact figures."""
    killed = time.time()
    worker.stop(signal.SIGKILL)
    if wipe:
        shutil.rmtree(worker.workdir / "data", ignore_errors=True)
    log_from = worker.log_path.stat().st_size  # the restarted worker appends to the same log
    again = Worker(worker.bootstrap, worker.workdir, worker.app_id).start()
    try:
        ready_at = _wait_correct(again, before, min(timeout, 900.0))
    except BaseException:
        again.stop()
        raise
    correct = time.time()
    with worker.log_path.open("rb") as log:
        log.seek(log_from)
        restart = cold_rebuild(log.read().decode("utf-8", "replace"))
    return again, {"seconds": correct - killed, "killed_peak_rss_bytes": worker.peak_hwm,
                   "kill_to_ready_s": ready_at - killed if ready_at else None, **restart}


_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")
_REBUILT = re.compile(r"figures rebuilt topic=\S+ partitions=\d+ records=(\d+) seconds=([\d.]+)")
_LOADED = re.compile(r"checkpoint loaded records=(\d+) partitions=\d+ seconds=([\d.]+)")


def cold_rebuild(log: str) -> dict[str, float | None]:
    """A restart's cold rebuild from its worker log: Faust's restore of the changelogs
    into the (memory) tables, then the figures refolded from every record.

    ``cold_rebuild_records_per_s`` is table records over restore plus refold seconds.
    """
    restore_from = restore_to = None
    records, refold_s = 0, 0.0
    loaded, load_s = 0, 0.0
    for line in log.splitlines():
        if (found := _LOADED.search(line)) is not None:  # (logged before Faust's logging)
            loaded, load_s = int(found[1]), float(found[2])
        stamp = _STAMP.match(line)
        if stamp is None:
            continue
        at = datetime.strptime(stamp[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if restore_from is None and "Restoring state from changelog topics" in line:
            restore_from = at
        elif restore_from is not None and restore_to is None and "Restore complete" in line:
            restore_to = at
        elif (rebuilt := _REBUILT.search(line)) is not None:
            records += int(rebuilt[1])
            refold_s += float(rebuilt[2])
    parts = {"checkpoint_records": loaded, "checkpoint_load_s": load_s, "refold_s": refold_s,
             "records_rebuilt": records}
    if restore_from is None or restore_to is None:
        return {"restore_s": None, **parts, "cold_rebuild_records_per_s": None}
    restore_s = restore_to - restore_from
    seconds = max(restore_s + refold_s, 1e-3)  # the log's resolution: a millisecond
    return {"restore_s": restore_s, **parts, "cold_rebuild_records_per_s": records / seconds}


def same_figures(got: dict[Any, float], want: dict[Any, float]) -> bool:
    """The same series with the same values: counts exactly, sums of durations to the
    last decimal exposed (a float sum's last bits depend on the order its terms were
    added in, which a restart or a merge of partitions changes)."""
    return not differing(got, want)


def differing(got: dict[Any, float], want: dict[Any, float]) -> list[Any]:
    """The series ``same_figures`` finds different: (series, got, want)."""
    out = []
    for k in got.keys() | want.keys():
        a, b = got.get(k), want.get(k)
        if a is None or b is None:
            out.append((k, a, b))
        elif a != b and not (k[0].endswith("_sum") and abs(a - b) <= SUM_TOLERANCE):
            out.append((k, a, b))
    return out


#: sums of working days are exposed with 4 decimals: a sum whose exact value lies on a
#: rounding boundary may show either neighbour
SUM_TOLERANCE = 1.5e-4


def _wait_correct(worker: Worker, before: dict[Any, float], timeout: float) -> float | None:
    """Poll until the worker's figures equal ``before``; when /health said ready, if seen."""
    ready_at = None
    deadline = time.monotonic() + timeout
    last: list[Any] = []
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError(f"restarted worker not correct after {timeout}s: "
                               f"{len(last)} series differ, e.g. {sorted(last, key=str)[:3]}")
        try:
            if ready_at is None and worker.get_json("/health").get("ready"):
                ready_at = time.time()
            if ready_at is not None:
                last = differing(_snapshot(worker.samples(SLOW_SCRAPE_S)), before)
                if not last:
                    return ready_at
        except OSError:
            pass
        time.sleep(0.25 if ready_at is None else 0.5)


def profile(worker: Worker, seconds: float, out: Path) -> dict[str, Any]:
    """py-spy record (raw) on the worker; the functions with the most self time."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(exe).exists():
        return {"error": "py-spy not installed (pip install py-spy)"}
    res = subprocess.run([exe, "record", "-d", str(int(seconds)), "-f", "raw", "-o", str(out),
                          "--pid", str(worker.pid)], capture_output=True, text=True,
                         check=False, timeout=seconds + 60)
    if res.returncode != 0 or not out.exists():
        return {"error": res.stderr[-1000:]}
    self_time: Counter[str] = Counter()
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            self_time[stack.split(";")[-1]] += int(count)
    total = sum(self_time.values()) or 1
    return {"samples": total, "seconds": seconds, "raw": str(out),
            "top": [{"function": f, "share": n / total} for f, n in self_time.most_common(15)]}

