"""Partner agencies' responses to MAP enquiries: which partner is slow (issue 29.2).

A MAP enquiry asks each partner agency it consults for what the agency knows
(``map_enquiry.agency_requested``) and the agency answers (``map_enquiry.agency_responded``).
Both fold into the enquiry's MAP record, one slot per agency (``asked:<agency>``,
``answered:<agency>``: ``records.PartnerRequest``, ``records.PartnerResponse``), so a
duplicate changes nothing, a correction replaces its version and an answer that arrives
before its request waits in its slot until the request comes. A request is one item of
rule ``partner_response`` (4 office hours, ``config/rules.toml``), judged by open work like
any rule's (``stream.state.timeliness.judge``: one item per agency). MAP completions
without these events count exactly as before: nothing here reads ``open`` or ``done``.

Facts of a MAP record, per agency asked (labels: month and ``agency``, taxonomy ``agency``):

* ``partner_requests``: one per request, in the local month it was made;
* ``partner_response_working_hours``: request to response in office hours on working
  days, as a value, in the month of the response (requests that have both events);
* ``partner_responses_late``: one per response after its deadline (exactly the deadline
  open work and ``cspa_breaches`` use), in the month of the response;
* ``partner_unanswered``: one per request with no response yet, in the month of the
  request: the report's "open now" (as at its data), a cell without a metric of its own
  (live, the gauges below say the same by open-work state).

Open requests now (``PartnerRequests``, a listener of ``OpenWork`` like calls waiting) are
judged against the clock at scrape time, by agency and open-work state. Keys never leave
the listener; labels are agencies, states and months only.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from stream.state.facts import Count, Distribution, Fact, FactContext
from stream.state.record_index import Part, RecordIndex
from stream.state.records import (
    Endpoint,
    PartnerRequest,
    PartnerResponse,
    Record,
    occurred_keyed,
)
from stream.state.rules import Versions
from stream.state.timeliness import STATES, Item, OpenWork, schedule
from stream.state.working_days import WorkingCalendar

#: the timescale rule a partner's answer is judged by
RULE = "partner_response"
#: histogram buckets of response times, in office hours (the timescale is 4)
HOUR_BUCKETS = (0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 16.0, 40.0)
#: the slot families of requests and answers (``records.occurred_keyed``)
_ASKED: Endpoint = (PartnerRequest.KIND, PartnerRequest.KEY, None, None)
_ANSWERED: Endpoint = (PartnerResponse.KIND, PartnerResponse.KEY, None, None)
#: one agency's request of one enquiry: (agency, requested at, responded at or None)
Request = tuple[str, float, float | None]


def requests_of(record: Record | None) -> list[Request]:
    """Every agency the MAP record asked, with its answer's time if it came (by agency)."""
    if record is None:
        return []
    return occurred_keyed(record, _ASKED, _ANSWERED)


def working_hours(calendar: WorkingCalendar, start: float, end: float) -> float:
    """Office hours on working days from ``start`` to ``end`` (0 if answered first)."""
    return 0.0 if end <= start else calendar.working_hours_between_ts(start, end)


def partner_facts(rec: Record, ctx: FactContext) -> list[Fact]:
    """The facts of one MAP record's partner requests (module docstring)."""
    facts: list[Fact] = []
    for agency, asked, answered in requests_of(rec):
        facts.append(("partner_requests", (ctx.month(asked), agency), None))
        if answered is None:
            facts.append(("partner_unanswered", (ctx.month(asked), agency), None))
            continue
        month = ctx.month(answered)
        facts.append(("partner_response_working_hours", (month, agency),
                      working_hours(ctx.calendar, asked, answered)))
        rule = ctx.rule(RULE, asked)
        if rule is not None and answered > schedule(rec, rule, asked, answered,
                                                     ctx.calendar)[0]:
            facts.append(("partner_responses_late", (month, agency), None))
    return facts


COUNTS = (
    Count("partner_requests", "cspa_partner_requests", ("month", "agency"),
          "MAP enquiries' requests to the partner agency made in the month."),
    Count("partner_responses_late", "cspa_partner_responses_late", ("month", "agency"),
          "Partner agencies' answers in the month that came after their deadline "
          "(rule partner_response: 4 working hours)."),
)
DISTRIBUTIONS = (
    Distribution("partner_response_working_hours", "cspa_partner_response_working_hours",
                 ("month", "agency"), HOUR_BUCKETS,
                 "MAP enquiry request to the partner agency's answer, in office hours on "
                 "working days of England and Wales, by month of the answer."),
)


#: facts no metric exposes one to one (``facts.Family.cells``)
CELLS = {"partner_unanswered": ("month", "agency")}


@dataclass
class AgencyState:
    """One agency's open requests at one instant: by open-work state, and the oldest."""

    states: dict[str, int]
    oldest_working_hours: float = 0.0


#: (agency, open-work item) of each unanswered request of one MAP record
Requests = tuple[tuple[str, Item], ...]


class PartnerRequests(RecordIndex[Requests]):
    """Open partner requests per partition, from the MAP records (a listener of OpenWork)."""

    KIND = PartnerRequest.KIND

    def __init__(self, work: OpenWork, agencies: Iterable[str]) -> None:
        super().__init__()
        self.work = work
        self.agencies = tuple(agencies)
        self.versions: Versions | None = work.rules.get(RULE)
        #: partition -> the keys not found wholly stale by the last ``evaluate`` (or
        #: changed since). A stale request stays stale as the clock moves on (its
        #: deadline only falls further behind) until its record changes; with a national
        #: year most unanswered requests are stale, and judging each at every scrape
        #: held the event loop over 50 ms (BENCHMARKS.md, step 48).
        self._live: dict[Part, dict[str, Requests]] = {}
        self._cutoff = -math.inf  # the stale cutoff of the last evaluate

    def update(self, partition: Part, key: str, record: Record | None) -> None:
        super().update(partition, key, record)
        if record is not None and record.get("k") != self.KIND:
            return
        value = self._by_part.get(partition, {}).get(key)
        if value:
            self._live.setdefault(partition, {})[key] = value
        elif partition in self._live:
            self._live[partition].pop(key, None)

    def drop_partition(self, partition: Part) -> None:
        super().drop_partition(partition)
        self._live.pop(partition, None)

    def drop_topic(self, topic: str, keep: Collection[Part] = ()) -> None:
        super().drop_topic(topic, keep)
        self._live = {p: v for p, v in self._live.items() if p in self._by_part}

    def restore(self, partition: Part, state: dict[str, Requests] | None) -> None:
        super().restore(partition, state)
        if state is not None:
            self._live[partition] = dict(state)  # each judged again at the next evaluate

    def value_of(self, record: Record | None) -> Requests:
        """(agency, item) of each request of the record still unanswered."""
        if self.versions is None or record is None:
            return ()
        cal, out = self.work.calendar, []
        for agency, asked, answered in requests_of(record):
            rule = self.versions.at(cal.clock_start_ts(asked))
            if answered is None and rule is not None:
                deadline, warn = schedule(record, rule, asked, None, cal)
                out.append((agency, Item(rule.name, rule.version, rule.team, "map", asked,
                                         deadline, warn, None, agency)))
        return tuple(out)

    def evaluate(self, now: float, owned: Collection[Part]) -> dict[str, AgencyState]:
        """Every agency (taxonomy ones always present) as it stands at ``now``.

        States are open work's (``OpenWork.state``); stale requests (past the open-work
        horizon) are left out, as ``cspa_open_items`` leaves them out.
        """
        cutoff = self.work.stale_cutoff(now)
        if cutoff < self._cutoff:  # the clock went back: judge every request again
            self._live = {p: dict(v) for p, v in self._by_part.items()}
        self._cutoff = cutoff
        out = {a: AgencyState(dict.fromkeys(STATES, 0)) for a in self.agencies}
        for part in owned:
            live = self._live.get(part)
            if not live:
                continue
            for key in [k for k, requests in live.items()
                        if not self._count(requests, cutoff, now, out)]:
                del live[key]  # wholly stale: not judged again until its record changes
        return out

    def _count(self, requests: Requests, cutoff: float, now: float,
               out: dict[str, AgencyState]) -> bool:
        """Count the requests not stale into ``out``; whether there was one."""
        work, counted = self.work, False
        for agency, item in requests:
            if item.deadline_ts <= cutoff:  # (OpenWork.stale)
                continue
            counted = True
            state = out.setdefault(agency, AgencyState(dict.fromkeys(STATES, 0)))
            state.states[work.state(item, now)] += 1
            age = working_hours(work.calendar, item.start_ts, now)
            state.oldest_working_hours = max(state.oldest_working_hours, age)
        return counted


def listen(work: OpenWork, agencies: Iterable[str]) -> PartnerRequests:
    """A PartnerRequests fed by ``work``'s record updates (rebuilt and checkpointed with it)."""
    requests = PartnerRequests(work, agencies)
    work.listeners.append(requests)
    return requests
