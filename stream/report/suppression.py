"""Suppression of a published report: no hidden count can be worked back from the rest.

Primary suppression hides every count of 1 to 5. A count hidden alone in a sum would
come back by subtraction (a month from the row's Total, a category from its column's
total, a cell of the completion cross-tab from its margins), so secondary suppression
hides more counts until none can be derived. The equations an attacker has are every
published identity between counts, across tables that share them:

* each row's months sum to its Total (and each month row of a transposed table to
  its Total row);
* category rows sum to the count they split: outcomes of MAP enquiries to the
  enquiries completed, agencies-consulted bins to their count (which is the enquiries
  completed), days bins to their count, services to the Level 3 total, channels to
  the contacts received, grades to a team's audits; calls plus emails are the
  enquiries; the agencies named sum to the bins weighted by their number of agencies;
* the completion cross-tab's counts sum along its rows and columns to the Grand Totals.

Method (``protect``): after the primary step, to a fixed point, (1) an equation with
exactly one hidden count hides its smallest other count (a positive one when there is
one: a hidden zero cannot be moved down); (2) a hidden count that the equations still
determine (exact linear algebra over the hidden counts of each connected set of
equations) hides the smallest count of an equation it is in. A percentage, average,
median or percentile whose count (numerator or base) is hidden is hidden with it.
Every published value stays the true one: nothing is perturbed, totals included.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from fractions import Fraction
from math import lcm
from typing import Any

from stream.report import partners
from stream.report.tables import Report, Row, Table, Value

METHOD = ("Secondary suppression: further counts are hidden (smallest first) until no "
          "hidden count can be worked out from any row, column or table total, or from "
          "the identities between tables (calls + emails = enquiries; outcomes, agency "
          "bins and day bins add up to their totals); a percentage or average of a "
          "hidden count is hidden too. Every figure shown is the true figure.")

#: a count of the report: a row and a column index (for completion tables, the base)
Cell = tuple[int, int]
#: sum of coefficient x cell = 0
Equation = tuple[tuple[int, Cell], ...]


def primary(v: Value) -> bool:
    """A count, or the count behind a figure, of 1 to 5."""
    if v.kind == "count":
        return v.value is not None and 1 <= v.value <= 5
    return v.base is not None and 1 <= v.base <= 5


class _Model:
    """The report's counts (cells keyed by row number and column) and their equations."""

    def __init__(self) -> None:
        self.values: dict[Cell, int] = {}
        self.equations: list[Equation] = []
        #: row number (in the order the model meets rows) -> the row's id(). Cells are
        #: keyed by row number, not id(): ids differ from process to process, and the
        #: cells' order breaks ties, so a republication must hide the same cells.
        self.row_ids: dict[int, int] = {}
        self._numbers: dict[int, int] = {}

    def cell(self, row: Row, i: int) -> Cell | None:
        """The count at ``row``'s column ``i``; None for N/A (known zero)."""
        v = row.cells[i]
        n = v.value if v.kind == "count" else (None if v.not_applicable else v.base)
        if n is None:
            return None
        number = self._numbers.setdefault(id(row), len(self._numbers))
        self.row_ids[number] = id(row)
        self.values[(number, i)] = round(n)
        return (number, i)

    def add(self, terms: Iterable[tuple[int, Row, int]]) -> None:
        """An equation: sum of coefficient x the count at (row, column) = 0."""
        eq = tuple((k, c) for k, row, i in terms if k and (c := self.cell(row, i)) is not None)
        if len(eq) > 1:
            self.equations.append(eq)

    def total(self, row: Row) -> None:
        """The months of a count row sum to its Total (the last column)."""
        last = len(row.cells) - 1
        self.add([*((1, row, i) for i in range(last)), (-1, row, last)])

    def split(self, whole: Row, parts: Sequence[Row], weights: Sequence[int] | None = None,
              ) -> None:
        """In every column, the parts (times their weights) sum to the whole."""
        for i in range(len(whole.cells)):
            ks = weights or [1] * len(parts)
            self.add([*((k, p, i) for k, p in zip(ks, parts, strict=True)), (-1, whole, i)])


def _model(report: Report) -> _Model:
    m = _Model()
    rfs, mp, info, com = report.rfs, report.map, report.info_advice, report.commentary
    counts = [rfs.calls, rfs.emails, *rfs.outcomes, rfs.enquiries, mp.completed,
              mp.agencies.count, *mp.agencies_distribution, *mp.by_agency, *mp.by_outcome,
              *info.by_service, info.total, com.contacts_received, *com.contacts_by_channel,
              com.early_help_allocation.count]
    for block in (mp.days_working, mp.days_calendar):
        counts += [block.stats.count, *block.distribution]
        m.split(block.stats.count, block.distribution)
    for team in report.audits.teams:
        counts += [*team.by_grade, team.total]
        m.split(team.total, team.by_grade)
    counts += report.audits.activity
    counts += partners.count_rows(report.partners)
    for row in counts:
        m.total(row)
    m.split(rfs.enquiries, (rfs.calls, rfs.emails))
    m.split(mp.completed, mp.by_outcome)
    m.split(mp.completed, (mp.agencies.count,))
    m.split(mp.days_working.stats.count, (mp.days_calendar.stats.count,))  # (the HTML shows both)
    m.split(mp.agencies.count, mp.agencies_distribution)
    for i in range(len(mp.completed.cells)):  # agencies named = sum of n x "n agencies"
        m.add([*((1, r, i) for r in mp.by_agency),
               *((-int(r.key), r, i) for r in mp.agencies_distribution if int(r.key))])
    m.split(info.total, info.by_service)
    m.split(com.contacts_received, com.contacts_by_channel)
    _cross_tab(m, com.completion_means)
    return m


def _cross_tab(m: _Model, table: Table) -> None:
    """The completion counts: each row sums to its Grand Total, each column too."""
    *inner, grand = table.rows
    for row in table.rows:
        last = len(row.cells) - 1
        m.add([*((1, row, j) for j in range(last)), (-1, row, last)])
    for j in range(len(grand.cells)):
        m.add([*((1, row, j) for row in inner), (-1, grand, j)])


# ------------------------------------------------------------------------ the method


def _smallest(m: _Model, cells: Iterable[Cell], hidden: set[Cell]) -> Cell | None:
    """The next count to hide: the smallest shown, a positive one if there is one."""
    shown = [c for c in cells if c not in hidden]
    return min(shown, key=lambda c: (m.values[c] == 0, m.values[c], c), default=None)


def _singletons(m: _Model, hidden: set[Cell]) -> bool:
    """Hide a second count in every equation with one hidden; whether any was."""
    changed, again = False, True
    while again:
        again = False
        for eq in m.equations:
            cells = [c for _, c in eq]
            if sum(c in hidden for c in cells) == 1:
                pick = _smallest(m, cells, hidden)
                if pick is not None:
                    hidden.add(pick)
                    changed = again = True
    return changed


def _components(eqs: Sequence[Equation], hidden: set[Cell]) -> list[list[Equation]]:
    """Equations grouped by the hidden counts they share (union-find)."""
    parent: dict[Cell, Cell] = {}

    def find(c: Cell) -> Cell:
        while parent.setdefault(c, c) != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    for eq in eqs:
        unknown = [c for _, c in eq if c in hidden]
        for c in unknown[1:]:
            parent[find(c)] = find(unknown[0])
    groups: dict[Cell, list[Equation]] = {}
    for eq in eqs:
        first = next((c for _, c in eq if c in hidden), None)
        if first is not None:
            groups.setdefault(find(first), []).append(eq)
    return list(groups.values())


def _reduced(eqs: Sequence[Equation], hidden: set[Cell],
             ) -> list[tuple[Cell, dict[Cell, Fraction]]]:
    """Reduced row echelon form over the rationals of the equations' hidden counts (the
    shown counts moved to the right-hand side): (pivot, row) pairs."""
    pivots: list[tuple[Cell, dict[Cell, Fraction]]] = []
    for eq in eqs:
        row = {c: Fraction(k) for k, c in eq if c in hidden}
        for col, prow in pivots:  # reduce by the pivots so far
            if (f := row.get(col)) is not None:
                for c, v in prow.items():
                    row[c] = row.get(c, Fraction(0)) - f * v
                row = {c: v for c, v in row.items() if v}
        if not row:
            continue
        col = min(row)
        lead = row[col]
        row = {c: v / lead for c, v in row.items()}
        for i, (pc, prow) in enumerate(pivots):  # keep the form reduced
            if (f := prow.get(col)) is not None:
                merged = {c: prow.get(c, Fraction(0)) - f * row.get(c, Fraction(0))
                          for c in set(prow) | set(row)}
                pivots[i] = (pc, {c: v for c, v in merged.items() if v})
        pivots.append((col, row))
    return pivots


def _moves(pivots: list[tuple[Cell, dict[Cell, Fraction]]], unknown: set[Cell],
           ) -> list[dict[Cell, int]]:
    """Whole-number changes of the hidden counts that keep every equation true: a basis
    of the kernel, one vector per free count."""
    bound = {col for col, _ in pivots}
    basis = []
    for free in sorted(unknown - bound):
        vec = {free: Fraction(1)}
        vec.update((col, -row[free]) for col, row in pivots if row.get(free))
        scale = lcm(*(v.denominator for v in vec.values()))
        basis.append({c: int(v * scale) for c, v in vec.items()})
    return basis


def _unprotected(m: _Model, eqs: Sequence[Equation], hidden: set[Cell]) -> list[Cell]:
    """Hidden counts of these equations with no witness of a second value: a move (a
    kernel vector, or the sum or difference of two) changing the count and keeping
    every count >= 0, either way. Counts the equations fix have no such move at all;
    the others may still be pinned by the zeros around them."""
    unknown = {c for eq in eqs for _, c in eq if c in hidden}
    basis = _moves(_reduced(eqs, hidden), unknown)

    def fits(move: dict[Cell, int]) -> bool:
        return (all(m.values[c] + v >= 0 for c, v in move.items())
                or all(m.values[c] - v >= 0 for c, v in move.items()))

    out = []
    for c in sorted(unknown):
        touching = [b for b in basis if b.get(c)]
        if any(fits(b) for b in touching):
            continue
        pairs = ({k: a.get(k, 0) + s * b.get(k, 0) for k in set(a) | set(b)}
                 for a in touching for b in basis if b is not a for s in (1, -1))
        if not any(p.get(c) and fits(p) for p in pairs):
            out.append(c)
    return out


def hidden_counts(m: _Model) -> set[Cell]:
    """Primary suppression, then secondary to the fixed point (the module's method)."""
    hidden = {c for c, n in m.values.items() if 1 <= n <= 5}
    while True:
        _singletons(m, hidden)
        added = False
        for eqs in _components(m.equations, hidden):
            for c in _unprotected(m, eqs, hidden):
                around = {d for eq in eqs if any(c == x for _, x in eq) for _, d in eq}
                pick = (_smallest(m, around, hidden)
                        or _smallest(m, (d for eq in eqs for _, d in eq), hidden))
                if pick is not None:
                    hidden.add(pick)
                    added = True
                    break  # one at a time: the next may be protected by this one
        if not added:
            return hidden


def _links(report: Report) -> list[tuple[Row, tuple[Row, ...]]]:
    """(figure row, the count rows it is computed from): hidden where any of them is."""
    rfs, mp, com = report.rfs, report.map, report.commentary
    level_4 = tuple(r for r in mp.by_outcome if r.key == "level_4")
    out: list[tuple[Row, tuple[Row, ...]]] = [
        (rfs.email_share, (rfs.emails, rfs.enquiries)),
        (mp.progress_level_4, (mp.completed, *level_4)),
    ]
    for stats in (mp.agencies, mp.days_working.stats, mp.days_calendar.stats,
                  com.early_help_allocation):
        out += [(row, (stats.count,)) for row in (stats.average, stats.median, stats.p90)]
    out += [(block.within_1_day, (block.stats.count,))
            for block in (mp.days_working, mp.days_calendar)]
    for table in (com.completion_medians, com.completion_p90):
        out += list(zip(table.rows, ((r,) for r in com.completion_means.rows), strict=True))
    return out


def _rebuild(obj: Any, hide: dict[int, set[int]], memo: dict[int, Any]) -> Any:
    """A copy of the report's tree with the cells in ``hide`` (row id -> columns) hidden;
    rows shared between sections stay shared."""
    if id(obj) in memo:
        return memo[id(obj)]
    out: Any = obj
    if isinstance(obj, Row):
        cols = hide.get(id(obj), set())
        out = dataclasses.replace(obj, cells=tuple(
            dataclasses.replace(v, hidden=True) if i in cols else v
            for i, v in enumerate(obj.cells)))
    elif isinstance(obj, tuple):
        out = tuple(_rebuild(x, hide, memo) for x in obj)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, (type, Value)):
        out = dataclasses.replace(obj, **{f.name: _rebuild(getattr(obj, f.name), hide, memo)
                                          for f in dataclasses.fields(obj)})
    memo[id(obj)] = out
    return out


def protect(report: Report) -> Report:
    """The report with every count, and figure of a count, that publication must hide
    marked ``hidden`` (primary and secondary suppression, see the module's doc)."""
    hide: dict[int, set[int]] = {}
    model = _model(report)
    for number, col in hidden_counts(model):
        hide.setdefault(model.row_ids[number], set()).add(col)
    for row, sources in _links(report):
        for src in sources:
            hide.setdefault(id(row), set()).update(hide.get(id(src), ()))
    rebuilt: Report = _rebuild(report, hide, {})
    return rebuilt
