"""The emails family: email enquiries resolved by the Request for Support team.

Read from the email record (``Resolution``). One fact per resolved email, in the local
month (and clock hour) it was resolved. The report adds them to the calls offered for
its "Total enquiries" and divides for the email share (``stream.report.tables``).
"""

from __future__ import annotations

from stream.state.facts import Count, Fact, FactContext, Family, Recent
from stream.state.records import Record, Resolution


def email_facts(rec: Record, ctx: FactContext) -> list[Fact]:
    """The facts of one email record."""
    ts = Resolution.occurred_at(rec[Resolution.KEY])
    return [("emails_resolved", (ctx.month(ts),), None),
            ("emails_resolved_hourly", (ctx.hour(ts),), None)]


EMAILS = Family(
    "email", email_facts,
    counts=(Count("emails_resolved", "cspa_emails_resolved", ("month",),
                  "Email enquiries resolved by the RFS team in the month."),),
    recent=(Recent("emails_resolved_hourly", "cspa_recent_emails_resolved",
                   "Emails resolved"),),
)
