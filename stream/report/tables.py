"""The report tables, computed from merged cells (no I/O, no rounding).

``compute_report`` turns an ``Aggregates`` (the cells of every partition, merged)
into a ``Report``: a frozen tree of rows of exact ``Value``s, one per report
month and one for the whole range ("Total"). Rounding, suppression and layout
happen only when a report is rendered (``stream.report.render``).

Conventions:

* A count is the number of facts of a cell; a ``Value`` of kind ``percent`` is
  0-100 and carries its denominator as ``base``; an average, median or 90th
  percentile carries the number of values it summarises as ``base``.
* ``Value(None, base=None)`` is "N/A": the category did not exist in that month
  (taxonomy ``valid_from``). ``Value(None, base=0)`` is an average of nothing.
* Totals of percentages follow the period combination: ``ratio_of_sums`` pools
  numerators and denominators over the months; ``mean_of_months`` (legacy) is
  the plain mean of the monthly percentages of the months that have calls.
  Averages, medians and percentiles of a range always pool the months' values.
* Percentiles are nearest-rank (see ``nearest_rank``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Literal

from stream.contract.taxonomy import Taxonomy
from stream.report import expected_range
from stream.report.expected_range import Judgement
from stream.settings import PeriodCombination
from stream.state import calls, contacts, map_enquiries
from stream.state import emails as email_family
from stream.state.aggregates import Aggregates, Cell
from stream.state.calls import CallDefinitions, call_parts
from stream.state.families import LABELS
from stream.state.quality import coverage

if TYPE_CHECKING:  # rates.py and partners.py build on this module's types
    from stream.report.partners import PartnersSection
    from stream.report.rates import National, Population, RatesSection
    from stream.report.repeats import RepeatsSection

Kind = Literal["count", "percent", "days", "number"]
DayBasis = Literal["working", "calendar"]
MonthAxis = Literal["columns", "rows", "none"]
TOTAL = "total"
_MONTH = re.compile(r"\d{4}-\d{2}")
DAY_BINS = ("0", "1", "2", "3", "4", "5+")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class ReportDefinitions(CallDefinitions):
    """The definitions a report is computed under (all printed with it): the call
    figures' (``stream.state.calls``), and which days a duration counts."""

    day_basis: DayBasis = "working"
    #: the target line of the timeliness charts (% of progressions within timescale)
    timeliness_target_percent: float = 80.0


@dataclass(frozen=True)
class Value:
    """One exact figure; ``base`` is the count behind an average or percentage."""

    value: float | None
    kind: Kind = "count"
    base: int | None = None
    #: hidden in a published report by secondary suppression (``stream.report.suppression``)
    hidden: bool = False

    @property
    def not_applicable(self) -> bool:
        return self.value is None and self.base is None


@dataclass(frozen=True)
class Row:
    """One figure for a category: a value per column."""

    key: str
    label: str
    cells: tuple[Value, ...]
    #: the figure a category row belongs to ("contacts_decided" for key "level_1");
    #: empty when the row is a figure of its own
    figure: str = ""


@dataclass(frozen=True)
class Table:
    """A laid-out table of values, as every renderer shows it."""

    key: str
    title: str
    corner: str
    column_keys: tuple[str, ...]
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    month_axis: MonthAxis = "columns"
    show_base: bool = False  # averages shown with their counts ("1.8 (6)")

    def row(self, key: str) -> Row:
        for row in self.rows:
            if row.key == key:
                return row
        raise KeyError(key)

    def value(self, row_key: str, column_key: str) -> Value:
        return self.row(row_key).cells[self.column_keys.index(column_key)]


@dataclass(frozen=True)
class Axis:
    """The report's columns: its months, then the Total."""

    months: tuple[str, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return (*self.months, TOTAL)

    @property
    def labels(self) -> tuple[str, ...]:
        return (*(month_label(m) for m in self.months), "Total")

    def table(self, key: str, title: str, corner: str, rows: Iterable[Row]) -> Table:
        return Table(key, title, corner, self.keys, self.labels, tuple(rows))


def month_label(month: str) -> str:
    """"2019-08" -> "Aug 2019"."""
    year, mon = month.split("-")
    return f"{_MONTHS[int(mon) - 1]} {year}"


def month_start(month: str) -> date:
    year, mon = month.split("-")
    return date(int(year), int(mon), 1)


def nearest_rank(values: Mapping[float, int], p: int) -> float | None:
    """Nearest-rank ``p``-th percentile of a value multiset (value -> multiplicity).

    The smallest observed value ``v`` such that at least ``p`` % of the values are
    ``<= v``: the ``ceil(p * n / 100)``-th smallest value (1-based, at least the
    1st). The median is ``p = 50`` (for an even count, the lower middle value).
    Always an observed value; None for an empty multiset.
    """
    items = sorted((v, n) for v, n in values.items() if n > 0)
    total = sum(n for _, n in items)
    if total == 0:
        return None
    rank = max(1, -(-p * total // 100))  # integer ceiling: no float error
    seen = 0
    for value, n in items:
        seen += n
        if seen >= rank:
            return value
    return items[-1][0]  # pragma: no cover - unreachable


def pooled(cells: Iterable[Cell]) -> Cell:
    """The sum of several cells."""
    out = Cell()
    for cell in cells:
        out.merge(cell)
    return out


@dataclass(frozen=True)
class Stats:
    """Count, average, median and 90th percentile of one measured value, per column."""

    count: Row
    average: Row
    median: Row
    p90: Row

    def rows(self) -> tuple[Row, ...]:
        return (self.count, self.average, self.median, self.p90)


@dataclass(frozen=True)
class DaysBlock:
    """Days to complete MAP enquiries in one day basis."""

    basis: DayBasis
    stats: Stats
    within_1_day: Row
    distribution: tuple[Row, ...]  # DAY_BINS, by floor


@dataclass(frozen=True)
class RfsSection:
    calls: Row
    service_level: Row
    abandoned_rate: Row
    emails: Row
    outcomes: tuple[Row, ...]
    enquiries: Row
    email_share: Row

    def tables(self, axis: Axis) -> tuple[Table, ...]:
        rows = (self.calls, self.service_level, self.abandoned_rate, self.emails,
                *self.outcomes, self.enquiries, self.email_share)
        return (axis.table("rfs", "Request for Support team", "", rows),)


@dataclass(frozen=True)
class MapSection:
    completed: Row
    agencies: Stats
    agencies_distribution: tuple[Row, ...]
    by_agency: tuple[Row, ...]
    by_outcome: tuple[Row, ...]
    progress_level_4: Row
    days_working: DaysBlock
    days_calendar: DaysBlock

    def days(self, basis: DayBasis) -> DaysBlock:
        return self.days_working if basis == "working" else self.days_calendar

    def tables(self, axis: Axis, basis: DayBasis) -> tuple[Table, ...]:
        return (
            axis.table("map_summary", "MAP enquiries completed", "",
                       (self.completed, self.progress_level_4)),
            axis.table("map_agencies", "Number of agencies consulted", "Agencies",
                       (*self.agencies.rows(), *self.agencies_distribution)),
            axis.table("map_by_agency", "MAP enquiries by agency consulted", "Agency",
                       self.by_agency),
            axis.table("map_by_outcome", "MAP enquiries by outcome", "Outcome", self.by_outcome),
            self.days_table(axis, basis),
        )

    def days_table(self, axis: Axis, basis: DayBasis) -> Table:
        block = self.days(basis)
        return axis.table(f"map_days_{basis}", f"{basis.capitalize()} days taken to complete "
                          "enquiry", "Days", (*block.stats.rows(), block.within_1_day,
                                              *block.distribution))


@dataclass(frozen=True)
class InfoAdviceSection:
    by_service: tuple[Row, ...]
    total: Row

    def tables(self, axis: Axis) -> tuple[Table, ...]:
        table = axis.table("level3_outcomes", "Level 3 outcomes by service", "Month",
                           (*self.by_service, self.total))
        return (transpose(table),)


@dataclass(frozen=True)
class CommentarySection:
    contacts_received: Row
    contacts_by_channel: tuple[Row, ...]
    early_help_allocation: Stats
    map_days: Stats
    completion_means: Table
    completion_medians: Table
    completion_p90: Table
    progression_within: tuple[Row, ...]
    progression_average: tuple[Row, ...]
    #: complaints answered at stage 1 within timescale (``state.feedback``): not a
    #: progression, so no "Progress to" chart, but a row of the timeliness table
    complaints_within: Row

    def tables(self, axis: Axis, basis: DayBasis) -> tuple[Table, ...]:
        return (
            axis.table("contacts_received", "Contacts into the service", "Channel",
                       (self.contacts_received, *self.contacts_by_channel)),
            axis.table("early_help_allocation", f"EHH {basis} days to allocate", "",
                       self.early_help_allocation.rows()),
            axis.table("map_days", f"MAP {basis} days to complete", "", self.map_days.rows()),
            self.completion_means, self.completion_medians, self.completion_p90,
            axis.table("progressions", f"Progressions: timeliness and {basis} days", "",
                       (*self.progression_within, *self.progression_average,
                        self.complaints_within)),
        )


@dataclass(frozen=True)
class TeamAudits:
    team: str
    label: str
    by_grade: tuple[Row, ...]
    total: Row


@dataclass(frozen=True)
class AuditSection:
    teams: tuple[TeamAudits, ...]
    #: learning reviews, dip samples, cases sampled (``state.quality``); () when none
    activity: tuple[Row, ...] = ()
    #: per team with advisors in post: the share of them audited in the month
    coverage: tuple[Row, ...] = ()

    def tables(self, axis: Axis) -> tuple[Table, ...]:
        tables = [transpose(axis.table(f"audits_{t.team}", t.label, "Month",
                                       (*t.by_grade, t.total))) for t in self.teams]
        if self.activity:
            tables.append(transpose(axis.table(
                "qa_activity", "Learning reviews and dip samples", "Month", self.activity)))
        if self.coverage:
            tables.append(transpose(axis.table(
                "audit_coverage", "Advisors in post audited in the month (%)", "Month",
                self.coverage)))
        return tuple(tables)


@dataclass(frozen=True)
class Quote:
    """An approved quote, opened with its key (``stream.report.quotes``), as printed."""

    text: str
    attribution: str  # the taxonomy label of its ``quote_attribution``
    year: int  # the year it was approved, printed after the attribution


@dataclass(frozen=True)
class FeedbackSection:
    """Section 6: feedback received (``stream.state.feedback``) and the quotes to print."""

    by_from: tuple[Row, ...]
    by_kind: tuple[Row, ...]
    total: Row
    approved: Row
    withdrawn: Row
    quotes: tuple[Quote, ...] = ()

    def tables(self, axis: Axis) -> tuple[Table, ...]:
        return (axis.table("feedback", "Feedback received, quotes approved and withdrawn",
                           "", (*self.by_from, *self.by_kind, self.total, self.approved,
                                self.withdrawn)),)


@dataclass(frozen=True)
class Report:
    """Every figure of the committee report, exact, per month and for the range."""

    months: tuple[str, ...]
    definitions: ReportDefinitions
    publish: bool
    rfs: RfsSection
    map: MapSection
    info_advice: InfoAdviceSection
    commentary: CommentarySection
    audits: AuditSection
    feedback: FeedbackSection
    #: section 7 (``stream.report.rates``); None: no child population set
    rates: RatesSection | None = None
    #: (table key, row key) -> month -> the count against its expected range
    #: (``stream.report.expected_range``; None while 12 months of history are missing)
    ranges: Mapping[tuple[str, str], Mapping[str, Judgement | None]] = field(
        default_factory=dict)
    #: section 8 (``stream.report.repeats``): repeat contacts and re-referrals
    repeats: RepeatsSection | None = None
    #: section 9 (``stream.report.partners``); None: no partner request in the data
    partners: PartnersSection | None = None

    @property
    def axis(self) -> Axis:
        return Axis(self.months)

    def sections(self) -> tuple[tuple[str, str, tuple[Table, ...]], ...]:
        """(key, title, tables) of every section, in report order."""
        axis, basis = self.axis, self.definitions.day_basis
        return (("rfs", "1. Request for Support team performance", self.rfs.tables(axis)),
                ("map", "2. MAP enquiries", self.map.tables(axis, basis)),
                ("info_advice", "3. Information and advice", self.info_advice.tables(axis)),
                ("commentary", "4. Contacts, allocation and timeliness",
                 self.commentary.tables(axis, basis)),
                ("audits", "5. Quality assurance audits", self.audits.tables(axis)),
                ("feedback", "6. Then and Now: feedback from Community, Partners and Staff",
                 self.feedback.tables(axis)),
                *((("rates", "7. Rates per 10,000 children", self.rates.tables()),)
                  if self.rates is not None else ()),
                *((("repeats", "8. Repeat contacts and re-referrals",
                    self.repeats.tables(axis)),) if self.repeats is not None else ()),
                *((("partners", "9. Partner agencies' responses", self.partners.tables(axis)),)
                  if self.partners is not None else ()))


def transpose(table: Table) -> Table:
    """Months as rows (as the report lays out its service and audit tables)."""
    rows = tuple(Row(ck, cl, tuple(r.cells[i] for r in table.rows))
                 for i, (ck, cl) in enumerate(zip(table.column_keys, table.columns, strict=True)))
    return Table(table.key, table.title, table.corner, tuple(r.key for r in table.rows),
                 tuple(r.label for r in table.rows), rows, "rows", table.show_base)


# --------------------------------------------------------------------------- computation

Numbers = Mapping[str, int]  # month -> count
Match = Callable[[tuple[str, ...]], bool]


def _where(figure: str, wanted: Mapping[str, str | Collection[str]]) -> Match:
    """A filter on a figure's cells by label name (as its family declares them, ``LABELS``):
    each named label is the value given, or one of the values."""
    names = LABELS[figure]
    at = [(names.index(name), frozenset((v,) if isinstance(v, str) else v))
          for name, v in wanted.items()]

    def match(labels: tuple[str, ...]) -> bool:
        return all(labels[i] in allowed for i, allowed in at)
    return match


class _Builder:
    """Builds rows over the report's months from the cells of those months."""

    def __init__(self, agg: Aggregates, months: Sequence[str], taxonomy: Taxonomy,
                 defs: ReportDefinitions) -> None:
        self.months = tuple(months)
        self.taxonomy = taxonomy
        self.defs = defs
        self.agg = agg  # every month's cells: membership is cumulative (``state.quality``)
        wanted = set(self.months)
        self.cells: dict[str, list[tuple[tuple[str, ...], Cell]]] = {}
        for (figure, labels), cell in agg.cells.items():
            if labels and labels[0] in wanted:
                self.cells.setdefault(figure, []).append((labels, cell))

    def counts(self, figure: str, **wanted: str | Collection[str]) -> dict[str, int]:
        """month -> count of the figure's cells whose labels are as ``wanted`` (by name)."""
        out = dict.fromkeys(self.months, 0)
        match = _where(figure, wanted)
        for labels, cell in self.cells.get(figure, ()):
            if match(labels):
                out[labels[0]] += cell.count
        return out

    def by_label(self, figure: str, name: str) -> dict[str, dict[str, int]]:
        """value of the label ``name`` -> month -> count."""
        index = LABELS[figure].index(name)
        out: dict[str, dict[str, int]] = {}
        for labels, cell in self.cells.get(figure, ()):
            out.setdefault(labels[index], dict.fromkeys(self.months, 0))[labels[0]] += cell.count
        return out

    def value_cells(self, figure: str, **wanted: str | Collection[str]) -> dict[str, Cell]:
        """month -> the pooled cell of the cells whose labels are as ``wanted``."""
        out = {m: Cell() for m in self.months}
        match = _where(figure, wanted)
        for labels, cell in self.cells.get(figure, ()):
            if match(labels):
                out[labels[0]].merge(cell)
        return out

    # rows -----------------------------------------------------------------------------

    def count_row(self, key: str, label: str, counts: Numbers,
                  category: str | None = None, figure: str = "") -> Row:
        """Counts per month and their sum; N/A for months before the category existed."""
        cells: list[Value] = []
        for m in self.months:
            n = counts.get(m, 0)
            exists = category is None or self.taxonomy.exists_in(category, key, month_start(m))
            cells.append(Value(float(n)) if exists or n else Value(None))
        present = [c.value for c in cells if c.value is not None]
        total = Value(float(sum(present))) if present else Value(None)
        return Row(key, label, (*cells, total), figure)

    def category_rows(self, figure: str, label: str, category: str) -> tuple[Row, ...]:
        """A count row per code of the taxonomy's ``category``, the figure's ``label``."""
        counts = self.by_label(figure, label)
        return tuple(self.count_row(code, self.taxonomy.label(category, code),
                                    counts.get(code, {}), category, figure)
                     for code in self.taxonomy.ordered(category))

    def percent_row(self, key: str, label: str, num: Numbers, den: Numbers) -> Row:
        cells = [_percent(num.get(m, 0), den.get(m, 0)) for m in self.months]
        if self.defs.period_combination is PeriodCombination.MEAN_OF_MONTHS:
            monthly = [c.value for c in cells if c.value is not None]
            total = Value(sum(monthly) / len(monthly) if monthly else None, "percent",
                          sum(den.values()))
        else:
            total = _percent(sum(num.values()), sum(den.values()))
        return Row(key, label, (*cells, total))

    def stats(self, key: str, label: str, cells: Mapping[str, Cell],
              kind: Kind = "days") -> Stats:
        columns = [cells[m] for m in self.months]
        columns.append(pooled(columns))

        def row(suffix: str, text: str, fn: Callable[[Cell], Value]) -> Row:
            return Row(f"{key}_{suffix}", f"{label} {text}" if label else text.capitalize(),
                       tuple(fn(c) for c in columns))

        return Stats(
            row("count", "count", lambda c: Value(float(c.count))),
            row("average", "average", lambda c: _mean(c, kind)),
            row("median", "median", lambda c: Value(nearest_rank(c.values, 50), kind, c.count)),
            row("p90", "90th percentile",
                lambda c: Value(nearest_rank(c.values, 90), kind, c.count)))


def _percent(num: int, den: int) -> Value:
    return Value(100.0 * num / den if den else None, "percent", den)


def _mean(cell: Cell, kind: Kind) -> Value:
    return Value(cell.total / cell.count if cell.count else None, kind, cell.count)


def _rfs(b: _Builder) -> RfsSection:
    parts = call_parts(_subset(b, "calls_"), b.defs)
    sums: dict[str, Counter[str]] = {m: Counter() for m in b.months}
    for labels, row in parts.items():
        sums[labels[0]].update(row)
    offered = {m: s["offered"] for m, s in sums.items()}
    level = {m: calls.service_level(s) for m, s in sums.items()}
    abandoned = {m: calls.abandoned_rate(s) for m, s in sums.items()}
    emails = b.counts("emails_resolved")
    enquiries = {m: email_family.enquiries(offered[m], emails[m]) for m in b.months}
    return RfsSection(
        b.count_row("calls", "Calls", offered),
        b.percent_row("service_level", "Service level", *_split(level)),
        b.percent_row("abandoned_rate", "Abandoned call rate", *_split(abandoned)),
        b.count_row("emails_resolved", "Emails resolved total", emails),
        b.category_rows("contacts_decided", "outcome", "contact_outcome"),
        b.count_row("enquiries", "Total enquiries (calls + emails)", enquiries),
        b.percent_row("email_share", "Email share of enquiries", emails, enquiries))


def _split(parts: Mapping[str, tuple[int, int]]) -> tuple[dict[str, int], dict[str, int]]:
    """month -> (numerator, denominator) as the two mappings ``percent_row`` takes."""
    return {m: p[0] for m, p in parts.items()}, {m: p[1] for m, p in parts.items()}


def _subset(b: _Builder, prefix: str) -> Aggregates:
    agg = Aggregates()
    for figure, cells in b.cells.items():
        if figure.startswith(prefix):
            for labels, cell in cells:
                agg.cells[(figure, labels)] = cell
    return agg


def _days_block(b: _Builder, basis: DayBasis) -> DaysBlock:
    cells = b.value_cells(f"map_enquiry_{basis}_days")
    stats = b.stats("map_days", "", cells)
    columns = [cells[m] for m in b.months]
    columns.append(pooled(columns))
    bins: list[list[Value]] = [[] for _ in DAY_BINS]
    within: list[Value] = []
    for cell in columns:
        counts = [0] * len(DAY_BINS)
        for v, n in cell.values.items():
            counts[min(max(0, math.floor(v)), len(DAY_BINS) - 1)] += n
        for i, n in enumerate(counts):
            bins[i].append(Value(float(n)))
        within.append(_percent(cell.at_most(map_enquiries.WITHIN_DAYS), cell.count))
    if b.defs.period_combination is PeriodCombination.MEAN_OF_MONTHS:
        monthly = [c.value for c in within[:-1] if c.value is not None]
        within[-1] = Value(sum(monthly) / len(monthly) if monthly else None, "percent",
                           within[-1].base)
    rows = tuple(Row(name, f"{name} day" if name == "1" else f"{name} days", tuple(cells_),
                     f"map_days_{basis}_distribution")
                 for name, cells_ in zip(DAY_BINS, bins, strict=True))
    return DaysBlock(basis, stats, Row("within_1_day", "% within 1 day", tuple(within)), rows)


def _map(b: _Builder) -> MapSection:
    completed = b.counts("map_completed")
    agencies = b.value_cells("map_agencies_consulted")
    numbers = sorted({int(v) for c in agencies.values() for v in c.values})
    dist_rows: list[Row] = []
    for n in range(numbers[0], numbers[-1] + 1) if numbers else ():
        per_month = {m: sum(k for v, k in agencies[m].values.items() if int(v) == n)
                     for m in b.months}
        dist_rows.append(b.count_row(str(n), f"{n} agencies", per_month,
                                     figure="map_agencies_distribution"))
    return MapSection(
        b.count_row("completed", "MAP enquiries completed", completed),
        b.stats("agencies", "Agencies consulted:", agencies, "number"),
        tuple(dist_rows),
        b.category_rows("map_by_agency", "agency", "agency"),
        b.category_rows("map_completed", "outcome", "map_outcome"),
        b.percent_row("progress_level_4", "% progressing to Level 4",
                      b.counts("map_completed", outcome=map_enquiries.LEVEL_4), completed),
        _days_block(b, "working"), _days_block(b, "calendar"))


def _info_advice(b: _Builder) -> InfoAdviceSection:
    return InfoAdviceSection(b.category_rows("level3_outcomes", "service", "level3_service"),
                             b.count_row(TOTAL, "Total", b.counts("level3_outcomes")))


def _completion(b: _Builder) -> tuple[Table, Table, Table]:
    """Days to complete contacts, source group x pathway, pooled over the months."""
    tx, basis = b.taxonomy, b.defs.day_basis
    groups, pathways = tx.ordered("source_group"), tx.ordered("pathway")
    grid: dict[tuple[str, str], Cell] = {}
    figure = f"contact_completion_{basis}_days"
    group_at, pathway_at = (LABELS[figure].index(n) for n in ("source_group", "pathway"))
    for labels, cell in b.cells.get(figure, ()):
        grid.setdefault((labels[group_at], labels[pathway_at]), Cell()).merge(cell)
    row_keys, col_keys = (*groups, TOTAL), (*pathways, TOTAL)

    def cell_at(g: str, p: str) -> Cell:
        return pooled(c for (gg, pp), c in grid.items()
                      if g in (gg, TOTAL) and p in (pp, TOTAL))

    cells = {(g, p): cell_at(g, p) for g in row_keys for p in col_keys}
    columns = (*(tx.label("pathway", p) for p in pathways), "Grand Total")
    title = f"Average {basis} days to complete contacts, by source and outcome"

    def table(key: str, text: str, fn: Callable[[Cell], Value], show: bool) -> Table:
        rows = tuple(Row(g, tx.label("source_group", g) if g != TOTAL else "Grand Total",
                         tuple(fn(cells[(g, p)]) for p in col_keys)) for g in row_keys)
        return Table(key, text, "Source type", col_keys, columns, rows, "none", show)

    return (table("contact_completion_average", title, lambda c: _mean(c, "days"), True),
            table("contact_completion_median", title.replace("Average", "Median"),
                  lambda c: Value(nearest_rank(c.values, 50), "days", c.count), False),
            table("contact_completion_p90", title.replace("Average", "90th percentile"),
                  lambda c: Value(nearest_rank(c.values, 90), "days", c.count), False))


def _commentary(b: _Builder, map_days: Stats) -> CommentarySection:
    basis, tx = b.defs.day_basis, b.taxonomy
    within: list[Row] = []
    average: list[Row] = []
    for dest in tx.ordered("destination"):
        name = tx.label("destination", dest)
        yes = b.counts("progressions", destination=dest, within_timescale=contacts.WITHIN)
        judged = b.counts("progressions", destination=dest, within_timescale=contacts.JUDGED)
        within.append(b.percent_row(f"within_{dest}", f"% within timescale: {name}", yes, judged))
        days = b.value_cells(f"progression_{basis}_days", destination=dest)
        average.append(b.stats(f"days_{dest}", f"Days to {name}:", days).average)
    means, medians, p90 = _completion(b)
    return CommentarySection(
        b.count_row("contacts_received", "Contacts received", b.counts("contacts_received")),
        b.category_rows("contacts_received", "channel", "channel"),
        b.stats("ehh_allocation", "", b.value_cells(f"early_help_allocation_{basis}_days")),
        map_days, means, medians, p90, tuple(within), tuple(average), _complaints_within(b))


def _complaints_within(b: _Builder) -> Row:
    """% of complaints answered at stage 1 within timescale (10 working days, 20 where
    extended): judged as open work judges them (``state.feedback``)."""
    fig = "complaints_responded"
    yes = b.counts(fig, within_timescale=contacts.WITHIN)
    return b.percent_row("within_complaint_stage1", "% within timescale: Complaints (stage 1)",
                         yes, b.counts(fig, within_timescale=contacts.JUDGED))


def _audits(b: _Builder) -> AuditSection:
    tx = b.taxonomy
    teams: list[TeamAudits] = []
    present = set(b.by_label("audits", "team"))
    for team in tx.ordered("team"):
        if team not in present:
            continue
        grades = tuple(b.count_row(g, tx.label("grade", g),
                                   b.counts("audits", team=team, grade=g), "grade")
                       for g in tx.ordered("grade"))
        total = b.count_row(TOTAL, "Total", b.counts("audits", team=team))
        teams.append(TeamAudits(team, tx.label("team", team), grades, total))
    return AuditSection(tuple(teams), _qa_activity(b), _coverage(b))


def _qa_activity(b: _Builder) -> tuple[Row, ...]:
    """Learning reviews, dip samples and the cases they sampled; () when there are none."""
    cases = {m: round(cell.total) for m, cell in b.value_cells("dip_samples").items()}
    rows = (b.count_row("learning_reviews", "Learning reviews", b.counts("learning_reviews")),
            b.count_row("dip_samples", "Dip samples", b.counts("dip_samples")),
            b.count_row("cases_sampled", "Cases dip-sampled", cases))
    return rows if any(r.cells[-1].value for r in rows) else ()


def _coverage(b: _Builder) -> tuple[Row, ...]:
    """The monthly-audit standard per team: advisors in post at the month's end audited in
    it, over those in post (the Total: advisor-months); only teams with advisors in post."""
    teams = b.taxonomy.ordered("team")
    per_month = {m: coverage(b.agg, m, teams) for m in b.months}
    rows = []
    for team in teams:
        done = {m: per_month[m][team][0] for m in b.months}
        posts = {m: per_month[m][team][1] for m in b.months}
        if any(posts.values()):
            rows.append(b.percent_row(team, b.taxonomy.label("team", team), done, posts))
    return tuple(rows)


def _feedback(b: _Builder, quotes: Sequence[Quote]) -> FeedbackSection:
    fig = "feedback_received"
    return FeedbackSection(
        b.category_rows(fig, "from_whom", "feedback_from"),
        b.category_rows(fig, "kind", "feedback_kind"),
        b.count_row(TOTAL, "Total feedback received", b.counts(fig), None, fig),
        b.count_row("feedback_quotes_approved", "Quotes approved to publish",
                    b.counts("feedback_quotes_approved")),
        b.count_row("feedback_withdrawn", "Consents withdrawn", b.counts("feedback_withdrawn")),
        tuple(quotes))


def _rates(b: _Builder, population: Population | None, national: Mapping[str, National] | None,
           publish: bool) -> RatesSection | None:
    """Section 7's counts (``stream.report.rates`` says what counts)."""
    if population is None:
        return None
    from stream.report import rates  # (it reads this module's types)

    counts = {"contacts": b.counts("contacts_received"),
              "referrals": b.counts("progressions", destination="childrens_social_care"),
              "re_referrals": b.counts("child_referrals", re_referral="yes"),
              "map_enquiries": b.counts("map_completed")}
    return rates.rates_section(counts, b.months, population,
                               rates.load_national() if national is None else national, publish)


def _repeats(b: _Builder) -> RepeatsSection:
    """Section 8 (``stream.report.repeats`` says what counts)."""
    from stream.report import repeats  # (it reads this module's types)

    return repeats.repeats_section(b)


def _partners(agg: Aggregates, months: Sequence[str],
              taxonomy: Taxonomy) -> PartnersSection | None:
    """Section 9 (``stream.report.partners`` says what counts)."""
    from stream.report.partners import partners_section  # (it reads this module's types)

    return partners_section(agg, months, taxonomy)


def _first_month(agg: Aggregates, *prefixes: str) -> str | None:
    """The earliest month of a cell of the figures named ``prefix...``: where that count's
    data, and so its band's history, starts (zeros before it are "not recorded yet")."""
    months = [labels[0] for figure, labels in agg.cells if figure.startswith(prefixes)
              and labels and _MONTH.fullmatch(labels[0])]
    return min(months, default=None)


def _ranges(agg: Aggregates, months: Sequence[str], taxonomy: Taxonomy,
            defs: ReportDefinitions) -> dict[tuple[str, str], dict[str, Judgement | None]]:
    """The judged counts (``expected_range``) against their expected range, counted exactly
    as their rows over the 12 months before the first month onwards."""
    h = _Builder(agg, expected_range.history_months(months), taxonomy, defs)
    rfs = _rfs(h)
    series = {  # (table, row) -> (the row over the history months, its figures' prefixes)
        ("rfs", "calls"): (rfs.calls, ("calls_",)),
        ("rfs", "emails_resolved"): (rfs.emails, ("emails_resolved",)),
        ("rfs", "enquiries"): (rfs.enquiries, ("calls_", "emails_resolved")),
        ("contacts_received", "contacts_received"): (
            h.count_row("contacts_received", "", h.counts("contacts_received")),
            ("contacts_received",)),
        ("map_summary", "completed"): (
            h.count_row("completed", "", h.counts("map_completed")), ("map_completed",)),
    }
    return {key: expected_range.judge(
                {m: round(v.value or 0) for m, v in zip(h.months, row.cells, strict=False)},
                months, _first_month(agg, *prefixes))
            for key, (row, prefixes) in series.items()}


def compute_report(agg: Aggregates, months: Sequence[str], taxonomy: Taxonomy,
                   defs: ReportDefinitions, *, publish: bool = False,
                   quotes: Sequence[Quote] = (), population: Population | None = None,
                   national: Mapping[str, National] | None = None) -> Report:
    """Every figure of the report for ``months`` ("YYYY-MM", in order) from merged cells.

    ``quotes``: the approved quotes of those months whose keys are still present
    (``stream.report.quotes``), printed in section 6; they are not figures.

    ``publish``: the counts a published report must hide are marked ``hidden``
    (``stream.report.suppression``); rendering hides them, and counts of 1 to 5.

    ``population``: the children aged 0-17 of section 7's rates (``stream.report.rates``;
    None: no section 7); ``national``: England's rates beside them (default: the shipped
    ``config/national_rates.toml``).
    """
    if not months:
        raise ValueError("a report needs at least one month")
    for m in months:
        month_start(m)  # ValueError on a malformed month
    b = _Builder(agg, months, taxonomy, defs)
    map_section = _map(b)
    report = Report(tuple(months), defs, publish, _rfs(b), map_section, _info_advice(b),
                    _commentary(b, map_section.days(defs.day_basis).stats), _audits(b),
                    _feedback(b, quotes), _rates(b, population, national, publish),
                    _ranges(agg, months, taxonomy, defs), _repeats(b),
                    _partners(agg, months, taxonomy))
    if not publish:
        return report
    from stream.report.suppression import protect  # (it reads this module's types)

    return protect(report)
