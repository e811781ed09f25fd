"""Stored records: what they cost in memory, and that they round-trip."""

from __future__ import annotations

import tracemalloc

from stream.state import records

RECORD = {"k": "contact", "p": 3,
          "rcv": [1704067218.30758, "sim-11-000000", "online_form", "8", "rfs"],
          "dec": [1704153618.5, [1704160000.25, "sim-11-000001"], "map", None]}


def test_a_stored_record_round_trips_exactly():
    assert records.loads(records.dumps(RECORD)) == RECORD


def test_a_stored_record_holds_only_its_own_bytes():
    # The table keeps every record for the worker's life, so what one costs is
    # what a national year costs 3 million times. A bytes object from orjson >= 3.12
    # keeps its 4 KiB write buffer; the stored copy must be right-sized.
    n = 2_000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [records.dumps(RECORD) for _ in range(n)]
        per_record = (tracemalloc.get_traced_memory()[0] - before) / n
    finally:
        tracemalloc.stop()
    assert len(kept[0]) < 160
    assert per_record < len(kept[0]) + 64, f"{per_record:.0f} B held per {len(kept[0])} B record"
