"""The contacts family: contacts received and decided, how long they took, where they went.

Read from the contact record (``stream.state.records``: ``Receipt``, ``Decision``,
``Allocation`` and one ``Progression`` per destination). Every figure's month is the
local month of the event that completes it: received in the month received, decided
(and its completion time) in the month decided, a progression in the month it happened.

* ``contacts_received`` (month, channel, source group, team), and hourly.
* ``contacts_decided`` (month, RFS outcome level), and hourly. The report's RFS
  "outcomes" rows.
* ``contact_completion``: receipt to decision, in working and calendar days, by month
  decided, source group and ``pathway`` (the case system's actual outcome: the report's
  cross-tab calls it "outcome"; a decision without one is the taxonomy's
  ``UNRECORDED_PATHWAY``). Only contacts with both events.
* ``early_help_allocation``: the progression to early help to its allocation by the
  Early Help Hub, by month allocated.
* ``contacts_without_child_key`` (month received, source group): contacts whose receipt
  names no child, so the children family (``stream.state.children``) cannot judge them
  a repeat or not; ``referrals_without_child_key`` (month referred, source group): their
  progressions to children's social care. The coverage of the repeat figures.
* ``progressions`` (month, destination, within timescale): judged by the destination's
  rule ``progression_<destination>`` in force when the contact's clock started; within
  is ``true``, ``false``, or ``unknown`` where no rule judged it. Its denominator in the
  report is ``true`` + ``false``. Durations in ``progression`` (month, destination).
"""

from __future__ import annotations

from stream.contract.taxonomy import UNRECORDED_PATHWAY
from stream.state.facts import (
    Count,
    Fact,
    FactContext,
    Family,
    Recent,
    duration_figures,
    durations,
)
from stream.state.records import Allocation, Decision, Progression, Receipt, Record

#: the destination whose progression starts the Early Help Hub's allocation clock
EARLY_HELP = "early_help"
_EARLY_HELP_KEY = Progression.key(EARLY_HELP)
#: ``within_timescale`` of a progression judged within its timescale (the share's
#: numerator), and of every progression judged at all (its denominator: ``unknown``,
#: no rule in force, is neither)
WITHIN = "true"
JUDGED = ("true", "false")
#: the destination of a referral (a request for services from children's social care)
REFERRAL = "childrens_social_care"
_REFERRAL_KEY = Progression.key(REFERRAL)
#: timescale rule -> the working-day durations it is judged on (the running shares)
RULE_DURATIONS = {"early_help_allocation": "early_help_allocation_working_days",
                  "contact_decision": "contact_completion_working_days"}


def contact_facts(rec: Record, ctx: FactContext) -> list[Fact]:
    """The facts of one contact record."""
    facts: list[Fact] = []
    rcv, dec = rec.get(Receipt.KEY), rec.get(Decision.KEY)
    received = Receipt.occurred_at(rcv) if rcv else 0.0
    group: str = ctx.taxonomy.group_of(Receipt.source_code(rcv)) if rcv else ""
    if rcv:
        facts.append(("contacts_received", (ctx.month(received), Receipt.channel(rcv), group,
                                            Receipt.team(rcv)), None))
        facts.append(("contacts_received_hourly", (ctx.hour(received),), None))
        if Receipt.child_key(rcv) is None:
            facts += _without_child_key(rec, ctx, received, group)
    if dec:
        decided = Decision.occurred_at(dec)
        month = ctx.month(decided)
        facts.append(("contacts_decided", (month, Decision.outcome(dec)), None))
        facts.append(("contacts_decided_hourly", (ctx.hour(decided),), None))
        if rcv:
            labels = (month, group, Decision.pathway(dec) or UNRECORDED_PATHWAY)
            facts += durations(ctx, "contact_completion", labels, received, decided)
    eh, alloc = rec.get(_EARLY_HELP_KEY), rec.get(Allocation.KEY)
    if alloc and eh:
        allocated = Allocation.occurred_at(alloc)
        facts += durations(ctx, "early_help_allocation", (ctx.month(allocated),),
                           Progression.occurred_at(eh), allocated)
    if rcv:
        for destination, key in ctx.progressions:
            prog = rec.get(key)
            if prog:
                facts += _progression(ctx, destination, received, Progression.occurred_at(prog))
    return facts


def _without_child_key(rec: Record, ctx: FactContext, received: float,
                       group: str) -> list[Fact]:
    facts: list[Fact] = [("contacts_without_child_key", (ctx.month(received), group), None)]
    referral = rec.get(_REFERRAL_KEY)
    if referral:
        facts.append(("referrals_without_child_key",
                      (ctx.month(Progression.occurred_at(referral)), group), None))
    return facts


def _progression(ctx: FactContext, destination: str, start: float, end: float) -> list[Fact]:
    rule = ctx.rule("progression_" + destination, start)
    days = ctx.working_days(start, end)
    # Float noise in the clock arithmetic can put an exact "1 working day" at
    # 1.0000000000000142: judge at the precision the cells keep (1e-4 days).
    within = "unknown" if rule is None else str(round(days, 4) <= rule.timescale).lower()
    month = ctx.month(end)
    return [("progressions", (month, destination, within), None),
            *durations(ctx, "progression", (month, destination), start, end)]


CONTACTS = Family(
    "contact", contact_facts,
    counts=(
        Count("contacts_received", "cspa_contacts_received",
              ("month", "channel", "source_group", "team"),
              "Contacts received in the calendar month (event time)."),
        Count("contacts_decided", "cspa_contacts_decided", ("month", "outcome"),
              "Contacts decided in the month, by RFS outcome category."),
        Count("progressions", "cspa_progressions", ("month", "destination", "within_timescale"),
              "Progressions in the month, by destination and whether within timescale."),
        Count("contacts_without_child_key", "cspa_contacts_without_child_key",
              ("month", "source_group"),
              "Contacts received in the month whose receipt names no child: not judged a "
              "repeat or not (cspa_child_contacts counts the others)."),
        Count("referrals_without_child_key", "cspa_referrals_without_child_key",
              ("month", "source_group"),
              "Referrals (progressions to children's social care) in the month of contacts "
              "that name no child: not judged a re-referral or not."),
    ),
    distributions=(
        *duration_figures("contact_completion", "cspa_contact_completion",
                          ("month", "source_group", "pathway"),
                          "Contact received to completed, by completion month"),
        *duration_figures("early_help_allocation", "cspa_early_help_allocation", ("month",),
                          "Progression to early help to allocation by the EHH"),
        *duration_figures("progression", "cspa_progression", ("month", "destination"),
                          "Contact received to progression"),
    ),
    recent=(Recent("contacts_received_hourly", "cspa_recent_contacts_received",
                   "Contacts received"),
            Recent("contacts_decided_hourly", "cspa_recent_contacts_decided",
                   "Contacts decided")),
    cells={"contacts_received_hourly": ("hour",), "contacts_decided_hourly": ("hour",)},
)
