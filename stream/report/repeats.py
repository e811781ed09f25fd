"""Section 8: repeat contacts and re-referrals, per month by source group (issue 29.1).

What counts (``stream/state/children.py`` defines it; ``docs/figures.md`` has the rows):

* a *repeat contact*: a contact about a child who had another contact in the 12 months
  before it (event time), in the month received (``child_contacts``, ``repeat="yes"``);
* a *re-referral*: a referral (a contact progressed to children's social care, as section
  7 counts it) of a child referred in the 12 months before it (``child_referrals``,
  ``re_referral="yes"``): the DfE's children in need definition;
* each share's denominator: the contacts (referrals) naming a child; those that name no
  child cannot be judged and are counted in their own "no child key" row, so the figures'
  coverage shows.

England's re-referral rate is printed beside the share: DfE, "Children in need",
reporting year 2024: 139,080 re-referrals of 621,880 referrals, 22.4%. Repeat contacts
have no national figure (contacts are not in the children in need census).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Protocol

from stream.contract.taxonomy import Taxonomy
from stream.report.tables import Axis, Row, Table

ENGLAND_LINE = ("England's re-referral rate: 22.4% (139,080 re-referrals within 12 months of "
                "a previous referral, of 621,880 referrals; DfE, Children in need, reporting "
                "year 2024); repeat contacts have no national figure (contacts are not in "
                "the children in need census).")
DEFINITION_LINE = ("A repeat contact is a contact about a child who had another contact in "
                   "the 12 months before it; a re-referral, a referral (progression to "
                   "children's social care) of a child referred in the 12 months before it "
                   "(event time). Shares are of the contacts (referrals) naming a child; those "
                   "naming none are counted apart, not judged.")
#: (figure, its flag label, the CSV id of the repeats, the "no child key" figure, titles)
PARTS = (("child_contacts", "repeat", "repeat_contacts", "contacts_without_child_key",
          "Repeat contacts (another contact about the child in the 12 months before)",
          "contacts"),
         ("child_referrals", "re_referral", "re_referrals", "referrals_without_child_key",
          "Re-referrals (another referral of the child in the 12 months before)",
          "referrals"))


class Builder(Protocol):
    """What this section needs of the report's row builder (``tables._Builder``)."""

    months: tuple[str, ...]
    taxonomy: Taxonomy

    def counts(self, figure: str, **wanted: str | Collection[str]) -> dict[str, int]: ...
    def count_row(self, key: str, label: str, counts: dict[str, int],
                  category: str | None = None, figure: str = "") -> Row: ...
    def percent_row(self, key: str, label: str, num: dict[str, int],
                    den: dict[str, int]) -> Row: ...


@dataclass(frozen=True)
class RepeatsSection:
    """Section 8's two tables: repeat contacts, re-referrals."""

    contacts: tuple[Row, ...]
    referrals: tuple[Row, ...]

    def tables(self, axis: Axis) -> tuple[Table, ...]:
        return tuple(axis.table(part[2], part[4], "", rows)
                     for part, rows in zip(PARTS, (self.contacts, self.referrals), strict=True))

    @staticmethod
    def notes() -> list[str]:
        return [DEFINITION_LINE, ENGLAND_LINE]


def _rows(b: Builder, figure: str, flag: str, key: str, unkeyed: str,
          noun: str) -> tuple[Row, ...]:
    """All sources, then each source group: repeats, their share; the "no child key" row."""
    rows = [b.count_row(key, f"Repeat {noun}" if flag == "repeat" else "Re-referrals",
                        b.counts(figure, **{flag: "yes"})),
            b.percent_row(f"{key}_share", f"Share of {noun} naming a child",
                          b.counts(figure, **{flag: "yes"}), b.counts(figure))]
    for group in b.taxonomy.ordered("source_group"):
        label = b.taxonomy.label("source_group", group)
        yes = b.counts(figure, source_group=group, **{flag: "yes"})
        rows.append(b.count_row(group, label, yes, figure=key))
        rows.append(replace(b.percent_row(f"{group}_share", f"{label}: share", yes,
                                          b.counts(figure, source_group=group)),
                            figure=f"{key}_share"))
    rows.append(b.count_row(unkeyed, f"{noun.capitalize()} with no child key (not judged)",
                            b.counts(unkeyed)))
    return tuple(rows)


def repeats_section(b: Builder) -> RepeatsSection:
    """Section 8 over the builder's months."""
    contacts, referrals = (_rows(b, figure, flag, key, unkeyed, noun)
                           for figure, flag, key, unkeyed, _, noun in PARTS)
    return RepeatsSection(contacts, referrals)

