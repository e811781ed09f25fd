"""Section 7: contacts, referrals and MAP enquiries per 10,000 children (issue 29.3).

The DfE's national indicators are rates per 10,000 children aged 0-17, so a council can
set its demand beside England's and its statistical neighbours'. The base is a setting
(``CSPA_CHILD_POPULATION``, its ``_YEAR`` and ``_SOURCE``), printed under every rate;
unset, the report prints no rates and one line saying how to set them.

* Per month: the month's count / children x 10,000.
* Annualised: the counts of the report's months summed / children x 10,000 x 12 / the
  number of months (a 3-month report's rate scaled to a year; 12 months: the year's rate).

What counts (``docs/figures.md``): contacts received (``contacts_received``); referrals:
contacts progressed to children's social care (``progressions`` to
``childrens_social_care``, the month of the progression; the DfE's definition of a
referral, a request for services from children's social care); MAP enquiries completed
(``map_completed``, as section 2 counts them); re-referrals: referrals of a child referred
in the 12 months before (``child_referrals`` with ``re_referral="yes"``, section 8;
``stream.state.children``), only of contacts naming a child.

England's published rates come from ``config/national_rates.toml`` with their year and
source; a figure the DfE does not publish, or that is not in that file, says so instead
of a number.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from stream.report.tables import Row, Table, Value, month_label
from stream.settings import ROOT, Settings

#: rates are per this many children
PER = 10_000
NATIONAL_RATES = ROOT / "config" / "national_rates.toml"
NOT_PUBLISHED = "not published in this product's reference data"
ANNUALISED = "annualised"
ENGLAND = "england"
#: figure key -> its label; the key is also the key of its national rate
RATED = (("contacts", "Contacts received"),
         ("referrals", "Referrals (contacts progressed to children's social care)"),
         ("map_enquiries", "MAP enquiries completed"),
         ("re_referrals", "Re-referrals (referrals of a child referred in the 12 months "
                          "before)"))
UNSET_LINE = ("Rates per 10,000 children: not shown, no child population set (set "
              "CSPA_CHILD_POPULATION, CSPA_CHILD_POPULATION_YEAR and "
              "CSPA_CHILD_POPULATION_SOURCE)")
RE_REFERRALS_LINE = ("Re-referrals per 10,000 children count only contacts naming a child "
                     "(section 8 counts the others apart)")


@dataclass(frozen=True)
class Population:
    """The children aged 0-17 the rates are per, with where the figure comes from."""

    children: int
    year: int
    source: str

    @classmethod
    def of(cls, settings: Settings) -> Population | None:
        """The settings' population, or None when ``CSPA_CHILD_POPULATION`` is unset."""
        if settings.child_population is None or settings.child_population_year is None:
            return None
        return cls(settings.child_population, settings.child_population_year,
                   settings.child_population_source.strip())

    def line(self) -> str:
        return (f"base: {self.children:,} children aged 0-17 ({self.year}; source: "
                f"{self.source})")


@dataclass(frozen=True)
class National:
    """England's published rate of one figure, or why there is none."""

    rate: float | None = None
    year: str = ""
    source: str = ""
    note: str = NOT_PUBLISHED

    def text(self) -> str:
        if self.rate is None:
            return f"England: {self.note}"
        return f"England: {self.rate:.1f} per 10,000 children ({self.year}; source: {self.source})"


def load_national(path: Path = NATIONAL_RATES) -> dict[str, National]:
    """figure key -> England's rate, from ``config/national_rates.toml``."""
    with path.open("rb") as fh:
        doc = tomllib.load(fh)
    out: dict[str, National] = {}
    for key, entry in doc.items():
        rate = entry.get("rate")
        if rate is not None and not (entry.get("year") and entry.get("source")):
            raise ValueError(f"{path}: [{key}] has a rate without its year and source")
        out[key] = National(None if rate is None else float(rate), str(entry.get("year", "")),
                            str(entry.get("source", "")), str(entry.get("note", NOT_PUBLISHED)))
    return out


def per_children(count: int, children: int) -> float:
    """A count as a rate per 10,000 children."""
    return count * PER / children


def annualised(counts: Sequence[int], children: int) -> float:
    """The months' counts as a yearly rate per 10,000 children: the sum x 12 / months."""
    return per_children(sum(counts), children) * 12 / len(counts)


@dataclass(frozen=True)
class RatesSection:
    """Each rated figure per month and annualised, England's beside it."""

    months: tuple[str, ...]
    population: Population
    national: Mapping[str, National]
    rows: tuple[Row, ...]

    def tables(self) -> tuple[Table, ...]:
        keys = (*self.months, ANNUALISED, ENGLAND)
        labels = (*(month_label(m) for m in self.months), "Annualised", "England (published)")
        return (Table("rates", "Rates per 10,000 children aged 0-17", "", keys, labels,
                      self.rows),)

    def notes(self) -> list[str]:
        n = len(self.months)
        lines = [f"Rate per 10,000 children: the month's count / children aged 0-17 x 10,000; "
                 f"annualised: the {n} month(s)' counts summed / children x 10,000 x 12 / {n}."]
        lines += [f"{label} per 10,000 children: {self.population.line()}; "
                  f"{self.national.get(key, National()).text()}." for key, label in RATED]
        return [*lines, RE_REFERRALS_LINE + "."]


def definitions(section: RatesSection | None) -> list[tuple[str, str | int]]:
    """The CSV's ``definitions`` rows of section 7: its base, or why there is none."""
    if section is None:
        return [("child_population", UNSET_LINE)]
    pop = section.population
    return [("child_population", pop.children), ("child_population_year", pop.year),
            ("child_population_source", pop.source)]


def rates_section(counts: Mapping[str, Mapping[str, int]], months: Sequence[str],
                  population: Population, national: Mapping[str, National],
                  publish: bool = False) -> RatesSection:
    """``counts``: figure key of ``RATED`` -> month -> count (every month of ``months``).

    ``publish``: a month's rate of 1-5 children is hidden when rendered (its base), and
    then so is the annualised rate, which would give it back by difference.
    """
    rows = []
    for key, label in RATED:
        per_month = [counts[key].get(m, 0) for m in months]
        cells = [Value(per_children(c, population.children), "number", c) for c in per_month]
        small = publish and any(1 <= c <= 5 for c in per_month)
        cells.append(Value(annualised(per_month, population.children), "number",
                           sum(per_month), hidden=small))
        england = national.get(key, National()).rate
        cells.append(Value(england, "number", None if england is None else 0))
        rows.append(Row(f"{key}_rate", f"{label} per 10,000 children", tuple(cells)))
    return RatesSection(tuple(months), population, national, tuple(rows))
