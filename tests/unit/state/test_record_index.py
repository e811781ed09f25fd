"""The per-partition bookkeeping shared by calls waiting and open partner requests."""

from __future__ import annotations

from stream.state.record_index import RecordIndex


class Opened(RecordIndex[str]):
    """A record of kind "case" holds open its "open" field, if any."""

    KIND = "case"

    def value_of(self, record):
        return None if record is None else record.get("open")


def filled() -> Opened:
    index = Opened()
    for part in (("a", 0), ("a", 1), ("b", 0)):
        index.update(part, "k1", {"k": "case", "open": f"{part[0]}{part[1]}"})
    return index


def test_update_keeps_what_each_record_holds_open_and_skips_other_kinds():
    index = filled()
    index.update(("a", 0), "k2", {"k": "call", "open": "not mine"})
    index.update(("a", 0), "k3", {"k": "case"})  # holds nothing open
    assert index.export(("a", 0)) == {"k1": "a0"}
    index.update(("a", 0), "k1", {"k": "case", "open": ""})  # closed
    index.update(("a", 1), "k1", None)  # deleted
    assert index.export(("a", 0)) == {} and index.export(("a", 1)) == {}
    assert index.values_of([("b", 0), ("c", 9)]) == ["b0"]


def test_drop_topic_forgets_its_partitions_but_those_kept():
    index = filled()
    index.drop_topic("a", keep={("a", 1)})
    assert index.values_of([("a", 0), ("a", 1), ("b", 0)]) == ["a1", "b0"]
    index.drop_partition(("b", 0))
    assert index.export(("b", 0)) is None


def test_a_checkpoint_round_trip_restores_each_partition():
    index, again = filled(), Opened()
    for part in (("a", 0), ("a", 1), ("b", 0), ("c", 0)):
        again.restore(part, index.export(part))
    assert again.values_of([("a", 0), ("a", 1), ("b", 0)]) == ["a0", "a1", "b0"]
    assert again.export(("c", 0)) is None
