"""A live cell's value multiset (``Values``) reads exactly as the ``Counter`` it replaced,
however its changes stand: appended, or summed and sorted."""

from __future__ import annotations

import pickle
from collections import Counter
from itertools import chain

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.state import multiset
from stream.state.multiset import SortedValues, Values

#: (value, how many more or fewer, whether to read the multiset just after)
changes_st = st.lists(st.tuples(st.sampled_from([0.0, 0.25, 1.0, 2.5, 7.125, 30.0, 0.0001]),
                                st.integers(-2, 3), st.booleans()), max_size=80)


@settings(max_examples=300, deadline=None)
@given(changes=changes_st, limit=st.integers(1, 8))
def test_live_values_read_as_a_counter_through_every_fold_of_their_changes(
        changes: list, limit: int) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(multiset, "_SLACK", limit)  # fold often: every path runs
        _check_against_a_counter(changes)


def _check_against_a_counter(changes: list) -> None:
    live, twin, model = Values(), Values(), Counter[float]()
    for value, n, read in changes:
        live.add(value, n)
        twin.add(value, n)  # never read: its entries stand as appended
        model[value] += n  # what Cell.add did to its Counter
        if model[value] <= 0:
            del model[value]
        if read:  # a read folds the changes in: between reads they pile up
            assert dict(live.items()) == dict(model) and len(live) == len(model)
    want = dict(model)
    assert list(live.items()) == sorted(want.items())  # ascending, folded at the read
    keys, counts = live.arrays()
    assert list(keys) == sorted(want) and min(counts, default=1) > 0
    assert all(live[v] == c and v in live for v, c in want.items())
    assert all(v not in live for v, _, _ in changes if v not in want)
    assert dict(pickle.loads(pickle.dumps(live))) == want
    merged = Values()
    merged.merge(live)
    merged.merge(Counter(want))
    assert dict(merged) == {v: 2 * c for v, c in want.items()}
    # a merge reads the entries as they stand (withdrawals too), untidied
    pending = twin.entry_count()
    copied = Values()
    copied.merge(twin)
    assert twin.entry_count() == pending and dict(copied) == want
    summed = SortedValues.of_entries(chain(twin.entries(), live.entries()))
    assert list(summed.items()) == sorted((v, 2 * c) for v, c in want.items())


def test_a_frozen_multiset_refuses_every_change() -> None:
    frozen_ = SortedValues(Counter({0.5: 2}))
    with pytest.raises(TypeError):
        frozen_.add(0.5, 1)
    with pytest.raises(TypeError):
        frozen_.merge({1.0: 1})
    assert dict(frozen_) == {0.5: 2}


def test_bytes_of_unequal_arrays_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        multiset.from_bytes(b"\0" * 16, b"\0" * 8)


def test_repeated_values_are_summed_as_they_come_not_kept_one_entry_each() -> None:
    import tracemalloc

    tracemalloc.start()
    try:
        live = Values()
        for i in range(20_000):  # whole days: 30 distinct values, each 666 or 667 times
            live.add(float(i % 30), +1)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert dict(live) == {float(d): 667 if d < 20 else 666 for d in range(30)}
    assert held < 4_000  # 20,000 entries kept would be 320,000 bytes


def test_a_multiset_merged_into_itself_doubles() -> None:
    live = Values({0.5: 2, 1.0: 1})
    live.merge(live)
    assert dict(live) == {0.5: 4, 1.0: 2}
