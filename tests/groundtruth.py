"""A random but fully known event set, and its figures computed independently.

Nothing here imports the worker's logic: months, source groups, working days,
de-duplication and "latest event wins" are re-implemented the plain way
(day-by-day loops, dicts), so a test comparing the two can catch either.
"""

from __future__ import annotations

import random
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import orjson

from tests import factories as f

LONDON = ZoneInfo("Europe/London")
ROOT = Path(__file__).resolve().parent.parent
TAXONOMY = tomllib.loads((ROOT / "topics" / "taxonomy.toml").read_text())
#: the app id the tests' workers run under (the harness's default): the worker's own
#: repartition topic is named for it, "{app_id}-children-repartition"
APP_ID = "cspa"
TOPICS = {k: v["topic"].replace("{app_id}", APP_ID) for k, v in
          tomllib.loads((ROOT / "topics" / "topics.toml").read_text()).items()}
_BANK = holidays.country_holidays("GB", subdiv="ENG", years=range(2015, 2031))


def is_working(d: date) -> bool:
    return d.weekday() < 5 and d not in _BANK


def working_days(a: datetime, b: datetime) -> float:
    """Elapsed time inside working days, in days (each local day counts as 1)."""
    if b <= a:
        return 0.0
    a, b = a.astimezone(LONDON), b.astimezone(LONDON)
    total, d = 0.0, a.date()
    while d <= b.date():
        if is_working(d):
            start = datetime(d.year, d.month, d.day, tzinfo=LONDON)
            nxt = d + timedelta(days=1)
            end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=LONDON)
            length = end.timestamp() - start.timestamp()
            lo, hi = max(a.timestamp(), start.timestamp()), min(b.timestamp(), end.timestamp())
            if hi > lo:
                total += (hi - lo) / length
        d += timedelta(days=1)
    return total


#: office hours of the working-hour clock (the settings' defaults), local wall-clock hours
OFFICE = (9, 17)
#: rule partner_response of config/rules.toml, read here as plain TOML: office hours
PARTNER_HOURS = float(next(r["timescale"] for r in tomllib.loads(
    (ROOT / "config" / "rules.toml").read_text())["rule"] if r["name"] == "partner_response"))


def _office(d: date) -> tuple[datetime, datetime]:
    """The office opening and closing of one local date."""
    return (datetime(d.year, d.month, d.day, OFFICE[0], tzinfo=LONDON),
            datetime(d.year, d.month, d.day, OFFICE[1], tzinfo=LONDON))


def office_hours(a: datetime, b: datetime) -> float:
    """Hours inside office hours on working days from ``a`` to ``b``, day by day (0 if b <= a)."""
    total, d = 0.0, a.astimezone(LONDON).date()
    while b > a and d <= b.astimezone(LONDON).date():
        if is_working(d):
            opens, closes = _office(d)
            lo, hi = max(a, opens), min(b, closes)
            if hi > lo:
                total += (hi - lo).total_seconds() / 3600
        d += timedelta(days=1)
    return total


def office_deadline(start: datetime, hours: float) -> datetime:
    """The instant ``hours`` of office time after ``start``: walk the days, spending each
    working day's office hours that remain after ``start`` until none are left to spend."""
    left, d = hours * 3600, start.astimezone(LONDON).date()
    while True:
        if is_working(d):
            opens, closes = _office(d)
            begin = max(start, opens)
            room = (closes - begin).total_seconds()
            if room > 0 and left <= room:
                return begin + timedelta(seconds=left)
            left -= max(0.0, room)
        d += timedelta(days=1)


def month(at: datetime) -> str:
    return at.astimezone(LONDON).strftime("%Y-%m")


@dataclass
class Message:
    topic: str
    key: bytes | None
    value: bytes
    timestamp_ms: int | None


@dataclass
class Dataset:
    messages: list[Message] = field(default_factory=list)
    bad: int = 0

    def add(self, family: str, key: str, event: dict[str, Any]) -> None:
        at = datetime.fromisoformat(event["occurred_at"])
        self.messages.append(Message(TOPICS[family], key.encode(), orjson.dumps(event),
                                     int(at.timestamp() * 1000)))


def _office_time(rng: random.Random, start: date, days: int) -> datetime:
    while True:
        d = start + timedelta(days=rng.randrange(days))
        if is_working(d) or rng.random() < 0.1:
            return datetime(d.year, d.month, d.day, 8, tzinfo=LONDON) + timedelta(
                seconds=rng.randrange(10 * 3600))


def generate(seed: int, start: date, days: int, contacts: int = 300, calls: int = 300,
             enquiries: int = 60, audits: int = 30, bad: int = 20, feedback: int = 0,
             partners: int = 0) -> Dataset:
    """Events for all families, with duplicates, late and out-of-order ones, and bad ones.

    ``feedback`` pieces of feedback and ``partners`` MAP enquiries' partner requests come on
    random streams of their own, so the other families' events are the same whatever their
    number.
    """
    rng = random.Random(seed)
    ds = Dataset()
    outcomes = list(TAXONOMY["contact_outcome"])
    pathways = [*TAXONOMY["pathway"], None]
    channels, codes = list(TAXONOMY["channel"]), list(TAXONOMY["source_code"])
    # The children (repeat contacts, re-referrals) on a stream of their own: the other
    # draws, and so the other families' events, are as they were before children.
    kids = random.Random(seed * 29 + 1)
    # Receipts corrected to name another child (or none), on a stream of their own too.
    moves = random.Random(seed * 41 + 3)
    for i in range(contacts):
        k = f.key(f"{seed}-contact-{i}")
        at = _office_time(rng, start, days)
        child = (f.key(f"{seed}-child-{kids.randrange(max(1, contacts * 2 // 3))}")
                 if kids.random() < 0.9 else None)  # a tenth name no child
        receipt = f.received(k, at, rng.choice(channels), rng.choice(codes), child=child)
        events = [receipt]
        if kids.random() < 0.25:  # a referral: progressed to children's social care, within
            # 3 days (tests generate up to 10 days before now: never a future timestamp,
            # which the broker refuses beyond an hour)
            events.append(f.base("contact.progressed",
                                 at + timedelta(hours=kids.uniform(0.5, 72)), contact_key=k,
                                 destination="childrens_social_care"))
        if rng.random() < 0.9:
            events.append(f.decided(k, at + timedelta(hours=rng.expovariate(1 / 30)),
                                    rng.choice(outcomes), rng.choice(pathways)))
        if rng.random() < 0.1:  # a correction of the decision, later
            events.append(f.decided(k, at + timedelta(days=5), rng.choice(outcomes)))
        if rng.random() < 0.2:
            events.reverse()  # completion arrives before the opening
        events += [e for e in events if rng.random() < 0.1]  # re-deliveries
        events += _moved(moves, receipt, seed, contacts)
        for e in events:
            ds.add("contacts", k, e)
    for i in range(calls):
        k = f.key(f"{seed}-call-{i}")
        at, wait = _office_time(rng, start, days), float(rng.choice([2, 5, 15, 20, 21, 40, 90]))
        e = f.answered(k, at, wait) if rng.random() < 0.9 else f.abandoned(k, at, wait)
        ds.add("calls", k, e)
        if rng.random() < 0.1:
            ds.add("calls", k, e)
    agencies = list(TAXONOMY["agency"])
    for i in range(enquiries):
        k = f.key(f"{seed}-map-{i}")
        at = _office_time(rng, start, days)
        outcome = rng.choice(list(TAXONOMY["map_outcome"]))
        service = rng.choice(list(TAXONOMY["level3_service"])) if outcome == "level_3" else None
        done = f.map_completed(k, at + timedelta(hours=rng.expovariate(1 / 20)),
                               rng.sample(agencies, rng.randint(1, 10)), outcome, service)
        for e in rng.sample([f.map_opened(k, at), done], 2):
            ds.add("map_enquiries", k, e)
    for i in range(audits):
        k = f.key(f"{seed}-audit-{i}")
        ds.add("audits", k, f.audit(k, _office_time(rng, start, days),
                                    rng.choice(["ehh", "map"]),
                                    rng.choice(list(TAXONOMY["grade"]))))
    _feedback(ds, random.Random(seed * 31 + 6), seed, start, days, feedback)
    _partners(ds, random.Random(seed * 37 + 2), seed, start, days, partners)
    rng.shuffle(ds.messages)
    for i in range(bad):
        ds.messages.insert(rng.randrange(len(ds.messages)),
                           Message(TOPICS["contacts"], b"bad", b"{not json %d" % i, None))
    ds.bad = bad
    return ds


#: a sealed quote's form (``v1.`` and base64url); the figures never read it
_SEALED = "v1." + "Q" * 60


def _feedback(ds: Dataset, rng: random.Random, seed: int, start: date, days: int,
              n: int) -> None:
    """Feedback with approvals (some refused consent), re-approvals, withdrawals (some
    arriving before their approval), corrections of what was received and re-deliveries."""
    agencies = list(TAXONOMY["agency"])
    for i in range(n):
        k = f.key(f"{seed}-feedback-{i}")
        at = _office_time(rng, start, days)
        who = rng.choice(list(TAXONOMY["feedback_from"]))
        channel = rng.choice(list(TAXONOMY["channel"]))
        agency = rng.choice(agencies) if who == "partner_agency" else None
        events = [f.feedback(k, at, who, rng.choice(list(TAXONOMY["feedback_kind"])), channel,
                             agency)]
        if rng.random() < 0.1:  # the kind corrected a week later
            events.append(f.feedback(k, at + timedelta(days=7), who, "complaint", channel,
                                     agency))
        approvals = rng.choice([0, 0, 1, 1, 2])
        for j in range(approvals):  # a second approval replaces the first
            events.append(f.quote_approved(
                k, at + timedelta(days=3 + 10 * j), _SEALED,
                rng.choice(list(TAXONOMY["quote_attribution"])), consent=rng.random() < 0.75,
                approver_role=rng.choice(list(TAXONOMY["approver_role"]))))
        if approvals and rng.random() < 0.3:
            events.append(f.withdrawn(k, at + timedelta(days=rng.randint(20, 50))))
        if rng.random() < 0.2:
            events.reverse()
        events += [e for e in events if rng.random() < 0.1]  # re-deliveries
        for e in events:
            ds.add("feedback", k, e)


def _partners(ds: Dataset, rng: random.Random, seed: int, start: date, days: int,
              n: int) -> None:
    """MAP enquiries asking 1-4 agencies: most answer (some within minutes, some days
    later), some never; some answers come before their request, some requests are re-sent
    later (the later one counts), and some events are delivered twice. Half the enquiries
    also open and complete, so their completions count exactly as without partners."""
    agencies = list(TAXONOMY["agency"])
    for i in range(n):
        k = f.key(f"{seed}-partner-{i}")
        at = _office_time(rng, start, days)
        events = [f.map_opened(k, at), f.map_completed(k, at + timedelta(hours=20),
                                                         ["police"])] if i % 2 else []
        for agency in rng.sample(agencies, rng.randint(1, 4)):
            asked = at + timedelta(minutes=rng.randrange(60))
            events.append(f.partner_requested(k, asked, agency))
            if rng.random() < 0.15:  # asked again a day later: the later request counts
                events.append(f.partner_requested(k, asked + timedelta(days=1), agency))
            if rng.random() < 0.85:
                hours = rng.choice([0.2, 1.5, 3.9, 5.0, 30.0, 70.0]) * rng.random()
                events.append(f.partner_responded(k, asked + timedelta(hours=hours), agency))
        if rng.random() < 0.3:
            events.reverse()  # answers before their requests
        events += [e for e in events if rng.random() < 0.1]  # re-deliveries
        for e in events:
            ds.add("map_enquiries", k, e)


def _moved(moves: random.Random, receipt: dict[str, Any], seed: int,
           contacts: int) -> list[dict[str, Any]]:
    """A twentieth of receipts naming a child re-recorded an hour later naming another
    child (a fifth of those: none), the rest of the receipt unchanged. Its later event id
    makes it the latest version for ``_latest`` too (same ``occurred_at``)."""
    if "child_key" not in receipt or moves.random() >= 0.05:
        return []
    fixed = {k: v for k, v in receipt.items() if k != "child_key"}
    fixed["event_id"] = receipt["event_id"] + "-moved"
    if moves.random() < 0.8:
        fixed["child_key"] = f.key(f"{seed}-child-{moves.randrange(max(1, contacts * 2 // 3))}")
    fixed["recorded_at"] = (datetime.fromisoformat(receipt["occurred_at"])
                            + timedelta(hours=1)).isoformat()
    return [fixed] * (2 if moves.random() < 0.1 else 1)


def _latest(events: list[dict[str, Any]]) -> dict[str, Any]:
    return max(events, key=lambda e: (datetime.fromisoformat(e["occurred_at"]).timestamp(),
                                      e["event_id"]))


def expected(ds: Dataset) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Metric samples the worker must expose: (name, labels) -> value."""
    by_case: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(list))
    for m in ds.messages:
        try:
            e = orjson.loads(m.value)
        except orjson.JSONDecodeError:
            continue
        by_case[(m.topic, m.key.decode())][e["event_type"]].append(e)
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = defaultdict(float)

    def add(name: str, value: float = 1.0, **labels: str) -> None:
        out[(name, frozenset(labels.items()))] += value

    groups = TAXONOMY["source_code"]
    for case in by_case.values():
        rcv = _latest(case["contact.received"]) if case.get("contact.received") else None
        dec = _latest(case["contact.decided"]) if case.get("contact.decided") else None
        if rcv:
            add("cspa_contacts_received", month=month(_at(rcv)), channel=rcv["channel"],
                source_group=groups[rcv["source_code"]], team=rcv["team"])
        if dec:
            add("cspa_contacts_decided", month=month(_at(dec)), outcome=dec["outcome"])
        if rcv and dec:
            labels = dict(month=month(_at(dec)), source_group=groups[rcv["source_code"]],
                          pathway=dec.get("pathway") or "not_yet_recorded")
            add("cspa_contact_completion_workdays_count", **labels)
            add("cspa_contact_completion_workdays_sum",
                working_days(_at(rcv), _at(dec)), **labels)
        call = case.get("call.answered") or case.get("call.abandoned")
        if call:
            e = _latest(call)
            labels = dict(month=month(_at(e) - timedelta(seconds=e["wait_seconds"])),
                          queue=e["queue"])
            add("cspa_calls_offered", **labels)
            if e["event_type"] == "call.answered":
                add("cspa_calls_answered", **labels)
                add("cspa_calls_answered_within_target", float(e["wait_seconds"] <= 20),
                    **labels)
            else:
                add("cspa_calls_abandoned", **labels)
        if case.get("map_enquiry.completed"):
            done = _latest(case["map_enquiry.completed"])
            mon = month(_at(done))
            add("cspa_map_enquiries_completed", month=mon, outcome=done["outcome"])
            for agency in done["agencies_consulted"]:
                add("cspa_map_enquiries_by_agency", month=mon, agency=agency)
            if case.get("map_enquiry.opened"):
                opened = _latest(case["map_enquiry.opened"])
                add("cspa_map_enquiry_workdays_count", month=mon)
                add("cspa_map_enquiry_workdays_sum", working_days(_at(opened), _at(done)),
                    month=mon)
        _partner_figures(case, add)
        if case.get("audit.graded"):
            a = _latest(case["audit.graded"])
            add("cspa_audits", month=month(_at(a)), team=a["team"], grade=a["grade"])
        _feedback_figures(case, add)
    _children(by_case, add)
    return dict(out)


def _children(by_case: dict[tuple[str, str], dict[str, list[dict[str, Any]]]],
              add: Any) -> None:
    """Repeat contacts and re-referrals: each of a child's contacts (referrals) against
    every other of that child's, within 12 months before it by the local wall clock (of
    two at the same instant, the greater contact key is the repeat)."""
    groups = TAXONOMY["source_code"]
    contacts: dict[str, list[tuple[datetime, str, str]]] = defaultdict(list)
    referrals: dict[str, list[tuple[datetime, str, str]]] = defaultdict(list)
    for (_, k), case in by_case.items():
        if not case.get("contact.received"):
            continue  # a referral is told apart only once its contact is received
        rcv = _latest(case["contact.received"])
        group, child = groups[rcv["source_code"]], rcv.get("child_key")
        progs = [e for e in case.get("contact.progressed", [])
                 if e["destination"] == "childrens_social_care"]
        ref = _latest(progs) if progs else None
        if child is None:
            add("cspa_contacts_without_child_key", month=month(_at(rcv)), source_group=group)
            if ref:
                add("cspa_referrals_without_child_key", month=month(_at(ref)),
                    source_group=group)
            continue
        contacts[child].append((_at(rcv), k, group))
        if ref:
            referrals[child].append((_at(ref), k, group))
    for name, flag, per_child in (("cspa_child_contacts", "repeat", contacts),
                                  ("cspa_child_referrals", "re_referral", referrals)):
        for items in per_child.values():
            for at, k, group in items:
                repeat = any((o_at, o_k) < (at, k) and _within_a_year(o_at, at)
                             for o_at, o_k, _ in items if o_k != k)
                add(name, month=month(at), source_group=group,
                    **{flag: "yes" if repeat else "no"})


def _within_a_year(earlier: datetime, later: datetime) -> bool:
    """``earlier`` at or after ``later``'s local wall-clock time one year before."""
    a, b = earlier.astimezone(LONDON), later.astimezone(LONDON)
    return ((a.year + 1, a.month, a.day, a.hour, a.minute, a.second, a.microsecond)
            >= (b.year, b.month, b.day, b.hour, b.minute, b.second, b.microsecond))


def _feedback_figures(case: dict[str, list[dict[str, Any]]], add: Any) -> None:
    """Section 6: the latest of each kind of feedback event counts, in its own month."""
    if case.get("feedback.received"):
        e = _latest(case["feedback.received"])
        add("cspa_feedback_received", month=month(_at(e)), from_whom=e["from_whom"],
            agency=e.get("agency") or "none", kind=e["kind"])
    if case.get("feedback.quote_approved"):
        e = _latest(case["feedback.quote_approved"])
        if e["consent_to_publish"]:
            add("cspa_feedback_quotes_approved", month=month(_at(e)),
                attribution=e["attribution"])
    if case.get("feedback.withdrawn"):
        add("cspa_feedback_withdrawn", month=month(_at(_latest(case["feedback.withdrawn"]))))


def _partner_figures(case: dict[str, list[dict[str, Any]]], add: Any) -> None:
    """Section 9: per agency, the latest request counts in its month; the latest answer to
    a request is timed in office hours and is late after ``office_deadline``."""
    asked: dict[str, list[dict[str, Any]]] = defaultdict(list)
    answered: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in case.get("map_enquiry.agency_requested", []):
        asked[e["agency"]].append(e)
    for e in case.get("map_enquiry.agency_responded", []):
        answered[e["agency"]].append(e)
    for agency, requests in asked.items():
        request = _at(_latest(requests))
        add("cspa_partner_requests", month=month(request), agency=agency)
        if agency not in answered:
            continue
        response = _at(_latest(answered[agency]))
        labels = dict(month=month(response), agency=agency)
        add("cspa_partner_response_working_hours_count", **labels)
        add("cspa_partner_response_working_hours_sum", office_hours(request, response),
            **labels)
        if response > office_deadline(request, PARTNER_HOURS):
            add("cspa_partner_responses_late", **labels)


def _at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["occurred_at"])
