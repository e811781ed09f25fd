"""Committee-report test data: known events for every family, and the report they must give.

Two generators:

* ``generate(seed)`` (``generated``): a random but fully known set of events over
  July-November 2019 (weekends, the August bank holiday of 26 Aug 2019, events a little
  outside the range, late (backfilled) events sent after later months' events,
  re-deliveries, corrections, completions sent before their openings, and a few invalid
  messages);
* ``seed_dataset()`` (``seed``): events that reproduce the December 2019 committee
  report's own figures (shared/seed/000_...txt), with the call counts found in
  tests/unit/report/test_report.py.

``expected_report(facts_of(data), months, Defs(...))`` (``facts``, ``expected``) computes
every figure of ``python -m stream report --format json`` independently: nothing here
imports ``stream``. Records ("latest event of each type wins"), months (Europe/London,
event time), working days (a day-by-day loop over ``holidays.country_holidays("GB",
subdiv="ENG")``, in ``workdays``), nearest-rank medians and the percentages are
re-implemented the plain way. ``compare(doc, expected)`` (``comparing``) lists every
mismatch between a JSON report and an expectation.

The modules, by what they build:

* ``workdays``: taxonomy and rule look-ups, and the calendar by hand;
* ``events``: ``Message``, ``Dataset`` and ``Builder``;
* ``generated``: the random generator and its crafted edge cases;
* ``facts``: the events folded into cases, and each case's facts;
* ``expected``: the expected report, its notes, and what is published;
* ``comparing``: comparing a JSON report with an expectation, and ``text_table``;
* ``seed``: the seed's figures and ``seed_dataset``;
* ``since``: the running totals of ``report --since`` and comparing them.

Everything is re-exported here: ``from tests import reportgen as rg`` then ``rg.X``.

Resolution: the worker keeps measured values to 1e-4 (aggregates.VALUE_DECIMALS,
documented); the expectation rounds its durations the same way, and the generator
keeps random durations at least 0.002 day away from whole days and from the
progression timescales, so that neither side's float noise can move a value across a
bin or a timescale. Durations that are whole days on purpose (Fri 10:00 -> Mon 10:00)
are built exactly.
"""

from tests.reportgen.comparing import (
    DISPLAY_DIGITS,
    TOLERANCE,
    compare,
    flatten,
    mismatch,
    text_table,
)
from tests.reportgen.events import Builder, Dataset, Message
from tests.reportgen.expected import (
    NA,
    Defs,
    Fig,
    Key,
    expected_notes,
    expected_report,
    published,
)
from tests.reportgen.facts import Facts, facts_of
from tests.reportgen.generated import FIRST, LAST, MONTHS, crafted_checks, generate
from tests.reportgen.seed import (
    AUG,
    NOV,
    OCT,
    QUARTER,
    SEED_AUDITS,
    SEED_CALLS,
    SEED_COMPLETION,
    SEED_COMPLETION_TOTALS,
    SEED_EARLY_HELP_TIMELINESS,
    SEED_EMAILS,
    SEED_LEVEL3,
    SEED_MAP,
    SEED_OUTCOMES,
    SEED_PATHWAYS,
    SEP,
    seed_dataset,
)
from tests.reportgen.since import compare_since, expected_since
from tests.reportgen.workdays import (
    DAY_BINS,
    LONDON,
    ROOT,
    RULES,
    TAXONOMY,
    TOPICS,
    TOTAL,
    VALUE_DECIMALS,
    add_working_days,
    calendar_days,
    codes,
    is_working,
    local,
    month_of,
    nearest_rank,
    source_group,
    timescale,
    valid_from,
    working_days,
)

__all__ = [
    "compare_since", "expected_since",
    "AUG",
    "DAY_BINS",
    "DISPLAY_DIGITS",
    "FIRST",
    "LAST",
    "LONDON",
    "MONTHS",
    "NA",
    "NOV",
    "OCT",
    "QUARTER",
    "ROOT",
    "RULES",
    "SEED_AUDITS",
    "SEED_CALLS",
    "SEED_COMPLETION",
    "SEED_COMPLETION_TOTALS",
    "SEED_EARLY_HELP_TIMELINESS",
    "SEED_EMAILS",
    "SEED_LEVEL3",
    "SEED_MAP",
    "SEED_OUTCOMES",
    "SEED_PATHWAYS",
    "SEP",
    "TAXONOMY",
    "TOLERANCE",
    "TOPICS",
    "TOTAL",
    "VALUE_DECIMALS",
    "Builder",
    "Dataset",
    "Defs",
    "Facts",
    "Fig",
    "Key",
    "Message",
    "add_working_days",
    "calendar_days",
    "codes",
    "compare",
    "crafted_checks",
    "expected_notes",
    "expected_report",
    "facts_of",
    "flatten",
    "generate",
    "is_working",
    "local",
    "mismatch",
    "month_of",
    "nearest_rank",
    "published",
    "seed_dataset",
    "source_group",
    "text_table",
    "timescale",
    "valid_from",
    "working_days",
]
