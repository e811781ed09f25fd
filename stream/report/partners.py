"""Section 9: partner agencies' responses to MAP enquiries (issue 29.2, "which partner is slow").

Per partner agency (taxonomy ``agency``, the set MAP completions name as consulted) and
month, from the MAP family's partner cells (``stream.state.partner_responses`` defines them):

* requests made to the agency in the month (``partner_requests``);
* the median and 90th percentile of office hours on working days from request to
  response, for the responses of the month (nearest rank, as every percentile of the
  report; the Total pools the months' values);
* late responses: after the 4 working hours of rule ``partner_response``
  (``partner_responses_late``), in the month of the response;
* open now: requests still unanswered as at the report's data, by the month requested
  (``partner_unanswered``); the Total is every such request of the report's months.

The section is left out when the data hold no partner request or response at all (a
case system that does not send them yet): MAP completions count as before without them.
Section 8 is repeat contacts and re-referrals (``stream.report.repeats``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from stream.contract.taxonomy import Taxonomy
from stream.report.tables import Axis, Row, Table, Value, nearest_rank, pooled
from stream.state.aggregates import Aggregates, Cell

#: the partner figures whose cells, anywhere in the data, bring the section in
FIGURES = ("partner_requests", "partner_response_working_hours", "partner_unanswered")
HOURS = "partner_response_working_hours"


@dataclass(frozen=True)
class PartnersSection:
    """Section 9's tables: a row per agency, a column per month and the Total."""

    requests: tuple[Row, ...]
    median: tuple[Row, ...]
    p90: tuple[Row, ...]
    late: tuple[Row, ...]
    open_now: tuple[Row, ...]

    def tables(self, axis: Axis) -> tuple[Table, ...]:
        return (
            axis.table("partner_requests", "Requests to partner agencies", "Agency",
                       self.requests),
            axis.table("partner_response_median",
                       "Median working hours for the agency to respond", "Agency", self.median),
            axis.table("partner_response_p90",
                       "90th percentile of working hours to respond", "Agency", self.p90),
            axis.table("partner_responses_late",
                       "Late responses (after 4 working hours)", "Agency", self.late),
            axis.table("partner_requests_open",
                       "Requests not yet answered (as at the data), by month requested",
                       "Agency", self.open_now),
        )


def by_agency(agg: Aggregates, figure: str, months: Sequence[str]) -> dict[str, dict[str, Cell]]:
    """agency -> month -> the figure's cell (every month of ``months``; empty cells too)."""
    wanted = set(months)
    out: dict[str, dict[str, Cell]] = {}
    for (name, labels), cell in agg.cells.items():
        if name == figure and labels[0] in wanted:
            out.setdefault(labels[1], {m: Cell() for m in months})[labels[0]].merge(cell)
    return out


def _rows(figure: str, cells: Mapping[str, Mapping[str, Cell]], months: Sequence[str],
          taxonomy: Taxonomy, value: Callable[[Cell], Value]) -> tuple[Row, ...]:
    """A row per agency in the taxonomy's order: ``value`` of each month's cell, then of
    the months pooled (counts add; percentiles pool the values)."""
    rows = []
    for agency in taxonomy.ordered("agency"):
        columns = [cells.get(agency, {}).get(m, Cell()) for m in months]
        columns.append(pooled(columns))
        rows.append(Row(agency, taxonomy.label("agency", agency),
                        tuple(value(c) for c in columns), figure))
    return tuple(rows)


def _count(cell: Cell) -> Value:
    return Value(float(cell.count))


def _percentile(p: int) -> Callable[[Cell], Value]:
    """Nearest-rank ``p``-th percentile of a cell's working hours, based on its count."""
    return lambda cell: Value(nearest_rank(cell.values, p), "number", cell.count)


def partners_section(agg: Aggregates, months: Sequence[str],
                     taxonomy: Taxonomy) -> PartnersSection | None:
    """Section 9 for ``months``; None when no partner cell exists in the data at all."""
    if not any(figure in FIGURES for figure, _ in agg.cells):
        return None
    hours = by_agency(agg, HOURS, months)

    def counts(figure: str, key: str) -> tuple[Row, ...]:
        return _rows(key, by_agency(agg, figure, months), months, taxonomy, _count)

    return PartnersSection(
        counts("partner_requests", "partner_requests"),
        _rows("partner_response_median", hours, months, taxonomy, _percentile(50)),
        _rows("partner_response_p90", hours, months, taxonomy, _percentile(90)),
        counts("partner_responses_late", "partner_responses_late"),
        counts("partner_unanswered", "partner_requests_open"))


def count_rows(section: PartnersSection | None) -> tuple[Row, ...]:
    """The section's count rows, whose months sum to their Total (for suppression)."""
    if section is None:
        return ()
    return (*section.requests, *section.late, *section.open_now)
