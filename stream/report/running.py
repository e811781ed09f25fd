"""Running totals: shares within timescale since a month (``report --since``).

``compute_since`` pools the merged cells of every month from ``first`` to the report's
last month (inclusive, whatever months the report itself shows) into shares within a
threshold: MAP enquiries completed within each threshold of
``CSPA_SINCE_MAP_WITHIN_DAYS`` (1 working day always), progressions within their rule's
timescale per destination, early help allocations within the ``early_help_allocation``
rule's timescale, and contact decisions within the ``contact_decision`` rule's. All in
working days, whatever the report's day basis: the timescales are working days. A
share is a ratio of sums over the months (never a mean of monthly shares), and "within"
is ``<=`` on values kept to 1e-4, as the monthly figures. Each figure lands in the month
its closing event does (completed, progressed, allocated, decided), as the monthly
figures do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stream.contract.taxonomy import Taxonomy
from stream.report.tables import month_label
from stream.state import contacts
from stream.state.aggregates import Aggregates, Cell
from stream.state.families import LABELS

#: rule name -> label of its running share (its durations: ``contacts.RULE_DURATIONS``)
RULE_SHARES = {
    "early_help_allocation": "Early help allocations within timescale",
    "contact_decision": "Contacts decided within timescale",
}
_FULL = ("January", "February", "March", "April", "May", "June", "July", "August",
         "September", "October", "November", "December")


@dataclass(frozen=True)
class SinceFigure:
    """One running share: ``within`` of ``judged`` since the first month."""

    key: str
    label: str
    within: int
    judged: int

    @property
    def percent(self) -> float | None:
        """0-100, exact; None when nothing was judged."""
        return 100.0 * self.within / self.judged if self.judged else None


@dataclass(frozen=True)
class Since:
    """The running shares from ``first`` to ``last`` (months, inclusive)."""

    first: str
    last: str
    figures: tuple[SinceFigure, ...]

    def figure(self, key: str) -> SinceFigure:
        return next(f for f in self.figures if f.key == key)

    @property
    def span(self) -> str:
        return f"{month_label(self.first)} to {month_label(self.last)}"

    def sentence(self) -> str:
        """The seed's sentence: "Since June 2019, 79% of MAP enquiries were completed in
        1 working day." (whole percent); empty when no enquiry was completed."""
        share = self.figure(map_key(1.0)).percent
        if share is None:
            return ""
        year, month = self.first.split("-")
        return (f"Since {_FULL[int(month) - 1]} {year}, {share:.0f}% of MAP enquiries were "
                "completed in 1 working day.")


def map_key(days: float) -> str:
    """``since_map_within_1``, ``since_map_within_0_5``: the id of a MAP threshold's share."""
    return "since_map_within_" + f"{days:g}".replace(".", "_")


def _day_words(days: float) -> str:
    return f"{days:g} working day" + ("" if days == 1 else "s")


def compute_since(agg: Aggregates, first: str, last: str, taxonomy: Taxonomy,
                  map_days: Sequence[float], timescales: Mapping[str, float]) -> Since:
    """The running shares over ``first``..``last`` ("YYYY-MM") from merged cells.

    ``timescales``: rule name -> working days, for the rules of ``RULE_SHARES`` (a rule
    missing from it gives no share).
    """
    if last < first:
        raise ValueError(f"--since {first} is after the report's last month {last}")
    inside = _months(agg, first, last)
    figures = [_values_within(inside, "map_enquiry_working_days", d, map_key(d),
                              f"MAP enquiries completed within {_day_words(d)}")
               for d in map_days]
    dest_at, within_at = (LABELS["progressions"].index(n)
                          for n in ("destination", "within_timescale"))
    for dest in taxonomy.ordered("destination"):
        judged = [(labels[within_at], c.count) for labels, c in inside.get("progressions", ())
                  if labels[dest_at] == dest and labels[within_at] in contacts.JUDGED]
        figures.append(SinceFigure(
            f"since_progression_within_{dest}",
            f"Progressions to {taxonomy.label('destination', dest)} within timescale",
            sum(n for within, n in judged if within == contacts.WITHIN),
            sum(n for _, n in judged)))
    for rule, label in RULE_SHARES.items():
        if rule in timescales:
            figures.append(_values_within(inside, contacts.RULE_DURATIONS[rule],
                                          timescales[rule], f"since_{rule}_within", label))
    return Since(first, last, tuple(figures))


Inside = dict[str, list[tuple[tuple[str, ...], Cell]]]


def _months(agg: Aggregates, first: str, last: str) -> Inside:
    """figure -> [(labels, cell)] of the cells whose month is within first..last."""
    out: Inside = {}
    for (figure, labels), cell in agg.cells.items():
        if labels and first <= labels[0] <= last:
            out.setdefault(figure, []).append((labels, cell))
    return out


def _values_within(inside: Inside, figure: str, days: float, key: str,
                   label: str) -> SinceFigure:
    cells = [cell for _, cell in inside.get(figure, ())]
    return SinceFigure(key, label, sum(c.at_most(days) for c in cells),
                       sum(c.count for c in cells))
