"""The audits family: quality-assurance case audits graded, per team and grade.

Read from the audit record (``Grading``): one fact per graded audit, in the local month
it was graded, labelled by the team audited and the grade (both from the taxonomy). A
regrade of the same audit is a correction of its slot, so it moves the audit between
grades rather than counting it twice.
"""

from __future__ import annotations

from stream.state.facts import Count, Fact, FactContext, Family
from stream.state.records import Grading, Record


def audit_facts(rec: Record, ctx: FactContext) -> list[Fact]:
    """The fact of one audit record."""
    graded = rec[Grading.KEY]
    return [("audits", (ctx.month(Grading.occurred_at(graded)), Grading.team(graded),
                        Grading.grade(graded)), None)]


AUDITS = Family(
    "audit", audit_facts,
    counts=(Count("audits", "cspa_audits", ("month", "team", "grade"),
                  "Quality-assurance audits graded in the month."),),
)
