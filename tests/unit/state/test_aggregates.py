"""Aggregates.replace: swapping a record's facts equals recounting from scratch; a cell's
compact forms (pickled, frozen) read as the cell."""

from __future__ import annotations

import pickle
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.state.aggregates import Aggregates, Cell, SortedValues, Values, frozen

fact = st.tuples(st.sampled_from(["received", "decided", "completed"]),
                 st.sampled_from([("2024-01", "police"), ("2024-02", "school")]),
                 st.one_of(st.none(), st.sampled_from([0.0, 0.25, 1.0, 2.5, 7.125])))
facts = st.lists(fact, max_size=6)


def counted(*groups: list) -> Aggregates:
    agg = Aggregates()
    for group in groups:
        agg.apply(group, +1)
    return agg


@settings(max_examples=300, deadline=None)
@given(base=facts, old=facts, new=facts)
def test_replace_equals_a_recount(base: list, old: list, new: list) -> None:
    agg = counted(base, old)
    agg.changed.clear()
    agg.replace(old, new)
    assert agg.to_json() == counted(base, new).to_json()
    # every cell whose content moved is reported changed (the scrape re-merges those)
    before, after = counted(base, old).cells, agg.cells
    moved = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert moved <= agg.changed


def test_shared_facts_leave_their_cell_alone() -> None:
    receipt = ("received", ("2024-01", "police"), None)
    decision = ("decided", ("2024-01", "police"), 0.25)
    agg = counted([receipt])
    cell = agg.cells[(receipt[0], receipt[1])]
    agg.changed.clear()
    agg.replace([receipt], [receipt, decision])
    assert agg.cells[(receipt[0], receipt[1])] is cell  # not withdrawn and made again
    assert agg.changed == {(decision[0], decision[1])}


def test_a_sum_is_exact_in_any_order_and_nothing_left_is_zero() -> None:
    agg = Aggregates()
    # two completions of 0 days stay; two others come and go (a corrected receipt)
    agg.apply([("d", ("m",), 0.0), ("d", ("m",), 0.0), ("d", ("m",), 0.125),
               ("d", ("m",), 0.4583)], +1)
    agg.apply([("d", ("m",), 0.125), ("d", ("m",), 0.4583)], -1)
    cell = agg.cells[("d", ("m",))]
    assert (cell.count, cell.total) == (2, 0.0)  # a float sum left -5.6e-17 days
    agg.apply([("d", ("m",), 0.1), ("d", ("m",), 0.2), ("d", ("m",), 0.3)], +1)
    agg.apply([("d", ("m",), 0.1), ("d", ("m",), 0.2)], -1)
    assert cell.total == 0.3  # a float sum gave 0.3000000000000001


# -- the compact forms: a checkpoint's cells and a scrape's merged ones ---------------------

values_st = st.lists(st.tuples(st.floats(0, 400, allow_nan=False), st.integers(1, 3)),
                     max_size=40)


def _cell(pairs: list[tuple[float, int]]) -> Cell:
    cell = Cell()
    for value, n in pairs:
        for _ in range(n):
            cell.add(value, +1)
    return cell


@settings(max_examples=200, deadline=None)
@given(pairs=values_st)
def test_a_pickled_cell_reads_back_equal_without_a_counter_in_its_pickle(pairs: list) -> None:
    cell = _cell(pairs)
    data = pickle.dumps(cell, protocol=pickle.HIGHEST_PROTOCOL)
    back = pickle.loads(data)
    assert (back.count, back.units, dict(back.values)) == (cell.count, cell.units,
                                                           dict(cell.values))
    assert type(back.values) is Values and back.to_json() == cell.to_json()
    # the multiset travels as two arrays: no Counter (nor a dict made for it) is pickled
    assert b"Counter" not in data
    back.add(1.5, +1)  # and the one read back is a live cell's
    assert back.values[1.5] == cell.values.get(1.5, 0) + 1


@settings(max_examples=200, deadline=None)
@given(pairs=values_st, threshold=st.floats(0, 400, allow_nan=False))
def test_a_frozen_cell_reads_as_its_counter_did(pairs: list, threshold: float) -> None:
    cell = _cell(pairs)
    want = (cell.to_json(), cell.at_most(threshold), dict(cell.values), len(cell.values))
    frozen_ = frozen(_cell(pairs))
    assert (frozen_.to_json(), frozen_.at_most(threshold), dict(frozen_.values),
            len(frozen_.values)) == want
    assert list(frozen_.values) == sorted(cell.values)  # ascending
    for value, n in cell.values.items():
        assert frozen_.values[value] == n and value in frozen_.values
    assert 401.0 not in frozen_.values and frozen_.values.get(-1.0) is None


def test_a_frozen_cell_is_never_changed() -> None:
    cell = frozen(_cell([(0.5, 2), (1.25, 1)]))
    assert isinstance(cell.values, SortedValues)
    with pytest.raises(TypeError):
        cell.add(0.5, +1)
    with pytest.raises((TypeError, AttributeError)):
        cell.merge(_cell([(3.0, 1)]))
    assert dict(cell.values) == {0.5: 2, 1.25: 1}
    assert frozen(Cell()).values == Counter()  # (an empty one reads empty)


# -- a live cell's values: sorted arrays and a few changes (step 45) ------------------------

def test_a_cell_from_before_step_44_reads_back_live() -> None:
    # such a checkpoint pickled a Cell's fields with its multiset as a Counter
    old = Cell.__new__(Cell)
    old.__setstate__({"count": 3, "units": 5000, "values": Counter({0.25: 2, 0.0: 1})})
    assert type(old.values) is Values and dict(old.values) == {0.0: 1, 0.25: 2}
    old.add(0.25, -1)
    assert old.to_json() == [2, 0.25, [[0.0, 1], [0.25, 1]]]


def test_a_live_cell_holds_its_values_in_under_40_bytes_each() -> None:
    # A national year's cells hold 5.4 million values; as a Counter each took about 60
    # bytes (the entry and its float), more than the worker's whole fork budget allowed.
    import random
    import tracemalloc

    rng = random.Random(7)
    values = [round(rng.uniform(0, 30), 4) for _ in range(20_000)]
    tracemalloc.start()
    try:
        cell = Cell()
        for v in values:  # one at a time, as the fold adds them
            cell.add(v, +1)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert cell.count == 20_000 and sum(cell.values.values()) == 20_000
    assert held / len(set(values)) < 40
