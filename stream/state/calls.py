"""The calls family: calls offered, answered, abandoned, and the service level.

Read from the call record (``Queueing``, ``Answer``, ``Abandon``, ``Ending``). A call
counts once, when its outcome is known: answered, or abandoned (an answer outranks an
abandon of the same call, a telephony retry artefact). It belongs to the local month
(and clock hour) it was *offered*: queued, else its outcome less its wait. Its fact
carries the queue wait in seconds, so every threshold is applied when figures are read:

* offered = answered + abandoned;
* answered within target: answered with a wait ``<=`` the service-level threshold;
* short abandons: abandoned with a wait ``<=`` the short-abandon threshold (0: none);
* the service level is answered within target over a denominator the variant in force
  chooses (offered, answered, or offered less short abandons); the abandoned rate is
  abandoned less short over offered less short.

Those definitions are read-time settings (``CallDefinitions``, not fold inputs), so a
report can be recomputed under other ones. ``call_handle_seconds``: answer to end of
answered calls, in the month the call ended.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stream.settings import PeriodCombination, ServiceLevelVariant, Settings
from stream.state.aggregates import Aggregates
from stream.state.facts import Distribution, Fact, FactContext, Family
from stream.state.records import Abandon, Answer, Ending, Queueing, Record

WAIT_BUCKETS = (5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
HANDLE_BUCKETS = (60.0, 180.0, 300.0, 600.0, 900.0, 1800.0, 3600.0)
#: the outcomes a call is counted under (figures ``calls_answered``, ``calls_abandoned``)
OUTCOMES = ("answered", "abandoned")

#: the additive parts of the call figures, per (month or hour, queue), and their meaning
PARTS: Mapping[str, str] = {
    "offered": "Calls offered (answered + abandoned), by month offered.",
    "answered": "Calls answered.",
    "answered_within_target": "Calls answered within the service-level threshold.",
    "abandoned": "Calls abandoned (all).",
    "abandoned_short": "Calls abandoned within the short-abandon threshold.",
    "service_level_denominator": "Denominator of the service level, per the variant in force.",
}


@dataclass(frozen=True)
class CallDefinitions:
    """The read-time definitions of the call figures (settings; printed with a report)."""

    service_level_seconds: float = 20.0
    service_level_variant: ServiceLevelVariant = ServiceLevelVariant.OFFERED
    short_abandon_seconds: float = 0.0
    period_combination: PeriodCombination = PeriodCombination.RATIO_OF_SUMS

    @classmethod
    def of(cls, settings: Settings) -> CallDefinitions:
        """The definitions the settings give (read-time: not in the state's fingerprint)."""
        return cls(settings.service_level_seconds, settings.service_level_variant,
                   settings.short_abandon_seconds, settings.period_combination)

    def to_json(self) -> dict[str, Any]:
        """As a worker serves them (``/cells``, ``/ready``) and a report reads them."""
        return {"service_level_seconds": self.service_level_seconds,
                "variant": self.service_level_variant.value,
                "short_abandon_seconds": self.short_abandon_seconds,
                "period_combination": self.period_combination.value}


def call_facts(rec: Record, ctx: FactContext) -> list[Fact]:
    """The facts of one call record."""
    facts: list[Fact] = []
    answer = rec.get(Answer.KEY)
    outcome = answer or rec.get(Abandon.KEY)
    if outcome:
        # Answer and Abandon share their fields' places (queue, wait_seconds).
        ts, queue, wait = Answer.occurred_at(outcome), Answer.queue(outcome), \
            Answer.wait_seconds(outcome)
        name = "calls_answered" if answer else "calls_abandoned"
        queued = rec.get(Queueing.KEY)
        offered = Queueing.occurred_at(queued) if queued else ts - wait
        facts.append((name, (ctx.month(offered), queue), wait))
        facts.append((name + "_hourly", (ctx.hour(offered), queue), wait))
    end = rec.get(Ending.KEY)
    if end and answer:
        facts.append(("call_handle_seconds", (ctx.month(Ending.occurred_at(end)),
                                              Ending.queue(end)), Ending.handle_seconds(end)))
    return facts


def call_parts(agg: Aggregates, defs: CallDefinitions,
               suffix: str = "") -> dict[tuple[str, ...], dict[str, int]]:
    """The ``PARTS`` per (month, queue) under the definitions in force.

    With ``suffix="_hourly"`` the first label is the hour instead of the month.
    """
    parts: dict[tuple[str, ...], dict[str, int]] = {}
    for outcome in OUTCOMES:
        for labels, cell in agg.figure("calls_" + outcome + suffix):
            row = parts.setdefault(labels, dict.fromkeys(PARTS, 0))
            row[outcome] += cell.count
            row["offered"] += cell.count
            if outcome == "answered":
                row["answered_within_target"] += cell.at_most(defs.service_level_seconds)
            elif defs.short_abandon_seconds > 0:
                row["abandoned_short"] += cell.at_most(defs.short_abandon_seconds)
    for row in parts.values():
        row["service_level_denominator"] = {
            ServiceLevelVariant.OFFERED: row["offered"],
            ServiceLevelVariant.ANSWERED: row["answered"],
            ServiceLevelVariant.OFFERED_LESS_SHORT: row["offered"] - row["abandoned_short"],
        }[defs.service_level_variant]
    return parts


def answer_waits(agg: Aggregates, hours: set[str]) -> dict[str, tuple[int, float]]:
    """(calls answered, seconds they waited) per queue, offered in the given clock hours.

    The average speed of answer is the second over the first; both add across workers.
    """
    totals: dict[str, tuple[int, float]] = {}
    for (hour, queue), cell in agg.figure("calls_answered_hourly"):
        if hour in hours:
            count, seconds = totals.get(queue, (0, 0.0))
            totals[queue] = (count + cell.count, seconds + cell.total)
    return totals


def service_level(row: Mapping[str, int]) -> tuple[int, int]:
    """(numerator, denominator) of the service level from one row of ``call_parts``."""
    return row["answered_within_target"], row["service_level_denominator"]


def abandoned_rate(row: Mapping[str, int]) -> tuple[int, int]:
    """(numerator, denominator) of the abandoned rate: short abandons are in neither."""
    return row["abandoned"] - row["abandoned_short"], row["offered"] - row["abandoned_short"]


CALLS = Family(
    "call", call_facts,
    distributions=(Distribution("call_handle_seconds", "cspa_call_handle_seconds",
                                ("month", "queue"), HANDLE_BUCKETS,
                                "Handling time of answered calls, by month the call ended."),),
    # exposed as their parts (``PARTS``), and the wait histogram, not one to one
    cells={f"calls_{outcome}{suffix}": (first, "queue") for outcome in OUTCOMES
           for suffix, first in (("", "month"), ("_hourly", "hour"))},
)
