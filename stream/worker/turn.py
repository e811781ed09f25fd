"""The event loop's time for batch work: a slice per turn, shared by every agent.

A catch-up (a restart, a failover, an outage upstream) hands the agents batches of
thousands of records. Folded, recounted and written in one go, each held the loop
for 50-600 ms with a national year, and no scrape, ``/due``, ``/ready`` or timer ran
in between (BENCHMARKS.md, steps 58 and 59). The agents and the changelog writer do
their batch work in chunks of ``CHUNK`` and ``tick`` between chunks: once the turn's
``SLICE_SECONDS`` are spent, the loop is let go.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

#: Seconds of batch work in one turn of the event loop, all agents together (as a
#: scrape's slices): then the loop is let go, for scrapes, ``/due`` and its timers
SLICE_SECONDS = 0.01
#: Records folded, cases recounted or records encoded between two looks at the clock:
#: 2-4 ms of folding with a national year, well under 1 ms of encoding; a look costs
#: a fraction of a microsecond
CHUNK = 64

T = TypeVar("T")
R = TypeVar("R")


class Turn:
    """The time left for batch work in the loop's current turn, shared by every agent.

    Each agent's ``tick`` lets the loop go once the turn's time is spent. The first to
    find it spent has the turn renewed at the start of the loop's next turn (a
    callback queued ahead of it); until then every other agent lets go too, after
    one chunk. So a turn holds one slice of batch work, however many agents are
    catching up (a budget each held the loop for one slice per agent).

    Another agent's batch, a scrape or ``/due`` may run between two slices: each sees
    every case either before a batch touched it or as the batch left it (a case is
    recounted whole, and ``pending`` reaches the table only with the batch's write,
    whose records are only read by that batch's agent). A checkpoint or a rebalance
    still waits for the whole batch, its write included (``busy``, ``idle``).
    """

    def __init__(self, seconds: float | None = None) -> None:
        #: None: ``SLICE_SECONDS`` as it is when the turn is renewed
        self.seconds = seconds
        self.until = time.perf_counter() + self._slice()
        self.renewing = False

    def _slice(self) -> float:
        return SLICE_SECONDS if self.seconds is None else self.seconds

    def renew(self) -> None:
        """A new turn of the loop: a new slice of time."""
        self.until = time.perf_counter() + self._slice()
        self.renewing = False

    async def tick(self) -> None:
        """Let the loop go if the turn's time is spent."""
        if time.perf_counter() > self.until:
            if not self.renewing:
                self.renewing = True
                asyncio.get_running_loop().call_soon(self.renew)
            await asyncio.sleep(0)

    async def map(self, each: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``[each(x) for x in items]``, ``CHUNK`` items between two ticks."""
        out: list[R] = []
        for start in range(0, len(items), CHUNK):
            out += [each(x) for x in items[start:start + CHUNK]]
            await self.tick()
        return out


#: A turn that is never spent: work run to its end at once (``TopicAgent.apply_now``,
#: the writer's markers-only sends)
WHOLE = Turn(math.inf)
