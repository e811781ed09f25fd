"""The feedback family: the report's section 6, "Then and Now".

Read from the feedback record (``FeedbackReceipt``, ``QuoteApproval``, ``Withdrawal``):

* ``feedback_received``: one fact per feedback received, in the local month received,
  by who gave it (taxonomy ``feedback_from``), the partner agency for a partner's
  feedback (taxonomy ``agency``; ``none`` for everyone else) and its kind (compliment,
  complaint, comment);
* ``feedback_quotes_approved``: one fact per quote approved with consent to publish, in
  the month approved, by attribution; a withdrawal does not take it back (counts stay,
  the quote goes: ``stream.contract.quotes``);
* ``feedback_withdrawn``: one fact per withdrawal of consent, in the month withdrawn;
* ``complaints_responded``: one fact per complaint answered at stage 1
  (``ComplaintResponse``), in the month responded, by whether within the timescale of
  rule ``complaint_stage1``: its deadline exactly as open work's (10 working days, 20
  when ``complaint.extended`` counts, ``stream.state.timeliness.schedule``), so a
  response is ``false`` here exactly when it counts as a breach (``unknown``: no version
  of the rule in force when the complaint came).

No figure reads the quote: it is not in the record.
"""

from __future__ import annotations

from stream.state.facts import Count, Fact, FactContext, Family
from stream.state.records import (
    ComplaintResponse,
    FeedbackReceipt,
    QuoteApproval,
    Record,
    Withdrawal,
)
from stream.state.timeliness import schedule

#: the ``agency`` label of feedback not from a partner agency
NO_AGENCY = "none"
#: the feedback kind, and the timescale rule, of a complaint
COMPLAINT = "complaint"
COMPLAINT_RULE = "complaint_stage1"


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
    response = rec.get(ComplaintResponse.KEY)
    if response is not None and received is not None \
            and FeedbackReceipt.kind(received) == COMPLAINT:
        facts.append(_responded(rec, ctx, FeedbackReceipt.occurred_at(received),
                                ComplaintResponse.occurred_at(response)))
    return facts


def _responded(rec: Record, ctx: FactContext, start: float, end: float) -> Fact:
    """The response's fact: within the rule's deadline (``schedule``) or not."""
    rule = ctx.rule(COMPLAINT_RULE, start)
    if rule is None:
        within = "unknown"
    else:
        deadline, _ = schedule(rec, rule, start, end, ctx.calendar)
        within = str(end <= deadline).lower()
    return "complaints_responded", (ctx.month(end), within), None


FEEDBACK = Family(
    "feedback", feedback_facts,
    counts=(Count("feedback_received", "cspa_feedback_received",
                  ("month", "from_whom", "agency", "kind"),
                  "Feedback received in the month, by who gave it and its kind."),
            Count("feedback_quotes_approved", "cspa_feedback_quotes_approved",
                  ("month", "attribution"),
                  "Quotes approved for publication (with consent) in the month."),
            Count("feedback_withdrawn", "cspa_feedback_withdrawn", ("month",),
                  "Consents to publish withdrawn in the month."),
            Count("complaints_responded", "cspa_complaints_responded",
                  ("month", "within_timescale"),
                  "Complaints answered at stage 1 in the month, by whether within timescale "
                  "(10 working days, 20 where extended).")),
)
