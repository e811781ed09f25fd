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


def _receipt(child: str | None, recorded: float | None = None, eid: str = "e1") -> list[object]:
    version: object = eid if recorded is None else [recorded, eid]
    slot = [1704067218.5, version, "email", "6", "rfs"]
    return [*slot, child] if child else slot


def _folded(*slots: list[object]) -> list[object]:
    record: dict[str, object] | None = None
    for slot in slots:
        record = records.fold(record, "contact", "rcv", slot, 0) or record
    assert record is not None
    return record["rcv"]  # type: ignore[return-value]


def test_a_corrected_receipt_remembers_the_children_it_no_longer_names():
    a, b, a2 = _receipt("A"), _receipt("B", 1704100000.0, "e2"), _receipt("A", 1704200000.0, "e3")
    moved = _folded(a, b)
    assert records.Receipt.child_key(moved) == "B"
    assert records.children_before(moved) == ["A"]  # withdrawn from A by the hop
    # back to A: B is the one left behind, A is named again
    assert records.children_before(_folded(a, b, a2)) == ["B"]
    # the correction first: the original never won, was never hopped, has nothing to withdraw
    assert _folded(b, a) == b
    # a correction to no child withdraws from the one named before
    nobody = _folded(a, _receipt(None, 1704100000.0, "e2"))
    assert records.Receipt.child_key(nobody) is None
    assert records.children_before(nobody) == ["A"]


def test_a_receipt_corrected_without_moving_child_is_stored_as_before():
    same = _receipt("A", 1704100000.0, "e2")
    assert _folded(_receipt("A"), same) == same  # no seventh field, byte for byte
    assert _folded(_receipt(None), _receipt(None, 1704100000.0, "e2")) == _receipt(
        None, 1704100000.0, "e2")


def _at(slot: list[object], when: float) -> list[object]:
    return [when, *slot[1:]]


def test_a_receipt_remembers_the_earliest_time_it_gave_its_child():
    a = _receipt("A")  # at 1704067218.5
    later = _at(_receipt("A", 1704100000.0, "e2"), 1704200000.0)
    later_still = _at(_receipt("A", 1704300000.0, "e3"), 1704400000.0)
    kept = _folded(a, later, later_still)
    assert records.first_at(kept) == 1704067218.5  # the version the child may have settled
    assert records.Receipt.occurred_at(kept) == 1704400000.0
    assert records.children_before(kept) == []
    # moved earlier: its own time is the earliest, stored as before
    earlier = _at(_receipt("A", 1704100000.0, "e2"), 1704000000.0)
    assert _folded(a, earlier) == earlier
    # moved to another child: that child never had the earlier time
    other = _at(_receipt("B", 1704300000.0, "e3"), 1704400000.0)
    moved = _folded(a, later, other)
    assert records.first_at(moved) == 1704400000.0 and records.children_before(moved) == ["A"]


def test_a_correction_moves_its_contact_to_another_child_only_within_52_weeks():
    t = 1_600_000_000.0
    old = [t, "e1", "email", "6", "rfs", "A"]

    def fix(days: float, child: str | None) -> list:
        tail = [] if child is None else [child]
        return [t, [t + days * 86_400, "e2"], "email", "6", "rfs", *tail]

    assert records.moves_child(old, fix(364, "B"))
    assert not records.moves_child(old, fix(364 + 1 / 86_400, "B"))
    assert not records.moves_child(old, fix(400, None))  # to no child: a move too
    assert records.moves_child(old, fix(400, "A"))  # the same child: nothing moves
    assert records.moves_child(old[:5], fix(400, "B"))  # it named no child: nothing to take
    kept = records.fold({"k": "contact", "p": 0, "rcv": old}, "contact", "rcv", fix(400, "B"), 0)
    assert kept is not None and records.Receipt.child_key(kept["rcv"]) == "A"
    assert records.children_before(kept["rcv"]) == [] and records.first_at(kept["rcv"]) == t
