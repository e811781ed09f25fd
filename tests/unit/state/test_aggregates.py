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
