"""Additive figure cells, kept per partition.

A cell is the sum of the facts with one ``(figure, labels)``: a count, a sum of
values and the multiset of values (rounded to ``VALUE_DECIMALS``), from which
medians, 90th percentiles and "share within N" are exact. Cells are additive,
so partitions, workers and months merge by plain addition, and a record's
old contribution can be withdrawn exactly when it changes.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import ItemsView, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from stream.state.facts import Fact

#: Values are kept to 1e-4 (days: ~9 s; seconds: 0.1 ms): exact for the
#: integer seconds telephony sends and far below the report's 0.1-day rounding.
VALUE_DECIMALS = 4
#: a cell's sum is kept as an integer count of these (1e4 per unit): integer addition,
#: so any order of adds and withdrawals gives the same sum, and the sum of values all
#: withdrawn is exactly 0 (a float sum kept its last bits: -5.6e-17 days)
SCALE: int = 10_000  # 10 ** VALUE_DECIMALS

CellKey = tuple[str, tuple[str, ...]]


@dataclass
class Cell:
    """Count, sum and value multiset of one figure/label combination."""

    count: int = 0
    #: the sum of the values, in 1/``SCALE`` units
    units: int = 0
    values: Counter[float] = field(default_factory=Counter)

    @property
    def total(self) -> float:
        """The sum of the values (to ``VALUE_DECIMALS``)."""
        return self.units / SCALE

    def add(self, value: float | None, sign: int) -> None:
        self.count += sign
        if value is not None:
            rounded = round(value, VALUE_DECIMALS)
            self.units += sign * round(rounded * SCALE)
            self.values[rounded] += sign
            if self.values[rounded] <= 0:
                del self.values[rounded]

    def at_most(self, threshold: float) -> int:
        """How many values are ``<= threshold`` (values are kept to ``VALUE_DECIMALS``)."""
        return sum(n for v, n in self.values.items() if v <= threshold)

    def merge(self, other: Cell) -> None:
        self.count += other.count
        self.units += other.units
        self.values.update(other.values)

    def to_json(self) -> list[Any]:
        return [self.count, self.total, [[v, n] for v, n in sorted(self.values.items())]]

    @classmethod
    def from_json(cls, raw: list[Any]) -> Cell:
        return cls(int(raw[0]), round(float(raw[1]) * SCALE),
                   Counter({float(v): int(n) for v, n in raw[2]}))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (a checkpoint's tail) with its multiset as two machine arrays.

        A pickled ``Counter`` is rebuilt from a dict made for the purpose and then
        dropped: with a national year's 5.4 million values those dicts left about
        260 MB of freed heap behind the restart (BENCHMARKS.md, step 44). Arrays are
        read straight into the one ``Counter`` kept. Native byte order: a checkpoint is
        read back by the worker that wrote it, on its own data directory.
        """
        values = self.values
        return (_cell, (self.count, self.units, array("d", values).tobytes(),
                        array("q", values.values()).tobytes()))


def _cell(count: int, units: int, values: bytes, counts: bytes) -> Cell:
    """A ``Cell`` from ``Cell.__reduce__``'s arrays (values and their counts, in step)."""
    keys, ns = array("d"), array("q")
    keys.frombytes(values)
    ns.frombytes(counts)
    multiset: Counter[float] = Counter()
    dict.update(multiset, zip(keys.tolist(), ns.tolist(), strict=True))
    return Cell(count, units, multiset)


class Aggregates:
    """The cells of one partition (or a merge of several)."""

    def __init__(self) -> None:
        self.cells: dict[CellKey, Cell] = {}
        #: keys of the cells ``apply`` touched since a reader last took them: lets a
        #: merge of several partitions be brought up to date cell by cell
        self.changed: set[CellKey] = set()

    def apply(self, facts: Iterable[Fact], sign: int) -> None:
        """Add (sign=+1) or withdraw (sign=-1) facts."""
        cells = self.cells
        changed = self.changed
        for figure, labels, value in facts:
            key = (figure, labels)
            changed.add(key)
            cell = cells.get(key)
            if cell is None:
                cell = cells[key] = Cell()
            cell.add(value, sign)
            if cell.count == 0:
                del cells[key]

    def replace(self, old: list[Fact], new: list[Fact]) -> None:
        """Swap a record's old contribution for its new one.

        Facts the two share are left alone: a change to a case record moves few of
        its facts (a decision adds its own and leaves the receipt's), and a shared
        fact withdrawn and added again would change nothing but the float total's
        last bits and the cell's identity (the scrape caches by it).
        """
        if old:
            added = list(new)
            gone = []
            for fact in old:  # a multiset difference: a record's facts are a handful
                try:
                    added.remove(fact)
                except ValueError:
                    gone.append(fact)
            self.apply(gone, -1)
            new = added
        self.apply(new, +1)

    def merge(self, other: Aggregates) -> None:
        for key, cell in other.cells.items():
            mine = self.cells.get(key)
            if mine is None:
                mine = self.cells[key] = Cell()
            mine.merge(cell)

    def figure(self, name: str) -> Iterator[tuple[tuple[str, ...], Cell]]:
        """(labels, cell) of every cell of one figure."""
        for (figure, labels), cell in self.cells.items():
            if figure == name:
                yield labels, cell

    def to_json(self) -> list[Any]:
        return [[figure, list(labels), cell.to_json()]
                for (figure, labels), cell in sorted(self.cells.items())]

    @classmethod
    def from_json(cls, raw: list[Any]) -> Aggregates:
        agg = cls()
        for figure, labels, cell in raw:
            agg.cells[(figure, tuple(labels))] = Cell.from_json(cell)
        return agg


class SortedValues(Mapping[float, int]):
    """A read-only value multiset held as two machine arrays: the distinct values in
    ascending order and their counts, 16 bytes a value where a ``Counter`` entry takes
    about 33 (besides the float it shares).

    What a merged cell that is only read keeps (``frozen``): a national year's merged
    cells hold 5.4 million values, and a ``Counter`` of each took 170 MB beside the
    partitions' own (BENCHMARKS.md, step 44). Any attempt to change it raises.
    """

    __slots__ = ("counts", "keys_sorted")

    def __init__(self, values: Mapping[float, int]) -> None:
        ordered = sorted(v for v, n in values.items() if n)
        #: the distinct values, ascending
        self.keys_sorted = array("d", ordered)
        #: each value's count, in step with ``keys_sorted``
        self.counts = array("q", map(values.__getitem__, ordered))

    def __getitem__(self, value: float) -> int:
        keys = self.keys_sorted
        i = bisect_left(keys, value)
        if i == len(keys) or keys[i] != value:
            raise KeyError(value)
        return self.counts[i]

    def __iter__(self) -> Iterator[float]:
        return iter(self.keys_sorted)

    def __len__(self) -> int:
        return len(self.keys_sorted)

    def items(self) -> ItemsView[float, int]:
        """(value, count) pairs in ascending order of value, read off the arrays."""
        return _SortedItems(self)

    def __repr__(self) -> str:
        return f"SortedValues({dict(self.items())!r})"


class _SortedItems(ItemsView[float, int]):
    _mapping: SortedValues

    def __iter__(self) -> Iterator[tuple[float, int]]:
        values = self._mapping
        return zip(values.keys_sorted, values.counts, strict=True)


def frozen(cell: Cell) -> Cell:
    """``cell`` with its multiset as ``SortedValues``: for a merged cell that is only
    read (``Cell.add`` and ``Cell.merge`` on it raise, as they should)."""
    if cell.values:
        cell.values = cast("Counter[float]", SortedValues(cell.values))
    return cell


def merged(parts: Iterable[Aggregates]) -> Aggregates:
    """One Aggregates holding the sum of several."""
    total = Aggregates()
    for part in parts:
        total.merge(part)
    return total


def merged_cell(parts: Iterable[Aggregates], key: CellKey) -> Cell | None:
    """The sum of one cell over several partitions (None: no partition has it).

    Merges in the order given, as ``merged`` does, so both give equal totals.
    """
    total: Cell | None = None
    for part in parts:
        cell = part.cells.get(key)
        if cell is not None:
            if total is None:
                total = Cell()
            total.merge(cell)
    return total
