"""The event loop's time for batch work (stream/worker/turn.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

import pytest

from stream.worker.turn import CHUNK, WHOLE, Turn

T = TypeVar("T")


@pytest.mark.asyncio
async def test_a_spent_turn_lets_the_loop_go_from_every_agent_until_it_is_renewed():
    turn = Turn(seconds=60.0)
    turn.until = time.perf_counter() - 1.0  # one agent's batch has spent it
    order: list[str] = []
    renewed = turn.renew

    def renew():
        order.append("renewed")
        renewed()
    turn.renew = renew  # type: ignore[method-assign]

    async def agent(name):
        order.append(f"{name} ticks")
        await turn.tick()
        order.append(f"{name} goes on")
        await turn.tick()  # a fresh turn: no letting go
        order.append(f"{name} still on")

    await asyncio.gather(agent("a"), agent("b"))
    # Both let the loop go (one slice per turn in all, not one each); the turn was
    # renewed once, at the next turn's start, before either went on.
    assert order == ["a ticks", "b ticks", "renewed", "a goes on", "a still on",
                     "b goes on", "b still on"]
    assert turn.until > time.perf_counter() + 50 and not turn.renewing


async def with_turns_beside(work: Awaitable[T]) -> tuple[T, int]:
    """``work``'s result, and how many turns of the loop a task beside it had meanwhile."""
    turns, done = 0, False

    async def beside() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(beside())
    await asyncio.sleep(0)
    turns = 0
    out = await work
    done = True
    await task
    return out, turns


@pytest.mark.asyncio
async def test_map_keeps_the_order_and_lets_the_loop_go_after_each_spent_chunk():
    items = list(range(3 * CHUNK + 5))  # 4 chunks
    whole = await with_turns_beside(WHOLE.map(lambda x: x * 2, items))
    sliced = await with_turns_beside(Turn(seconds=0.0).map(lambda x: x * 2, items))
    assert whole[0] == sliced[0] == [x * 2 for x in items]
    assert whole[1] == 0  # a turn never spent: nothing else ran meanwhile
    assert sliced[1] == 4  # the loop let go after each chunk
