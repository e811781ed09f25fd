"""Section 6 of *Monthly performance*, "Then and Now": feedback received, quotes approved
and consents withdrawn, per month. The quotes themselves are never on a dashboard: they
are in no metric (``stream.report.quotes`` prints them in the report only)."""

from __future__ import annotations

from grafana.dashboards_src import common as c

M = c.MONTHS


def _by(label: str, section: str, title: str, description: str) -> object:
    names = c.taxonomy(section)
    return c.table(title, description,
                   c.q(f"sum by (month, {label}) (cspa_feedback_received{{{M}}})", fmt="table"),
                   transforms=[c.matrix("month", label),
                               c.organize({f"month\\{label}": "Month", **names},
                                          order=(f"month\\{label}", *names))],
                   footer_sum=True, w=8, h=8)


def feedback_section() -> list[object]:
    """Feedback by kind and by who gave it, and the quotes approved and withdrawn."""
    return [
        c.row("6. Then and Now: feedback from community, partners and staff"),
        _by("kind", "feedback_kind", "Feedback received: by kind",
            "Compliments, complaints and comments received in each month "
            "(feedback.received); Total: sum of the selected months."),
        _by("from_whom", "feedback_from", "Feedback received: from whom",
            "Feedback received in each month by who gave it; a partner agency's is broken "
            "down by agency in the report's section 6. Total: sum of the selected months."),
        c.table("Quotes approved and withdrawn", "Quotes approved for publication with the "
                "giver's consent (feedback.quote_approved), and consents withdrawn "
                "(feedback.withdrawn: the quote's key is deleted, the count stays), per "
                "month; Total: sum of the selected months.",
                c.q(f"sum by (month) (cspa_feedback_quotes_approved{{{M}}})", fmt="table",
                    ref="A"),
                c.q(f"sum by (month) (cspa_feedback_withdrawn{{{M}}})", fmt="table", ref="B"),
                transforms=[c.merge(), c.organize(
                    {"month": "Month", "Value #A": "Quotes approved",
                     "Value #B": "Consents withdrawn"})],
                footer_sum=True, w=8, h=8),
    ]
