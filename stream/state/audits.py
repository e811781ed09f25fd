"""The audits family: quality-assurance case audits graded, per team and grade.

Read from the audit record (``Grading``): one fact per graded audit, in the local month
it was graded, labelled by the team audited and the grade (both from the taxonomy). A
regrade of the same audit is a correction of its slot, so it moves the audit between
grades rather than counting it twice. An audit that names its advisor (``advisor_key``)
also counts towards the monthly-audit standard (``stream.state.quality``).
"""

from __future__ import annotations

from stream.state.facts import Count, Fact, FactContext, Family
from stream.state.quality import advisor_tag
from stream.state.records import Grading, Record


def audit_facts(rec: Record, ctx: FactContext) -> list[Fact]:
    """The facts of one audit record: the audit, and the advisor it names if any."""
    graded = rec[Grading.KEY]
    month, team = ctx.month(Grading.occurred_at(graded)), Grading.team(graded)
    facts: list[Fact] = [("audits", (month, team, Grading.grade(graded)), None)]
    advisor = Grading.advisor_key(graded)
    if advisor:
        facts.append(("advisors_audited", (month, team), advisor_tag(advisor)))
    return facts


AUDITS = Family(
    "audit", audit_facts,
    counts=(Count("audits", "cspa_audits", ("month", "team", "grade"),
                  "Quality-assurance audits graded in the month."),),
    # advisor tags (``quality.advisor_tag``): read by ``quality.coverage``, never exposed
    cells={"advisors_audited": ("month", "team")},
)
