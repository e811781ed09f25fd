"""``cspa_event_loop_lag_seconds``: how late the worker's event loop runs its timers.

Everything the worker does (folding batches, serving ``/metrics``, checkpoints, Kafka
heartbeats) shares one asyncio loop; any callback that holds it delays all the others.
``LoopLag`` sleeps ``PERIOD_SECONDS`` on that loop, over and over, and observes how much
later than asked it woke: 0 on an idle loop, about the blocked time after a stall. A
stall of ``B`` seconds is one observation of about ``B - PERIOD_SECONDS``, so the sum
of the histogram grows by the time the loop was held, and a stall of over a second
counts once in the buckets above ``1.0`` (what ``WorkerLoopStalled`` watches).

With a ``StallWatch`` (``stream.worker.stallwatch``), wakes later than its threshold
(50 ms) are also logged, ``event loop stalled``, with the code location the loop was
held at: the first thing on-call reads for ``WorkerLoopStalled``.

``/live`` (``stream.worker.liveness``) keeps its own heartbeat: it must answer while
this loop is stuck, from a thread of its own, and judges silence, not lateness.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from stream.worker.stallwatch import StallWatch

#: how often the loop is asked to wake (seconds): a stall shorter than this may go unseen
PERIOD_SECONDS = 0.05
#: fine around the target (loop p99 lag <= 50 ms) and up to the stalls a scrape or a
#: checkpoint of a national year caused (seconds)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
               10.0, 30.0)


class LoopLag:
    """Observes the running loop's lateness into ``observe`` every ``period`` seconds;
    with ``watch``, logs the stalls past its threshold and where the loop was."""

    def __init__(self, observe: Callable[[float], None],
                 period: float = PERIOD_SECONDS, watch: StallWatch | None = None) -> None:
        self.observe = observe
        self.period = period
        self.watch = watch

    async def run(self) -> None:
        """Forever (until cancelled): sleep ``period``, observe the delay past it."""
        while True:
            asked = time.monotonic()
            if self.watch is not None:
                self.watch.expect(asked + self.period)
            await asyncio.sleep(self.period)
            woke = time.monotonic()
            lag = max(0.0, woke - asked - self.period)
            self.observe(lag)
            if self.watch is not None:
                self.watch.woke(lag, woke)
