"""``/cells``' body written in slices reads back as the cells ``Aggregates.to_json`` writes."""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from stream.state.aggregates import SCALE, Aggregates, Cell, frozen
from stream.state.multiset import Values
from stream.worker import cell_dump


def _cells(rng: random.Random, n: int) -> Aggregates:
    """Live cells and merged (frozen) ones, empty and large, values repeated or not."""
    agg = Aggregates()
    for i in range(n):
        values = Values()
        for _ in range(rng.choice([0, 1, 3, 200])):
            values.add(rng.choice([0.0, 0.5, round(rng.uniform(0, 40), 4)]), rng.randint(1, 3))
        count = sum(n for _, n in values.items())
        cell = Cell(count, round(sum(v * n for v, n in values.items()) * SCALE), values)
        labels = (f"2026-{rng.randint(1, 12):02d}", rng.choice(["phone", "email", "portal"]))
        agg.cells[(rng.choice(["contacts", "contact_completion"]), (*labels, str(i)))] = \
            frozen(cell) if rng.random() < 0.5 else cell
    return agg


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.asyncio
async def test_the_body_reads_back_as_to_json_does(seed: int) -> None:
    agg = _cells(random.Random(seed), 300)
    head = {"owned": [["cspa.contacts.v1", 0]], "offsets": [["cspa.contacts.v1", 0, 17]],
            "recovering": False, "fingerprint": "f", "definitions": {"a": 1},
            "taxonomy": 'x = "y"\n'}
    body = json.loads(await cell_dump.dumped(head, list(agg.cells.items()), 0.0))
    assert {k: v for k, v in body.items() if k != "cells"} == head
    expected = json.loads(json.dumps(agg.to_json()))  # what the view wrote before
    assert sorted(map(json.dumps, body["cells"])) == sorted(map(json.dumps, expected))
    again = Aggregates.from_json(body["cells"])
    assert again.to_json() == Aggregates.from_json(expected).to_json()


@pytest.mark.asyncio
async def test_the_body_is_written_in_slices_with_the_loop_free_between(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Issue 28.2: /cells wrote a national year's cells in one go (seconds), the event
    # loop held. Slices of no time, a look at the clock per cell: the loop turns
    # between nearly every two cells.
    monkeypatch.setattr(cell_dump, "CLOCK_EVERY", 1)
    agg = _cells(random.Random(7), 200)
    turns = 0

    async def tick() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    turns = 0
    body = await cell_dump.dumped({}, list(agg.cells.items()), 0.0)
    ticker.cancel()
    assert turns >= 199
    assert len(json.loads(body)["cells"]) == 200
