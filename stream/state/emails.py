"""The emails family: email enquiries resolved by the Request for Support team.

Read from the email record (``Resolution``). One fact per resolved email, in the local
month (and clock hour) it was resolved. With the calls offered they make the RFS team's
enquiries (``enquiries``), of which the email share is the emails.
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
    cells={"emails_resolved_hourly": ("hour",)},
)


def enquiries(calls_offered: int, emails: int) -> int:
    """The RFS team's enquiries: calls offered plus emails resolved (the email share's
    denominator; its numerator is the emails)."""
    return calls_offered + emails
