"""``/cells``' JSON body, written a slice at a time with the event loop free between slices.

``/cells`` hands a report every merged cell of the owned partitions with its values, and
was written in one go: ``Aggregates.to_json`` sorted every cell and made a list per
value, then Faust's JSON encoder wrote it all, the loop held throughout (seconds with a
national year: 7.1 s in step 26's measure). A report run against the workers then
stalled every one of them.

The merged cells a scrape serves are never changed, only replaced (a changed cell is a
new object; ``CellState.current``), so a list of them taken with the offsets, with no
await between, is a consistent view however long it takes to write: nothing needs to be
held meanwhile. The body is the same JSON document as before (``Aggregates.from_json``
reads it) except that cells come in the order they are kept, not sorted: readers build
a mapping from them (tests/unit/worker/test_cell_dump.py compares the two).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from stream.state.aggregates import Cell, CellKey

#: cells written between two looks at the clock (a cell is 1-30 µs; a national year's
#: largest is about 2 ms)
CLOCK_EVERY = 16


def cell_json(key: CellKey, cell: Cell) -> list[Any]:
    """``[figure, labels, Cell.to_json]``: one entry of ``Aggregates.to_json``."""
    figure, labels = key
    return [figure, list(labels), cell.to_json()]


async def dumped(head: Mapping[str, Any], cells: Sequence[tuple[CellKey, Cell]],
                 seconds: float) -> bytes:
    """The JSON object ``head`` with ``"cells"`` added, the cells written for about
    ``seconds`` of CPU between turns of the event loop. ``cells``: taken at once and
    never changed (merged cells), so the body is one instant's."""
    out = [orjson.dumps({**head, "cells": []})[:-3], b"["]
    ends, written = time.monotonic() + seconds, 0
    for key, cell in cells:
        if written:
            out.append(b",")
        out.append(orjson.dumps(cell_json(key, cell)))
        written += 1
        if written % CLOCK_EVERY == 0 and time.monotonic() >= ends:
            await asyncio.sleep(0)
            ends = time.monotonic() + seconds
    out.append(b"]}")
    return b"".join(out)
