"""The worker's collector policy: thresholds applied, start-up frozen, cycles still freed;
freed C-heap pages handed back."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from stream.worker import collector


@pytest.fixture
def restored() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_tune_sets_the_thresholds_and_freezes_what_is_alive(restored: None) -> None:
    gc.unfreeze()
    alive = Node()
    collector.tune()
    assert gc.get_threshold() == collector.THRESHOLDS
    assert gc.get_freeze_count() > 0
    assert not any(obj is alive for obj in gc.get_objects())  # frozen: never scanned again


def garbage_cycle() -> weakref.ref[Node]:
    """Two nodes that refer to each other and nothing else: a weak reference to one."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_garbage_cycles_made_after_tune_are_still_freed(restored: None) -> None:
    collector.tune()
    gone = garbage_cycle()
    assert gone() is not None  # a cycle: reference counting alone cannot free it
    gc.collect()
    assert gone() is None


def test_no_garbage_cycle_is_frozen(restored: None) -> None:
    gc.unfreeze()
    gone = garbage_cycle()
    collector.tune()
    assert gone() is None  # collected before the freeze, not kept forever


def _rss() -> int:
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def test_give_back_returns_freed_heap_pages_to_the_kernel() -> None:
    # 200 MB of C-heap chunks (each past pymalloc's 512 bytes), then one more above them:
    # freed, they stay resident, since the heap's top is still in use, until given back
    bulk = [bytearray(1000) for _ in range(200_000)]
    top = bytearray(1000)
    del bulk
    before = _rss()
    seconds = collector.give_back()
    assert before - _rss() > 100 * 2**20
    assert 0 <= seconds < 5 and len(top) == 1000


def test_settle_freezes_the_state_loaded_since_start_up_and_frees_its_garbage_cycles(
        restored: None) -> None:
    # A recovery's bulk load: frozen by Worker.warm, never scanned on the loop again
    collector.tune()
    loaded = [Node() for _ in range(1_000)]
    gone = garbage_cycle()
    frozen_before = gc.get_freeze_count()
    seconds = collector.settle()
    assert gone() is None  # collected first: no garbage cycle is frozen for good
    assert gc.get_freeze_count() >= frozen_before + len(loaded)
    assert not any(obj is loaded[0] for obj in gc.get_objects())
    assert 0 <= seconds < 5


def test_no_collection_scans_more_than_a_few_young_generations_while_state_grows(
        restored: None) -> None:
    # Step 46: with (50,000, 20, 100) a middle collection scanned every container kept
    # since the last one (up to a million: 250 ms with 1,000,000 contacts folded).
    # Counted in containers scanned, not timed.
    scanned: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            scanned.append(sum(len(gc.get_objects(g)) for g in range(info["generation"] + 1)))

    collector.tune()
    gc.callbacks.append(count)
    try:
        kept = [(i, [i]) for i in range(150_000)]  # 300,000 containers kept, as a fold keeps
    finally:
        gc.callbacks.remove(count)
    assert len(kept) == 150_000 and len(scanned) > 100
    # The young generation and the survivors of 11 young collections: 24,026 here. The
    # old thresholds scanned 50,000 in every young collection.
    assert max(scanned) <= 30_000
