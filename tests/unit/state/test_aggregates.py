"""Aggregates.replace: swapping a record's facts equals recounting from scratch."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stream.state.aggregates import Aggregates

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
