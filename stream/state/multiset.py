"""Value multisets of figure cells: value -> how many times it was seen.

A national year's cells hold 5.4 million distinct values (contact completions in working
and calendar days, to 1e-4). As ``Counter`` entries, each with its own float, they took
about 55 bytes a value; held here as two machine arrays (values, counts) they take 16
(BENCHMARKS.md, steps 44 and 45). Medians, 90th percentiles and histogram buckets read
the arrays sorted.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import ItemsView, Iterable, Iterator, Mapping
from typing import Any


class Multiset(Mapping[float, int]):
    """What every value multiset of a cell answers: read as a mapping (value -> count,
    values ascending), or as its two arrays."""

    __slots__ = ()

    def arrays(self) -> tuple[array[float], array[int]]:
        """(the distinct values ascending, their counts): read them, never change them."""
        raise NotImplementedError

    def entry_arrays(self) -> tuple[array[float], array[int]]:
        """(values, counts) as kept, a value perhaps more than once, counts to be summed
        (a withdrawal negative): what a merge reads, no tidy. Never change them."""
        return self.arrays()

    def entries(self) -> Iterator[tuple[float, int]]:
        """The pairs of ``entry_arrays``: no sorting, no look-ups."""
        return zip(*self.entry_arrays(), strict=True)

    def entry_count(self) -> int:
        """How many entries ``entries`` gives (at least the distinct values): no tidy."""
        return len(self.entry_arrays()[0])

    def add(self, value: float, n: int) -> None:
        """Refused: a frozen multiset never changes."""
        raise TypeError("a frozen cell's values cannot change")

    def merge(self, other: Mapping[float, int]) -> None:
        """Refused: a frozen multiset never changes."""
        raise TypeError("a frozen cell's values cannot change")

    def __getitem__(self, value: float) -> int:
        keys, counts = self.arrays()
        i = bisect_left(keys, value)
        if i == len(keys) or keys[i] != value:
            raise KeyError(value)
        return counts[i]

    def __iter__(self) -> Iterator[float]:
        return iter(self.arrays()[0])

    def __len__(self) -> int:
        return len(self.arrays()[0])

    def items(self) -> ItemsView[float, int]:
        """(value, count) pairs in ascending order of value, read off the arrays."""
        return _SortedItems(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self.items())!r})"


class SortedValues(Multiset):
    """A read-only value multiset: the distinct values ascending and their counts.

    What a merged cell that is only read keeps (``frozen``). Any attempt to change one
    raises.
    """

    __slots__ = ("counts", "keys_sorted")

    def __init__(self, values: Mapping[float, int] | None = None) -> None:
        if isinstance(values, Multiset):
            keys, counts = values.arrays()
            #: the distinct values, ascending
            self.keys_sorted = array("d", keys)
            #: each value's count, in step with ``keys_sorted``
            self.counts = array("q", counts)
            return
        self.keys_sorted, self.counts = summed((values or {}).items())

    @classmethod
    def of_entries(cls, pairs: Iterable[tuple[float, int]]) -> SortedValues:
        """The (value, count) pairs summed per value (a value perhaps more than once)."""
        made = cls.__new__(cls)
        made.keys_sorted, made.counts = summed(pairs)
        return made

    def arrays(self) -> tuple[array[float], array[int]]:
        return self.keys_sorted, self.counts


#: a live multiset is tidied once its entries number more than twice the distinct values
#: it held when last tidied, plus this many
_SLACK = 32


class Values(Multiset):
    """A live cell's value multiset: every change appended to two machine arrays.

    ``add`` appends (value, count), a withdrawal as a negative count; a value may stand
    more than once. Once the entries number more than twice the distinct values at the
    last tidy (plus ``_SLACK``) they are summed per value, sorted, and the values left
    with none dropped; a read of the arrays tidies first. A cell whose values are mostly
    distinct (durations to 1e-4) so holds 16 bytes a value, and a change costs two
    appends and, amortised, about one tidied entry (BENCHMARKS.md, step 45). As a
    ``Counter`` did, a value is never held fewer than zero times: a withdrawal of more
    than is held withdraws what is held.
    """

    __slots__ = ("_counts", "_keys", "_limit", "_tidy")

    def __init__(self, values: Mapping[float, int] | None = None) -> None:
        self._keys: array[float] = array("d")
        self._counts: array[int] = array("q")
        self._tidy = 0  # entries at the last tidy: the arrays are sorted and distinct
        self._limit = _SLACK
        if values:
            self.merge(values)

    @classmethod
    def of_arrays(cls, keys: array[float], counts: array[int]) -> Values:
        """Taken as they are: sorted, distinct, counts positive (a ``Cell``'s pickle)."""
        made = cls()
        made._keys, made._counts, made._tidy = keys, counts, len(keys)
        made._limit = 2 * len(keys) + _SLACK
        return made

    def add(self, value: float, n: int) -> None:
        """``n`` more of ``value`` (fewer, for a negative ``n``)."""
        if n < 0:
            n = max(n, -max(self._held(value), 0))
            if not n:
                return
        self._keys.append(value)
        self._counts.append(n)
        if len(self._keys) > self._limit:
            self._tidy_up()

    def merge(self, other: Mapping[float, int]) -> None:
        """Add every value of ``other``, each as often as it holds it."""
        if isinstance(other, Multiset):
            # (arrays of the same types: one copy in C; self-safe, the sizes read first)
            keys, counts = other.entry_arrays()
            self._keys.extend(keys)
            self._counts.extend(counts)
        else:
            self._keys.extend(other.keys())
            self._counts.extend(other.values())
        if len(self._keys) > self._limit:
            self._tidy_up()

    def entry_arrays(self) -> tuple[array[float], array[int]]:
        return self._keys, self._counts

    def arrays(self) -> tuple[array[float], array[int]]:
        if len(self._keys) != self._tidy:
            self._tidy_up()
        return self._keys, self._counts

    def __getitem__(self, value: float) -> int:
        held = self._held(value)
        if held <= 0:
            raise KeyError(value)
        return held

    def _held(self, value: float) -> int:
        """How many of ``value`` the entries hold (a scan in C, no tidy)."""
        keys, counts, total, at = self._keys, self._counts, 0, -1
        while True:
            try:
                at = keys.index(value, at + 1)
            except ValueError:
                return total
            total += counts[at]

    def _tidy_up(self) -> None:
        self._keys, self._counts = summed(zip(self._keys, self._counts, strict=True))
        self._tidy = len(self._keys)
        self._limit = 2 * self._tidy + _SLACK

    def __reduce__(self) -> tuple[Any, ...]:
        keys, counts = self.arrays()
        return (from_bytes, (keys.tobytes(), counts.tobytes()))


class _SortedItems(ItemsView[float, int]):
    _mapping: Multiset

    def __iter__(self) -> Iterator[tuple[float, int]]:
        return zip(*self._mapping.arrays(), strict=True)


def summed(pairs: Iterable[tuple[float, int]]) -> tuple[array[float], array[int]]:
    """(value, count) pairs summed per value: (the values held more than zero times,
    ascending; their counts). A tidy and the scrape's merge of a cell's partitions."""
    counted: dict[float, int] = {}
    get = counted.get
    for value, n in pairs:
        counted[value] = get(value, 0) + n
    ordered = sorted(v for v, n in counted.items() if n > 0)
    return array("d", ordered), array("q", map(counted.__getitem__, ordered))


def from_bytes(values: bytes, counts: bytes) -> Values:
    """A ``Values`` from the bytes of its two arrays (``Cell`` and ``Values`` pickled)."""
    keys, ns = array("d"), array("q")
    keys.frombytes(values)
    ns.frombytes(counts)
    if len(keys) != len(ns):
        raise ValueError("a cell's values and counts differ in length")
    return Values.of_arrays(keys, ns)
