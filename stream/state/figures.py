"""Facts: what one record contributes to the figures.

A fact is ``(figure, labels, value)``: one unit of a count, optionally with a
measured value (working days, seconds, agencies consulted). Every figure of
the report is a sum over facts, so a record's contribution can be withdrawn
and re-added exactly when the record changes (``stream.state.aggregates``).

Months are calendar months of the configured time zone, taken from event time:
a backfilled event lands in the month it happened in. Every label value comes
from the taxonomy or from fixed sets defined here, never from an identifier.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from stream.contract.taxonomy import Taxonomy
from stream.state.records import Record
from stream.state.rules import Rule, Versions
from stream.state.working_days import WorkingCalendar, local_month, us_rounded

Fact = tuple[str, tuple[str, ...], float | None]


@dataclass(frozen=True)
class FactContext:
    """What fact extraction needs: the calendar, the taxonomy and the timescales."""

    calendar: WorkingCalendar
    taxonomy: Taxonomy
    rules: Mapping[str, Versions]
    tz: ZoneInfo
    _months: dict[int, str] = field(default_factory=dict, compare=False, repr=False)

    def month(self, ts: float) -> str:
        """Calendar month ("2019-08") of a POSIX time in the configured zone."""
        return local_month(ts, self.tz, self._months)

    @staticmethod
    def hour(ts: float) -> str:
        """The clock hour of a POSIX time, as whole hours since the epoch (DST-proof).

        Hourly cells feed the live windows (this hour, last 24 hours, today).
        """
        return str(int(ts // 3600))

    def working_days(self, start: float, end: float) -> float:
        """Working days between two POSIX times, at a datetime's microsecond precision."""
        if end <= start:
            return 0.0  # out-of-order clocks upstream: never a negative duration
        return self.calendar.working_days_between_ts(us_rounded(start), us_rounded(end))

    def rule(self, name: str, start: float) -> Rule | None:
        """The version of rule ``name`` judging work received at ``start`` (POSIX s): the
        one in force when its clock started, after the out-of-hours roll-over (None: no
        such rule then)."""
        versions = self.rules.get(name)
        if versions is None:
            return None
        single = versions.single  # the fast path: one version, since always
        return single if single is not None else versions.at(
            self.calendar.clock_start_ts(start))

    def calendar_days(self, start: float, end: float) -> float:
        return max(0.0, (end - start) / 86_400.0)


def _durations(ctx: FactContext, figure: str, labels: tuple[str, ...], start: float,
               end: float) -> list[Fact]:
    return [(figure + "_working_days", labels, ctx.working_days(start, end)),
            (figure + "_calendar_days", labels, ctx.calendar_days(start, end))]


def contact_facts(rec: Record, ctx: FactContext) -> list[Fact]:
    facts: list[Fact] = []
    rcv, dec = rec.get("rcv"), rec.get("dec")
    group: str = ctx.taxonomy.group_of(rcv[3]) if rcv else ""
    if rcv:
        facts.append(("contacts_received", (ctx.month(rcv[0]), rcv[2], group, rcv[4]), None))
        facts.append(("contacts_received_hourly", (ctx.hour(rcv[0]),), None))
    if dec:
        month = ctx.month(dec[0])
        facts.append(("contacts_decided", (month, dec[2]), None))
        facts.append(("contacts_decided_hourly", (ctx.hour(dec[0]),), None))
        if rcv:
            labels: tuple[str, ...] = (month, group, dec[3] or "not_yet_recorded")
            facts += _durations(ctx, "contact_completion", labels, rcv[0], dec[0])
    eh = rec.get("prog:early_help")
    alloc = rec.get("alloc")
    if alloc and eh:
        facts += _durations(ctx, "early_help_allocation", (ctx.month(alloc[0]),), eh[0],
                            alloc[0])
    for destination in ctx.taxonomy.ordered("destination"):
        prog = rec.get("prog:" + destination)
        if prog and rcv:
            facts += _progression(ctx, destination, rcv[0], prog[0])
    return facts


def _progression(ctx: FactContext, destination: str, start: float, end: float) -> list[Fact]:
    rule = ctx.rule("progression_" + destination, start)
    days = ctx.working_days(start, end)
    # Float noise in the clock arithmetic can put an exact "1 working day" at
    # 1.0000000000000142: judge at the precision the cells keep (1e-4 days).
    within = "unknown" if rule is None else str(round(days, 4) <= rule.timescale).lower()
    month = ctx.month(end)
    return [("progressions", (month, destination, within), None),
            *_durations(ctx, "progression", (month, destination), start, end)]


def email_facts(rec: Record, ctx: FactContext) -> list[Fact]:
    ts = rec["res"][0]
    return [("emails_resolved", (ctx.month(ts),), None),
            ("emails_resolved_hourly", (ctx.hour(ts),), None)]


def map_facts(rec: Record, ctx: FactContext) -> list[Fact]:
    done = rec.get("done")
    if not done:
        return []
    ts, _, agencies, outcome, service = done
    month = ctx.month(ts)
    facts: list[Fact] = [("map_completed", (month, outcome), None),
                         ("map_completed_hourly", (ctx.hour(ts),), None),
                         ("map_agencies_consulted", (month,), float(len(agencies)))]
    facts += [("map_by_agency", (month, agency), None) for agency in agencies]
    if outcome == "level_3" and service:
        facts.append(("level3_outcomes", (month, service), None))
    opened = rec.get("open")
    if opened:
        facts += _durations(ctx, "map_enquiry", (month,), opened[0], ts)
    return facts


def call_facts(rec: Record, ctx: FactContext) -> list[Fact]:
    facts: list[Fact] = []
    # An answer outranks an abandon of the same call (a telephony retry artefact).
    outcome = rec.get("ans") or rec.get("abn")
    if outcome:
        ts, _, queue, wait = outcome
        name = "calls_answered" if rec.get("ans") else "calls_abandoned"
        # A call belongs to the month it was offered in: queued time, else
        # the outcome time less the wait.
        offered = rec["q"][0] if rec.get("q") else ts - wait
        facts.append((name, (ctx.month(offered), queue), wait))
        facts.append((name + "_hourly", (ctx.hour(offered), queue), wait))
    end = rec.get("end")
    if end and rec.get("ans"):
        facts.append(("call_handle_seconds", (ctx.month(end[0]), end[2]), end[3]))
    return facts


def audit_facts(rec: Record, ctx: FactContext) -> list[Fact]:
    ts, _, team, grade = rec["g"]
    return [("audits", (ctx.month(ts), team, grade), None)]


FACTS_BY_KIND: Mapping[str, Callable[[Record, FactContext], list[Fact]]] = {
    "contact": contact_facts,
    "email": email_facts,
    "map": map_facts,
    "call": call_facts,
    "audit": audit_facts,
}


def facts_of(record: Record | None, ctx: FactContext) -> list[Fact]:
    """All facts one record contributes (none for a missing record)."""
    if record is None:
        return []
    return FACTS_BY_KIND[record["k"]](record, ctx)
