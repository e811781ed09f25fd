"""Replays of the backlog by Faust workers: throughput, exactness, scale-out, memory.

The clock of a replay is read from the workers themselves, as the Quix peer reads its
own (bench/quix_app.py): it starts at the wall-clock time a worker handed its first
record to the fold (``cspa_first_consumed_timestamp_seconds``, the least over topics and
workers) and stops at ``cspa_last_processed_timestamp_seconds`` (after the last record's
batch) once ``cspa_events_consumed_total`` reaches the total (polled every 0.5 s, so the
polling costs the worker little). A replay by workers that had consumed before
(``fresh=False``: duplicates re-sent, live traffic) starts its clock between the polls
that saw the first new message, as the whole harness did before.
"""

from __future__ import annotations

import asyncio
import functools
import time
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped,unused-ignore]

from bench.dataset import TOPICS, Msg
from bench.expected import WORKER_FIGURES, Figures, compare, from_worker
from bench.procs import RssSampler, Worker, quick_max, quick_min, quick_sums, quick_topic
from bench.producing import produce
from stream.contract.topics import event_families, repartition_topic

SOURCE_TOPICS = {s.name for s in event_families(TOPICS).values()}


class ExactnessError(AssertionError):
    """The worker's figures differ from the independently computed ones."""


def first_consumed(workers: list[Worker]) -> float:
    """The wall-clock time the first record was handed to a fold, over the workers."""
    firsts = [quick_min(w.pipeline_text(), "cspa_first_consumed_timestamp_seconds")
              for w in workers]
    return min((t for t in firsts if t > 0), default=0.0)


#: the repartition topic by app id, read from topics.toml once (``_poll`` runs every
#: few hundred ms beside the workers it times, on the same cores)
_rekey_topic = functools.cache(repartition_topic)


def _poll(workers: list[Worker]) -> tuple[float, float, float]:
    """(messages consumed, latest processing wall time, consumer lag) over the workers.

    The repartition topic's records are the workers' own hops, not events sent: the
    events count, less one for each hop sent but not yet folded (work still to do; summed
    over the workers, since one worker folds the hops another sent).
    """
    consumed, last, lag, hops, sent = 0.0, 0.0, 0.0, 0.0, 0.0
    for w in workers:
        try:
            text = w.pipeline_text()
        except OSError:  # web server not up yet
            lag = float("inf")
            continue
        sums = quick_sums(text, "cspa_events_consumed_total", "cspa_consumer_lag",
                          "cspa_hops_sent_total")
        consumed += sums["cspa_events_consumed_total"]
        hops += quick_topic(text, "cspa_events_consumed_total", _rekey_topic(w.app_id))
        sent += sums["cspa_hops_sent_total"]
        lag += sums["cspa_consumer_lag"]
        last = max(last, quick_max(text, "cspa_last_processed_timestamp_seconds"))
    consumed -= hops + max(0.0, sent - hops)
    return consumed, last, lag


async def _committed(bootstrap: str, group: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return sum(max(o.offset, 0) for tp, o in offsets.items() if tp.topic in SOURCE_TOPICS)


def committed(bootstrap: str, group: str) -> int:
    """Offsets the consumer group has committed on the event topics, summed."""
    return asyncio.run(_committed(bootstrap, group))


def _done(workers: list[Worker], consumed: float, total: int, strict: bool) -> bool:
    if strict or consumed < total:
        return consumed >= total
    # Several workers may re-consume what another processed before a rebalance
    # (at-least-once): then "done" is every offset committed by the group.
    return committed(workers[0].bootstrap, workers[0].app_id) >= total


def replay(workers: list[Worker], total: int, timeout: float, on_progress: Any = None,
           strict: bool = True, fresh: bool = True) -> dict[str, Any]:
    """Wait until the workers have consumed ``total``; the rate from first to last message.

    ``strict``: consumption must stop at exactly ``total`` (one worker, nothing replayed).
    ``fresh``: the workers consume their first messages in this replay (the clock starts
    at ``cspa_first_consumed_timestamp_seconds``).
    """
    deadline = time.monotonic() + timeout
    before = time.time()
    while True:
        consumed, last, lag = _poll(workers)
        now = time.time()
        if consumed > 0:
            started = (before + now) / 2  # the first message was consumed between polls
            break
        if time.monotonic() > deadline:
            raise TimeoutError("workers consumed nothing")
        before = now
        time.sleep(0.05)
    points = []
    while not _done(workers, consumed, total, strict):
        if time.monotonic() > deadline:
            raise TimeoutError(f"workers consumed {consumed} of {total} in {timeout}s")
        time.sleep(0.5)
        consumed, last, lag = _poll(workers)
        points.append((round(time.time() - started, 2), consumed))
        if on_progress is not None:
            on_progress(consumed)
    if strict and consumed != total:
        raise ExactnessError(f"consumed {consumed} messages, expected exactly {total}")
    first = first_consumed(workers) if fresh else started
    if not first:
        raise RuntimeError("no worker exports cspa_first_consumed_timestamp_seconds")
    seconds = max(last - first, 1e-9)
    return {"events": total, "seconds": seconds, "events_per_s": total / seconds,
            "steady_events_per_s": _steady_rate(points, total), "workers": len(workers),
            "consumed": consumed, "reported_lag_at_end": lag, "progress": points}


def _steady_rate(points: list[tuple[float, float]], total: int) -> float | None:
    """The rate between 10 % and 90 % consumed (start-up and tail left out)."""
    mid = [(t, c) for t, c in points if 0.1 * total <= c <= 0.9 * total]
    if len(mid) < 2 or mid[-1][0] <= mid[0][0]:
        return None
    return (mid[-1][1] - mid[0][1]) / (mid[-1][0] - mid[0][0])


def check_exact(worker: Worker, expected: Figures) -> dict[str, Any]:
    """Compare the worker's figures with the independent ones; raise if they differ."""
    samples = worker.samples()
    rejected = sum(v for (n, _), v in samples.items() if n == "cspa_events_rejected_total")
    problems = compare(expected, from_worker(samples), WORKER_FIGURES)
    if rejected:
        problems.insert(0, f"{rejected:g} events rejected to the dead-letter topic")
    if problems:
        shown = "\n  ".join(problems[:20])
        raise ExactnessError(f"worker figures are NOT exact ({len(problems)} differences):\n"
                             f"  {shown}")
    cells = sum(len(expected.get(f, {})) for f in WORKER_FIGURES)
    return {"exact": True, "cells_compared": cells, "figures": list(WORKER_FIGURES)}


def throughput(bootstrap: str, workdir: Path, app_id: str, total: int, expected: Figures,
               timeout: float, env: dict[str, str] | None = None
               ) -> tuple[Worker, RssSampler, dict[str, Any]]:
    """One fresh worker replays the backlog; checked exact; RSS sampled throughout."""
    worker = Worker(bootstrap, workdir / app_id, app_id, env).start()
    sampler = RssSampler(worker)
    sampler.start()
    rss_by_events: list[tuple[float, int]] = []
    try:
        result = replay([worker], total, timeout,
                        on_progress=lambda c: rss_by_events.append((c, worker.rss())))
        result["exactness"] = check_exact(worker, expected)
    except BaseException:
        sampler.stop()
        worker.stop()
        raise
    result["peak_rss_bytes"] = worker.hwm()
    result["checkpoints_by_end"] = quick_sums(worker.pipeline_text(),
                                              "cspa_checkpoints_total")["cspa_checkpoints_total"]
    result["rss_by_events"] = rss_by_events[:: max(1, len(rss_by_events) // 20)]
    return worker, sampler, result


def steady_memory(worker: Worker, bootstrap: str, duplicates: list[Msg], consumed: int,
                  expected: Figures, timeout: float) -> dict[str, Any]:
    """Re-send events already counted (state fixed): RSS must not grow, figures unchanged."""
    rss_before = worker.rss()
    produce(bootstrap, duplicates)
    run = replay([worker], consumed + len(duplicates), timeout, fresh=False)
    time.sleep(1.0)
    rss_after = worker.rss()
    check_exact(worker, expected)
    return {"events": len(duplicates), "events_per_s": run["events_per_s"],
            "rss_before_bytes": rss_before, "rss_after_bytes": rss_after,
            "growth_bytes": rss_after - rss_before, "figures_unchanged": True}
