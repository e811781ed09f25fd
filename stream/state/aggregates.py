"""Additive figure cells, kept per partition.

A cell is the sum of the facts with one ``(figure, labels)``: a count, a sum of
values and the multiset of values (rounded to ``VALUE_DECIMALS``), from which
medians, 90th percentiles and "share within N" are exact. Cells are additive,
so partitions, workers and months merge by plain addition, and a record's
old contribution can be withdrawn exactly when it changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from stream.state import multiset
from stream.state.facts import Fact
from stream.state.multiset import Multiset, SortedValues, Values

__all__ = ["SCALE", "VALUE_DECIMALS", "Aggregates", "Cell", "CellKey", "Multiset",
           "SortedValues", "Values", "frozen", "merged", "merged_cell"]

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
    #: value -> how many times it was seen: ``Values`` (changed by ``add`` and ``merge``),
    #: or ``SortedValues`` once ``frozen``. Any mapping given is taken as ``Values``.
    values: Multiset = field(default_factory=Values)

    def __post_init__(self) -> None:
        if not isinstance(self.values, Multiset):
            self.values = Values(self.values)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a checkpoint written before step 44 pickled the multiset as a Counter
        self.__dict__.update(state)
        self.__post_init__()

    @property
    def total(self) -> float:
        """The sum of the values (to ``VALUE_DECIMALS``)."""
        return self.units / SCALE

    def add(self, value: float | None, sign: int) -> None:
        self.count += sign
        if value is not None:
            rounded = round(value, VALUE_DECIMALS)
            self.units += sign * round(rounded * SCALE)
            self.values.add(rounded, sign)

    def at_most(self, threshold: float) -> int:
        """How many values are ``<= threshold`` (values are kept to ``VALUE_DECIMALS``)."""
        return sum(n for v, n in self.values.items() if v <= threshold)

    def merge(self, other: Cell) -> None:
        self.count += other.count
        self.units += other.units
        self.values.merge(other.values)

    def to_json(self) -> list[Any]:
        """``[count, total, [[value, count], ...]]``, values ascending."""
        keys, counts = self.values.arrays()
        return [self.count, self.total, list(map(list, zip(keys, counts, strict=True)))]

    @classmethod
    def from_json(cls, raw: list[Any]) -> Cell:
        return cls(int(raw[0]), round(float(raw[1]) * SCALE),
                   Values({float(v): int(n) for v, n in raw[2]}))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (a checkpoint's tail) with its multiset as its two machine arrays,
        read straight back into a ``Values`` (no dict is made for it either way).
        Native byte order: a checkpoint is read back by the worker that wrote it, on its
        own data directory.
        """
        keys, counts = self.values.arrays()
        return (_cell, (self.count, self.units, keys.tobytes(), counts.tobytes()))


def _cell(count: int, units: int, values: bytes, counts: bytes) -> Cell:
    """A ``Cell`` from ``Cell.__reduce__``'s arrays (values and their counts, in step).

    Its name is in every checkpoint's tail since step 44: it stays here.
    """
    return Cell(count, units, multiset.from_bytes(values, counts))


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


class Merged(Aggregates):
    """A merge kept between reads (``CellState.current``), with its cells also filed by
    figure as they are put and dropped.

    The scrape groups cells by figure at every render: a Python pass over every cell,
    up to 127 ms of the loop on a slow machine with the bench's state (BENCHMARKS.md,
    step 52). Kept filed, each figure's list is one C-level copy of its dict. Each
    figure's cells are in the order ``Aggregates.figure`` gives them: both dicts see
    the same puts and drops.
    """

    def __init__(self) -> None:
        super().__init__()
        self.by_figure: dict[str, dict[tuple[str, ...], Cell]] = {}

    def put(self, key: CellKey, cell: Cell) -> None:
        self.cells[key] = cell
        figure, labels = key
        filed = self.by_figure.get(figure)
        if filed is None:
            filed = self.by_figure[figure] = {}
        filed[labels] = cell

    def drop(self, key: CellKey) -> None:
        if self.cells.pop(key, None) is not None:
            figure, labels = key
            del self.by_figure[figure][labels]


def frozen(cell: Cell) -> Cell:
    """``cell`` with its multiset as ``SortedValues``: for a merged cell that is only
    read (``Cell.add`` and ``Cell.merge`` on it raise, as they should)."""
    if type(cell.values) is not SortedValues:
        cell.values = SortedValues(cell.values)
    return cell


def merged(parts: Iterable[Aggregates]) -> Aggregates:
    """One Aggregates holding the sum of several."""
    total = Aggregates()
    for part in parts:
        total.merge(part)
    return total


def merged_cell(parts: Iterable[Aggregates], key: CellKey) -> Cell | None:
    """The sum of one cell over several partitions (None: no partition has it), frozen:
    what ``merged`` gives for it, read-only (the scrape's merge, cell by cell)."""
    cells = [cell for part in parts if (cell := part.cells.get(key)) is not None]
    if not cells:
        return None
    # each partition's entries as they stand: no tidy, no look-ups
    values = SortedValues.of_entries(chain.from_iterable(c.values.entries() for c in cells))
    return Cell(sum(c.count for c in cells), sum(c.units for c in cells), values)
