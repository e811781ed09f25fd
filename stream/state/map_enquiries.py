"""The MAP enquiries family: multi-agency enquiries completed, who was consulted, how long.

Read from the MAP record (``Opening``, ``Completion``). Everything counts in the local
month the enquiry completed; an enquiry still open has no facts (its timeliness is open
work: ``stream.state.timeliness``).

* ``map_completed`` (month, outcome level), and hourly. The report's "% progressing to
  Level 4" is ``level_4`` over all completed.
* ``map_by_agency`` (month, agency): one per agency consulted (an enquiry counts under
  each of its agencies, once each).
* ``map_agencies_consulted`` (month): the number of agencies, as a value (average,
  median, distribution).
* ``level3_outcomes`` (month, Level 3 service): completions at ``level_3`` that name
  their service.
* ``map_enquiry``: opened to completed, in working and calendar days (only enquiries
  with both events). The report's "% within 1 day" is values ``<= 1.0`` over all.

The same record's partner requests and responses give their own facts, defined in
``stream.state.partner_responses`` and declared with this family (one family per record
kind); an enquiry without them gives exactly the facts above.
"""

from __future__ import annotations

from stream.state.facts import (
    Count,
    Distribution,
    Fact,
    FactContext,
    Family,
    Recent,
    duration_figures,
    durations,
)
from stream.state.partner_responses import CELLS as PARTNER_CELLS
from stream.state.partner_responses import COUNTS as PARTNER_COUNTS
from stream.state.partner_responses import DISTRIBUTIONS as PARTNER_DISTRIBUTIONS
from stream.state.partner_responses import partner_facts
from stream.state.records import Completion, Opening, Record

#: the outcome level whose completions are counted by Level 3 service
LEVEL_3 = "level_3"
#: the outcome level of "% progressing to Level 4" (over all completed)
LEVEL_4 = "level_4"
#: working days of "% within 1 day" (``<=`` on the stored value; the running shares add
#: ``CSPA_SINCE_MAP_WITHIN_DAYS``)
WITHIN_DAYS = 1.0
AGENCY_BUCKETS = tuple(float(n) for n in range(0, 13))


def map_facts(rec: Record, ctx: FactContext) -> list[Fact]:
    """The facts of one MAP enquiry record: its completion's and its partners'."""
    return completion_facts(rec, ctx) + partner_facts(rec, ctx)


def completion_facts(rec: Record, ctx: FactContext) -> list[Fact]:
    """The facts of the enquiry's completion (none while it is open)."""
    done = rec.get(Completion.KEY)
    if not done:
        return []
    ts, agencies = Completion.occurred_at(done), Completion.agencies(done)
    outcome, service = Completion.outcome(done), Completion.level3_service(done)
    month = ctx.month(ts)
    facts: list[Fact] = [("map_completed", (month, outcome), None),
                         ("map_completed_hourly", (ctx.hour(ts),), None),
                         ("map_agencies_consulted", (month,), float(len(agencies)))]
    facts += [("map_by_agency", (month, agency), None) for agency in agencies]
    if outcome == LEVEL_3 and service:
        facts.append(("level3_outcomes", (month, service), None))
    opened = rec.get(Opening.KEY)
    if opened:
        facts += durations(ctx, "map_enquiry", (month,), Opening.occurred_at(opened), ts)
    return facts


MAP_ENQUIRIES = Family(
    "map", map_facts,
    counts=(
        Count("map_completed", "cspa_map_enquiries_completed", ("month", "outcome"),
              "MAP enquiries completed in the month, by outcome level."),
        Count("map_by_agency", "cspa_map_enquiries_by_agency", ("month", "agency"),
              "MAP enquiries completed in the month that consulted the agency."),
        Count("level3_outcomes", "cspa_level3_outcomes", ("month", "service"),
              "MAP enquiries completed at Level 3, by Level 3 service."),
        *PARTNER_COUNTS,
    ),
    distributions=(
        *duration_figures("map_enquiry", "cspa_map_enquiry", ("month",),
                          "MAP enquiry opened to completed, by completion month"),
        Distribution("map_agencies_consulted", "cspa_map_enquiry_agencies_consulted",
                     ("month",), AGENCY_BUCKETS,
                     "Agencies consulted per completed MAP enquiry."),
        *PARTNER_DISTRIBUTIONS,
    ),
    recent=(Recent("map_completed_hourly", "cspa_recent_map_enquiries_completed",
                   "MAP enquiries completed"),),
    cells={"map_completed_hourly": ("hour",), **PARTNER_CELLS},
)
