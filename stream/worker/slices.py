"""A scrape's work cut into slices of the event loop, the loop let go after each.

A ``/metrics`` scrape has three phases: merge the cells changed since the last one,
move open work's runs of deadline days to the clock, render the page part by part.
Each was already cut into slices of about ``seconds`` when it had much to do, but a
usual scrape ran all three back to back: in the national bench of steps 1-64 one such
scrape held the loop for 59 ms (issue 28.2's bound is 50 ms). Here every phase, and
every part of the page, ends its own slice.

Batches fold between the slices of a usual scrape: the figures and open work are read
as they are when each part renders (each part is exact for its instant; a render merges
what a batch changed since the merge phase). Once any step leaves work over for another
slice (a scrape after a replay: thousands of cells to merge, series to render), every
agent's batches are held to the scrape's end, as before: folding meanwhile would change
more than the slices could catch up with. A usual scrape never waits for the batches,
so a batch stuck on a broker that is down does not hold ``/metrics`` up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from types import TracebackType
from typing import Any

from stream.worker import exposition


class Slices:
    """One scrape's slices; ``hold`` takes every agent's batches (an async context)."""

    def __init__(self, seconds: float,
                 hold: Callable[[], AbstractAsyncContextManager[None]]) -> None:
        self.seconds = seconds  # of work per slice, about (each step does some at least)
        self._hold = hold
        self._stack = AsyncExitStack()
        self.held = False

    async def __aenter__(self) -> Slices:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._stack.aclose()

    async def until_done(self, step: Callable[[], bool]) -> None:
        """Call ``step`` (True: done; it keeps what it did) until done, a slice each."""
        while not step():
            await self._more()
        await asyncio.sleep(0)

    async def text(self, part: Any) -> bytes:
        """One part of the page (``exposition.text_of``), rendered within a ``budget`` of
        ``seconds`` a slice: a part out of time keeps what it rendered and goes on."""
        while True:
            try:
                with exposition.budget(self.seconds):
                    text = exposition.text_of(part)
            except exposition.OutOfTime:
                await self._more()
                continue
            await asyncio.sleep(0)
            return text

    async def _more(self) -> None:
        """A step left work over: hold the batches (once), then let the loop go."""
        if not self.held:
            self.held = True
            await self._stack.enter_async_context(self._hold())
        await asyncio.sleep(0)
