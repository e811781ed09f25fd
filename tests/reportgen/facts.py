"""Records and facts: the valid events folded into cases, and what each case contributes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tests.groundtruth import PARTNER_HOURS, office_deadline, office_hours
from tests.reportgen.events import _KEY_OF, Dataset
from tests.reportgen.workdays import (
    LONDON,
    _kept,
    add_working_days,
    calendar_days,
    codes,
    complaint_timescales,
    month_of,
    source_group,
    timescale,
    working_days,
)


@dataclass
class Facts:
    """What each case contributes, in plain lists (durations kept to 1e-4)."""

    received: list[tuple[str, str, str, str]] = field(default_factory=list)
    decided: list[tuple[str, str]] = field(default_factory=list)
    #: month, source group, pathway, working days, calendar days
    completion: list[tuple[str, str, str, float, float]] = field(default_factory=list)
    allocation: list[tuple[str, float, float]] = field(default_factory=list)
    #: month, destination, within timescale, working days, calendar days
    progressions: list[tuple[str, str, bool, float, float]] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    #: month, outcome, distinct agencies, level 3 service, working days, calendar days
    map_done: list[tuple[str, str, tuple[str, ...], str | None, float | None, float | None]] = (
        field(default_factory=list))
    #: month offered, queue, answered?, wait seconds
    calls: list[tuple[str, str, bool, float]] = field(default_factory=list)
    audits: list[tuple[str, str, str]] = field(default_factory=list)
    reviews: list[str] = field(default_factory=list)  # month held
    dips: list[tuple[str, int]] = field(default_factory=list)  # month taken, cases sampled
    #: advisor key, month of their latest join of a team, the team, month of that team's
    #: latest leave if it ends the spell (one entry per team joined)
    advisors: list[tuple[str, str, str, str | None]] = field(default_factory=list)
    audited: list[tuple[str, str]] = field(default_factory=list)  # month graded, advisor key
    #: month received, from whom, agency (or "none"), kind
    feedback: list[tuple[str, str, str, str]] = field(default_factory=list)
    quotes: list[str] = field(default_factory=list)  # month approved with consent
    withdrawals: list[str] = field(default_factory=list)  # month withdrawn
    #: month responded, within the stage 1 timescale (10 working days, 20 where extended)
    complaints: list[tuple[str, bool]] = field(default_factory=list)
    #: month requested, agency (one per agency a MAP enquiry asked)
    partner_requests: list[tuple[str, str]] = field(default_factory=list)
    #: month responded, agency, office hours from request (kept to 1e-4), late?
    partner_responses: list[tuple[str, str, float, bool]] = field(default_factory=list)
    #: month requested, agency: asked and not answered
    partner_open: list[tuple[str, str]] = field(default_factory=list)
    #: month received (referred), source group, repeat (re-referral): contacts naming a child
    child_contacts: list[tuple[str, str, bool]] = field(default_factory=list)
    child_referrals: list[tuple[str, str, bool]] = field(default_factory=list)
    #: month received (referred), source group: contacts (referrals) naming no child
    unkeyed_contacts: list[tuple[str, str]] = field(default_factory=list)
    unkeyed_referrals: list[tuple[str, str]] = field(default_factory=list)


def _kind(event_type: str) -> str:
    head = event_type.split(".")[0]
    return {"early_help": "contact", "map_enquiry": "map", "learning_review": "qa",
            "dip_sample": "qa", "advisor": "qa", "complaint": "feedback"}.get(head, head)


def _at(e: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(e["occurred_at"])


def facts_of(data: Dataset | Iterable[dict[str, Any]]) -> Facts:
    """Fold the valid events into cases (latest event of each type wins) and list facts."""
    events = data.events() if isinstance(data, Dataset) else list(data)
    cases: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    for e in events:
        slot = e["event_type"]
        if slot == "contact.progressed":
            slot += ":" + e["destination"]
        elif slot in ("advisor.joined", "advisor.left"):  # a spell per team
            slot += ":" + e["team"]
        elif slot.startswith("map_enquiry.agency_"):  # a request, an answer per agency
            slot += ":" + e["agency"]
        case = cases[(_kind(e["event_type"]), e[_KEY_OF[e["event_type"]]])]
        old = case.get(slot)
        if old is None or (_at(e).timestamp(), e["event_id"]) > (_at(old).timestamp(),
                                                                  old["event_id"]):
            case[slot] = e
    f = Facts()
    for (kind, _), case in cases.items():
        if kind == "contact":
            rcv, dec = case.get("contact.received"), case.get("contact.decided")
            group = source_group(rcv["source_code"]) if rcv else ""
            if rcv:
                f.received.append((month_of(_at(rcv)), rcv["channel"], group, rcv["team"]))
            if dec:
                f.decided.append((month_of(_at(dec)), dec["outcome"]))
                if rcv:
                    f.completion.append((month_of(_at(dec)), group,
                                         dec.get("pathway") or "not_yet_recorded",
                                         _kept(working_days(_at(rcv), _at(dec))),
                                         _kept(calendar_days(_at(rcv), _at(dec)))))
            eh, alloc = case.get("contact.progressed:early_help"), case.get("early_help.allocated")
            if eh and alloc:
                f.allocation.append((month_of(_at(alloc)),
                                     _kept(working_days(_at(eh), _at(alloc))),
                                     _kept(calendar_days(_at(eh), _at(alloc)))))
            for dest in codes("destination"):
                prog = case.get("contact.progressed:" + dest)
                if prog and rcv:
                    wd = working_days(_at(rcv), _at(prog))
                    f.progressions.append((month_of(_at(prog)), dest, wd <= timescale(dest),
                                           _kept(wd), _kept(calendar_days(_at(rcv), _at(prog)))))
        elif kind == "email":
            f.emails.append(month_of(_at(case["email.resolved"])))
        elif kind == "map":
            done, opened = case.get("map_enquiry.completed"), case.get("map_enquiry.opened")
            if done:
                service = done.get("level3_service") if done["outcome"] == "level_3" else None
                wd = _kept(working_days(_at(opened), _at(done))) if opened else None
                cd = _kept(calendar_days(_at(opened), _at(done))) if opened else None
                f.map_done.append((month_of(_at(done)), done["outcome"],
                                   tuple(sorted(set(done["agencies_consulted"]))), service,
                                   wd, cd))
            _partners(f, case)
        elif kind == "call":
            outcome = case.get("call.answered") or case.get("call.abandoned")
            if outcome:
                queued = case.get("call.queued")
                offered = (_at(queued) if queued else
                           _at(outcome) - timedelta(seconds=outcome["wait_seconds"]))
                f.calls.append((month_of(offered), outcome["queue"],
                                outcome["event_type"] == "call.answered",
                                _kept(float(outcome["wait_seconds"]))))
        elif kind == "audit":
            a = case["audit.graded"]
            f.audits.append((month_of(_at(a)), a["team"], a["grade"]))
            if a.get("advisor_key"):
                f.audited.append((month_of(_at(a)), a["advisor_key"]))
        elif kind == "qa":
            _quality(f, case)
        elif kind == "feedback":
            _feedback(f, case)
    _children(f, cases)
    return f


def _children(f: Facts, cases: Mapping[tuple[str, str], dict[str, dict[str, Any]]]) -> None:
    """Each contact (referral) naming a child against all that child's others: a repeat
    when another came before it (earlier, or at the same instant with a smaller contact
    key) no earlier than the same local wall-clock time a year before."""
    contacts: dict[str, list[tuple[datetime, str, str]]] = defaultdict(list)
    referrals: dict[str, list[tuple[datetime, str, str]]] = defaultdict(list)
    for (kind, key), case in cases.items():
        rcv = case.get("contact.received") if kind == "contact" else None
        if rcv is None:
            continue
        group, child = source_group(rcv["source_code"]), rcv.get("child_key")
        ref = case.get("contact.progressed:childrens_social_care")
        if child is None:
            f.unkeyed_contacts.append((month_of(_at(rcv)), group))
            if ref:
                f.unkeyed_referrals.append((month_of(_at(ref)), group))
            continue
        contacts[child].append((_at(rcv), key, group))
        if ref:
            referrals[child].append((_at(ref), key, group))
    for per_child, out in ((contacts, f.child_contacts), (referrals, f.child_referrals)):
        for items in per_child.values():
            for at, key, group in items:
                out.append((month_of(at), group, any(
                    (o_at, o_key) < (at, key) and _year_apart_at_most(o_at, at)
                    for o_at, o_key, _ in items if o_key != key)))


def _year_apart_at_most(earlier: datetime, later: datetime) -> bool:
    a, b = earlier.astimezone(LONDON), later.astimezone(LONDON)
    return (a.year + 1, a.strftime("%m%d%H%M%S%f")) >= (b.year, b.strftime("%m%d%H%M%S%f"))


def _feedback(f: Facts, case: dict[str, dict[str, Any]]) -> None:
    """The latest of each feedback event counts (an approval only with consent), and a
    complaint's response is judged against its deadline: 10 working days from receipt, 20
    if an extension came no later than the 10-day deadline and no later than the response."""
    rcv, resp = case.get("feedback.received"), case.get("complaint.responded")
    if rcv is not None:
        f.feedback.append((month_of(_at(rcv)), rcv["from_whom"], rcv.get("agency") or "none",
                           rcv["kind"]))
    approval = case.get("feedback.quote_approved")
    if approval and approval["consent_to_publish"]:
        f.quotes.append(month_of(_at(approval)))
    if "feedback.withdrawn" in case:
        f.withdrawals.append(month_of(_at(case["feedback.withdrawn"])))
    if rcv is None or resp is None or rcv["kind"] != "complaint":
        return
    base, extended = complaint_timescales()
    deadline = add_working_days(_at(rcv), base)
    ext = case.get("complaint.extended")
    if ext is not None and _at(ext) <= deadline and _at(ext) <= _at(resp):
        deadline = add_working_days(_at(rcv), extended)
    f.complaints.append((month_of(_at(resp)), _at(resp) <= deadline))


def _partners(f: Facts, case: dict[str, dict[str, Any]]) -> None:
    """Each agency asked: its latest request counts in its month; its latest answer is
    timed from it in office hours, late after the rule's office hours, in the answer's
    month; unanswered, it is open in the month of the request."""
    for agency in codes("agency"):
        asked = case.get("map_enquiry.agency_requested:" + agency)
        answered = case.get("map_enquiry.agency_responded:" + agency)
        if asked is None:
            continue
        f.partner_requests.append((month_of(_at(asked)), agency))
        if answered is None:
            f.partner_open.append((month_of(_at(asked)), agency))
            continue
        late = _at(answered) > office_deadline(_at(asked), PARTNER_HOURS)
        f.partner_responses.append((month_of(_at(answered)), agency,
                                    _kept(office_hours(_at(asked), _at(answered))), late))


def _quality(f: Facts, case: dict[str, dict[str, Any]]) -> None:
    if "learning_review.held" in case:
        f.reviews.append(month_of(_at(case["learning_review.held"])))
    if "dip_sample.taken" in case:
        d = case["dip_sample.taken"]
        f.dips.append((month_of(_at(d)), d["cases_sampled"]))
    for team in codes("team"):  # each team's latest join, ended by its latest leave after
        joined, left = case.get("advisor.joined:" + team), case.get("advisor.left:" + team)
        if joined:
            ends = left is not None and _at(left) >= _at(joined)
            f.advisors.append((joined["advisor_key"], month_of(_at(joined)), team,
                               month_of(_at(left)) if ends and left else None))
