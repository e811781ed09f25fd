"""The feedback family: the report's section 6, "Then and Now".

Read from the feedback record (``FeedbackReceipt``, ``QuoteApproval``, ``Withdrawal``):

* ``feedback_received``: one fact per feedback received, in the local month received,
  by who gave it (taxonomy ``feedback_from``), the partner agency for a partner's
  feedback (taxonomy ``agency``; ``none`` for everyone else) and its kind (compliment,
  complaint, comment);
* ``feedback_quotes_approved``: one fact per quote approved with consent to publish, in
  the month approved, by attribution; a withdrawal does not take it back (counts stay,
  the quote goes: ``stream.contract.quotes``);
* ``feedback_withdrawn``: one fact per withdrawal of consent, in the month withdrawn.

No figure reads the quote: it is not in the record.
"""

from __future__ import annotations

from stream.state.facts import Count, Fact, FactContext, Family
from stream.state.records import FeedbackReceipt, QuoteApproval, Record, Withdrawal

#: the ``agency`` label of feedback not from a partner agency
NO_AGENCY = "none"


def feedback_facts(rec: Record, ctx: FactContext) -> list[Fact]:
    """The facts of one feedback record."""
    facts: list[Fact] = []
    received = rec.get(FeedbackReceipt.KEY)
    if received is not None:
        facts.append(("feedback_received", (
            ctx.month(FeedbackReceipt.occurred_at(received)), FeedbackReceipt.from_whom(received),
            FeedbackReceipt.agency(received) or NO_AGENCY, FeedbackReceipt.kind(received)), None))
    approved = rec.get(QuoteApproval.KEY)
    if approved is not None and QuoteApproval.consent_to_publish(approved):
        facts.append(("feedback_quotes_approved", (
            ctx.month(QuoteApproval.occurred_at(approved)), QuoteApproval.attribution(approved)),
            None))
    withdrawn = rec.get(Withdrawal.KEY)
    if withdrawn is not None:
        facts.append(("feedback_withdrawn", (ctx.month(Withdrawal.occurred_at(withdrawn)),), None))
    return facts


FEEDBACK = Family(
    "feedback", feedback_facts,
    counts=(Count("feedback_received", "cspa_feedback_received",
                  ("month", "from_whom", "agency", "kind"),
                  "Feedback received in the month, by who gave it and its kind."),
            Count("feedback_quotes_approved", "cspa_feedback_quotes_approved",
                  ("month", "attribution"),
                  "Quotes approved for publication (with consent) in the month."),
            Count("feedback_withdrawn", "cspa_feedback_withdrawn", ("month",),
                  "Consents to publish withdrawn in the month.")),
)
