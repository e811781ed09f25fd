"""The random generator (``generate``) and its crafted edge cases (``crafted_checks``)."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from tests.reportgen.events import Builder, Dataset, Message
from tests.reportgen.workdays import (
    LONDON,
    TOPICS,
    add_working_days,
    calendar_days,
    codes,
    complaint_timescales,
    is_working,
    local,
    timescale,
    valid_from,
    working_days,
)

MONTHS = ("2019-07", "2019-08", "2019-09", "2019-10", "2019-11")
FIRST, LAST = date(2019, 7, 1), date(2019, 11, 30)


def _clear(*values: float, targets: Iterable[float] = ()) -> bool:
    """No value within 0.002 of a whole day or a target, unless exactly on it."""
    for v in values:
        for t in (round(v), *targets):
            if 1e-9 < abs(v - t) < 0.002:
                return False
    return True


def _later(a: datetime, hours: float, targets: Iterable[float] = (),
           origin: datetime | None = None) -> datetime:
    """``a`` + ``hours``, nudged until its durations from ``origin`` (default ``a``) are
    clear of whole days and of ``targets``."""
    targets, origin = tuple(targets), origin or a
    b = a + timedelta(hours=hours)
    while not _clear(working_days(origin, b), calendar_days(origin, b), targets=targets):
        b += timedelta(minutes=37)
    return b


def _moment(rng: random.Random, first: date = FIRST, last: date = LAST,
            office: float = 0.85) -> datetime:
    """Mostly office hours on working days; sometimes nights, weekends, bank holidays."""
    span = (last - first).days + 1
    while True:
        d = first + timedelta(days=rng.randrange(span))
        if rng.random() < office:
            if not is_working(d):
                continue
            seconds = rng.randrange(8 * 3600, 18 * 3600)
        else:
            seconds = rng.randrange(86400)
        return datetime(d.year, d.month, d.day, tzinfo=LONDON) + timedelta(seconds=seconds)


def _outcome(rng: random.Random, at: datetime) -> str:
    first_day = at.astimezone(LONDON).date().replace(day=1)
    allowed = [c for c in codes("contact_outcome")
               if (since := valid_from("contact_outcome", c)) is None or first_day >= since]
    return rng.choice(allowed)


def generate(seed: int = 2019, contacts: int = 1100, emails: int = 600, calls: int = 1300,
             enquiries: int = 260, audits: int = 120, bad: int = 6,
             quality: bool = False, feedback: bool = False, complaints: int = 0,
             partners: int = 0) -> Dataset:
    """Random events for every family over Jul-Nov 2019 (and a little either side);
    ``quality``: learning reviews, dip samples, advisors and audits naming them too;
    ``feedback``: feedback received, quotes approved and consents withdrawn;
    ``complaints``: that much feedback, mostly complaints on the stage 1 clock;
    ``partners``: that many MAP enquiries asking partner agencies, on a stream of its own."""
    rng = random.Random(seed)
    b = Builder(f"rg{seed}", rng)
    cases: list[list[dict[str, Any]]] = []  # events of one case, in the order they happen
    pathways: list[str | None] = [*codes("pathway"), None]
    # Children (section 8) on a stream of their own: every other draw is as before.
    kids = random.Random(seed * 29 + 3)

    for i in range(contacts):
        k = b.key("contact", i)
        at = _moment(rng, FIRST - timedelta(days=4))
        evs: list[dict[str, Any]] = []
        has_rcv = rng.random() > 0.04  # a few decided contacts received before any export
        child = ({"child_key": b.key("child", kids.randrange(contacts * 3 // 5))}
                 if kids.random() < 0.9 else {})  # a tenth name no child
        if has_rcv:
            evs.append(b.event("contact.received", at, contact_key=k,
                               channel=rng.choice(codes("channel")),
                               source_code=rng.choice(codes("source_code")),
                               team=rng.choice(["rfs"] * 8 + ["ehh", "map"]), **child))
        if rng.random() < 0.9:
            dec = _later(at, rng.expovariate(1 / 30))
            evs.append(b.event("contact.decided", dec, contact_key=k,
                               outcome=_outcome(rng, dec), pathway=rng.choice(pathways)))
            roll = rng.random()
            if roll < 0.07:  # a correction: a later decision replaces the first
                again = _later(dec, 40)
                evs.append(b.event("contact.decided", again, contact_key=k,
                                   outcome=_outcome(rng, again), pathway=rng.choice(pathways)))
            elif roll < 0.09:  # same instant, a greater event id: the later id wins
                evs.append(b.event("contact.decided", dec, contact_key=k,
                                   outcome=_outcome(rng, dec), pathway=rng.choice(pathways)))
            roll = rng.random()
            if roll < 0.25:
                prog = _later(dec, rng.uniform(0.1, 20), (timescale("early_help"),), at)
                evs.append(b.event("contact.progressed", prog, contact_key=k,
                                   destination="early_help"))
                if rng.random() < 0.85:
                    evs.append(b.event("early_help.allocated",
                                       _later(prog, rng.expovariate(1 / 40)), contact_key=k))
            elif roll < 0.37:
                prog = _later(at, rng.expovariate(1 / 20), (timescale("childrens_social_care"),))
                evs.append(b.event("contact.progressed", prog, contact_key=k,
                                   destination="childrens_social_care"))
            elif roll < 0.39:  # allocated, but the progression never came: no figure
                evs.append(b.event("early_help.allocated", _later(dec, 5), contact_key=k))
        cases.append(evs)

    for i in range(emails):
        k = b.key("email", i)
        at = _moment(rng, office=0.7)
        evs = [b.event("email.resolved", at, enquiry_key=k)]
        if rng.random() < 0.03:  # re-resolved later: the later one counts
            evs.append(b.event("email.resolved", _later(at, 30), enquiry_key=k))
        cases.append(evs)

    waits = [0.0, 2.0, 5.0, 5.5, 12.0, 19.0, 20.0, 20.5, 21.0, 45.0, 90.0, 300.0]
    for i in range(calls):
        k = b.key("call", i)
        queued = _moment(rng, office=0.9)
        queue = rng.choice(["rfs"] * 4 + ["consultation"])
        wait = rng.choice(waits)
        end = queued + timedelta(seconds=wait)
        evs = []
        if rng.random() < 0.5:
            evs.append(b.event("call.queued", queued, call_key=k, queue=queue))
        if rng.random() < 0.88:
            evs.append(b.event("call.answered", end, call_key=k, queue=queue, wait_seconds=wait))
            if rng.random() < 0.3:
                talk = float(rng.randrange(30, 1800))
                evs.append(b.event("call.ended", end + timedelta(seconds=talk), call_key=k,
                                   queue=queue, handle_seconds=talk))
            if rng.random() < 0.02:  # a telephony retry artefact: the answer outranks it
                evs.append(b.event("call.abandoned", end + timedelta(seconds=1), call_key=k,
                                   queue=queue, wait_seconds=wait + 1))
        else:
            evs.append(b.event("call.abandoned", end, call_key=k, queue=queue,
                               wait_seconds=wait))
        cases.append(evs)

    agencies = codes("agency")
    for i in range(enquiries):
        k = b.key("map", i)
        opened = _moment(rng, FIRST - timedelta(days=3), office=0.9)
        evs = []
        has_open = rng.random() > 0.05
        if has_open:
            evs.append(b.event("map_enquiry.opened", opened, enquiry_key=k))
        if rng.random() < 0.95:
            shape = rng.random()
            hours = (rng.uniform(0.5, 7) if shape < 0.5 else rng.uniform(16, 60)
                     if shape < 0.8 else rng.uniform(60, 400))
            done = _later(opened, hours)
            consulted = rng.sample(agencies, rng.randint(1, len(agencies)))
            if rng.random() < 0.05:
                consulted.append(consulted[0])  # listed twice: one agency consulted
            outcome = rng.choice(codes("map_outcome"))
            service = (rng.choice(codes("level3_service")) if outcome == "level_3"
                       and rng.random() < 0.9 else None)
            evs.append(b.event("map_enquiry.completed", done, enquiry_key=k,
                               agencies_consulted=consulted, outcome=outcome,
                               level3_service=service))
            if rng.random() < 0.04:  # the completion was corrected a day later
                outcome = rng.choice(codes("map_outcome"))
                evs.append(b.event("map_enquiry.completed", _later(done, 24, origin=opened),
                                   enquiry_key=k,
                                   agencies_consulted=rng.sample(agencies, 3), outcome=outcome,
                                   level3_service="cc" if outcome == "level_3" else None))
        cases.append(evs)

    for i in range(audits):
        k = b.key("audit", i)
        at = _moment(rng)
        evs = [b.event("audit.graded", at, audit_key=k, team=rng.choice(["ehh", "map", "rfs"]),
                       grade=rng.choice(codes("grade")))]
        if rng.random() < 0.05:  # regraded after moderation
            evs.append(b.event("audit.graded", _later(at, 50), audit_key=k, team="ehh",
                               grade=rng.choice(codes("grade"))))
        cases.append(evs)

    cases += _crafted(b)
    if quality:
        cases += _quality(seed)
    if feedback:
        cases += _feedback(seed)
    if complaints:
        cases += _complaints(seed, complaints)
    if partners:
        cases += _partners(seed, partners)
    return _send_order(rng, cases, b, bad)


def _clear_of(received: datetime, days: float, deadlines: Iterable[float]) -> datetime:
    """``days`` working days after ``received``, moved off the deadlines by 0.01 day at least
    (neither side's float noise may move it across one)."""
    for deadline in deadlines:
        if abs(days - deadline) < 0.01:
            days = deadline + (0.01 if days >= deadline else -0.01)
    return add_working_days(received, days)


def _complaints(seed: int, n: int) -> list[list[dict[str, Any]]]:
    """Feedback received on working days, mostly complaints: answered within 10 working
    days, between 10 and 20, or later, or not at all; some extended in time, some too late
    (after the 10 days or after the response), some answers corrected by a later one, and a
    comment "answered" (not on the clock). On a random stream of its own."""
    rng = random.Random(seed + 30)
    b = Builder(f"cp{seed}", rng)
    base, extended = complaint_timescales()
    cases: list[list[dict[str, Any]]] = []
    for i in range(n):
        k = b.key("feedback", i)
        received = _moment(rng, FIRST, LAST - timedelta(days=14), office=1.0)
        who = rng.choice(codes("feedback_from"))
        kind = "complaint" if rng.random() < 0.85 else rng.choice(codes("feedback_kind"))
        evs = [b.event("feedback.received", received, feedback_key=k, from_whom=who,
                       agency=rng.choice(codes("agency")) if who == "partner_agency" else None,
                       kind=kind, channel=rng.choice(codes("channel")))]
        if rng.random() < 0.35:
            evs.append(b.event("complaint.extended",
                               _clear_of(received, rng.uniform(1, 13), (base,)), feedback_key=k))
        if rng.random() < 0.88:
            answered = _clear_of(received, rng.uniform(2, 26), (base, extended))
            evs.append(b.event("complaint.responded", answered, feedback_key=k))
            if rng.random() < 0.06:  # sent again at another time: the later one counts
                evs.append(b.event("complaint.responded",
                                   _clear_of(received, rng.uniform(2, 26), (base, extended)),
                                   feedback_key=k))
        cases.append(evs)
    return cases


def _partners(seed: int, n: int) -> list[list[dict[str, Any]]]:
    """MAP enquiries asking 1-4 partner agencies: most answer, within minutes or days
    (log-normal office hours), some never; some requests are sent again later (the later
    counts). Every other enquiry also opens and completes."""
    rng = random.Random(seed + 40)
    b = Builder(f"pa{seed}", rng)
    cases: list[list[dict[str, Any]]] = []
    for i in range(n):
        k = b.key("partner", i)
        at = _moment(rng)
        evs = [b.event("map_enquiry.opened", at, enquiry_key=k),
               b.event("map_enquiry.completed", _later(at, 20), enquiry_key=k,
                       agencies_consulted=["police"], outcome="level_2")] if i % 2 else []
        for agency in rng.sample(codes("agency"), rng.randint(1, 4)):
            asked = at + timedelta(minutes=rng.randrange(90))
            evs.append(b.event("map_enquiry.agency_requested", asked, enquiry_key=k,
                               agency=agency))
            if rng.random() < 0.1:  # asked again the next day: the later request counts
                evs.append(b.event("map_enquiry.agency_requested", asked + timedelta(days=1),
                                   enquiry_key=k, agency=agency))
            if rng.random() < 0.85:
                hours = min(rng.lognormvariate(0.8, 1.2), 200.0)
                evs.append(b.event("map_enquiry.agency_responded",
                                   asked + timedelta(hours=hours), enquiry_key=k, agency=agency))
        cases.append(evs)  # (_send_order sends some answers before their requests)
    return cases


def _quality(seed: int) -> list[list[dict[str, Any]]]:
    """Learning reviews, dip samples, advisors joining, moving and leaving teams, and audits
    naming them (most advisors audited most months), on a random stream of their own so
    the other families' events are as they were."""
    rng = random.Random(seed + 27)
    b = Builder(f"qa{seed}", rng)
    cases: list[list[dict[str, Any]]] = []
    for i in range(rng.randint(6, 9)):  # about the seed's one learning review a month
        cases.append([b.event("learning_review.held", _moment(rng), review_key=b.key("lr", i),
                              team=rng.choice(["ehh", "map", "rfs"]),
                              theme=rng.choice(codes("qa_theme")))])
    for i in range(rng.randint(18, 24)):  # about weekly
        cases.append([b.event("dip_sample.taken", _moment(rng), sample_key=b.key("dip", i),
                              sampler_role=rng.choice(codes("sampler_role")),
                              theme=rng.choice(codes("qa_theme")),
                              cases_sampled=rng.randint(1, 12))])
    for i in range(14):
        k, team = b.key("advisor", i), rng.choice(["rfs", "rfs", "ehh", "map"])
        joined = _moment(rng, date(2019, 5, 1), date(2019, 9, 30))
        evs = [b.event("advisor.joined", joined, advisor_key=k, team=team)]
        roll = rng.random()
        if roll < 0.25:  # left
            evs.append(b.event("advisor.left", _later(joined, rng.uniform(200, 900)),
                               advisor_key=k, team=team))
        elif roll < 0.4:  # moved: a leave, then a join of another team
            moved = _later(joined, rng.uniform(200, 900))
            evs.append(b.event("advisor.left", moved, advisor_key=k, team=team))
            evs.append(b.event("advisor.joined", _later(moved, 1), advisor_key=k,
                               team="ehh" if team != "ehh" else "rfs"))
        cases.append(evs)
        for month in range(6, 12):
            if rng.random() < 0.7:  # audited this month (whether in post or not)
                at = _moment(rng, date(2019, month, 1), date(2019, month, 28))
                cases.append([b.event("audit.graded", at, audit_key=b.key("aa", i, month),
                                      team=team, grade=rng.choice(codes("grade")),
                                      advisor_key=k)])
    return cases


#: a sealed quote's form; the worker never opens it (no key is sent: no quote is printed)
_SEALED = "v1." + "Q" * 60


def _feedback(seed: int) -> list[list[dict[str, Any]]]:
    """Feedback (a few corrected), quotes approved with or without consent (some approved
    again), and consents withdrawn, on a random stream of their own."""
    rng = random.Random(seed + 6)
    b = Builder(f"fb{seed}", rng)
    cases: list[list[dict[str, Any]]] = []
    for i in range(120):
        k, at = b.key("feedback", i), _moment(rng, FIRST - timedelta(days=10))
        who = rng.choice(codes("feedback_from"))
        fields = dict(feedback_key=k, from_whom=who, channel=rng.choice(codes("channel")),
                      agency=rng.choice(codes("agency")) if who == "partner_agency" else None)
        evs = [b.event("feedback.received", at, kind=rng.choice(codes("feedback_kind")),
                       **fields)]
        if rng.random() < 0.08:  # its kind corrected later
            evs.append(b.event("feedback.received", _later(at, 30), kind="complaint", **fields))
        approved = at
        for _ in range(rng.choice([0, 0, 0, 1, 1, 2])):  # a later approval replaces one
            approved = _later(approved, rng.uniform(20, 300))
            evs.append(b.event("feedback.quote_approved", approved, feedback_key=k,
                               sealed_quote=_SEALED, consent_to_publish=rng.random() < 0.8,
                               attribution=rng.choice(codes("quote_attribution")),
                               approver_role=rng.choice(codes("approver_role"))))
        if approved != at and rng.random() < 0.3:
            evs.append(b.event("feedback.withdrawn", _later(approved, rng.uniform(24, 900)),
                               feedback_key=k))
        cases.append(evs)
    return cases


def _crafted(b: Builder) -> list[list[dict[str, Any]]]:
    """Edge cases with known answers (checked by ``crafted_checks``)."""
    out: list[list[dict[str, Any]]] = []
    k = b.key("crafted", "bank-holiday-contact")
    # Fri 23 Aug 15:00 -> Tue 27 Aug 09:00 across the August bank holiday: 0.375 + 0.375.
    out.append([b.event("contact.received", local(2019, 8, 23, 15), contact_key=k,
                        channel="phone", source_code="3E", team="rfs"),
                b.event("contact.decided", local(2019, 8, 27, 9), contact_key=k,
                        outcome="level_4", pathway="information")])
    k = b.key("crafted", "bank-holiday-map")
    # Fri 23 Aug 10:00 -> Tue 27 Aug 10:00: exactly 1 working day, 4 calendar days.
    out.append([b.event("map_enquiry.opened", local(2019, 8, 23, 10), enquiry_key=k),
                b.event("map_enquiry.completed", local(2019, 8, 27, 10), enquiry_key=k,
                        agencies_consulted=["police", "gp"], outcome="level_4")])
    k = b.key("crafted", "weekend-map")
    # Fri 5 Jul 10:00 -> Mon 8 Jul 10:00: exactly 1 working day, 3 calendar days.
    out.append([b.event("map_enquiry.opened", local(2019, 7, 5, 10), enquiry_key=k),
                b.event("map_enquiry.completed", local(2019, 7, 8, 10), enquiry_key=k,
                        agencies_consulted=["education"], outcome="level_3",
                        level3_service="tys")])
    k = b.key("crafted", "saturday-contact")
    # Received Sat 14 Sep 11:00, decided Mon 16 Sep 12:00: the clock starts Monday, 0.5.
    out.append([b.event("contact.received", local(2019, 9, 14, 11), contact_key=k,
                        channel="online_form", source_code="9", team="rfs"),
                b.event("contact.decided", local(2019, 9, 16, 12), contact_key=k,
                        outcome="lado", pathway="map_enquiry")])
    k = b.key("crafted", "month-edge-contact")
    # Decided 31 Jul 23:30 UTC = 1 Aug 00:30 BST: an August decision.
    out.append([b.event("contact.received", datetime(2019, 7, 31, 15, tzinfo=UTC),
                        contact_key=k, channel="email", source_code="6", team="rfs"),
                b.event("contact.decided", datetime(2019, 7, 31, 23, 30, tzinfo=UTC),
                        contact_key=k, outcome="cwd")])
    k = b.key("crafted", "month-edge-call")
    # Answered 1 Aug 00:00:20 local after 40 s: offered (and counted) in July.
    out.append([b.event("call.answered", local(2019, 8, 1, 0, 0, 20), call_key=k, queue="rfs",
                        wait_seconds=40.0)])
    k = b.key("crafted", "dst-end-map")
    # Across the end of BST (Sun 27 Oct): Fri 25 Oct 12:00 -> Mon 28 Oct 12:00 is 1 working
    # day and 3 calendar days + 1 hour.
    out.append([b.event("map_enquiry.opened", local(2019, 10, 25, 12), enquiry_key=k),
                b.event("map_enquiry.completed", local(2019, 10, 28, 12), enquiry_key=k,
                        agencies_consulted=["camhs", "police", "gp", "housing"],
                        outcome="level_2")])
    return out


def crafted_checks() -> list[tuple[str, datetime, datetime, float, float]]:
    """(what, start, end, working days, calendar days) of the crafted durations."""
    return [
        ("bank holiday contact", local(2019, 8, 23, 15), local(2019, 8, 27, 9), 0.75, 3.75),
        ("bank holiday map", local(2019, 8, 23, 10), local(2019, 8, 27, 10), 1.0, 4.0),
        ("weekend map", local(2019, 7, 5, 10), local(2019, 7, 8, 10), 1.0, 3.0),
        ("saturday contact", local(2019, 9, 14, 11), local(2019, 9, 16, 12), 0.5, 2 + 1 / 24),
        ("dst end map", local(2019, 10, 25, 12), local(2019, 10, 28, 12), 1.0, 3 + 1 / 24),
    ]


def _send_order(rng: random.Random, cases: list[list[dict[str, Any]]], b: Builder,
                bad: int) -> Dataset:
    """Time order, except: late (backfilled) July/August cases go after everything,
    some completions go before their openings, some events go twice, and a few invalid
    messages are mixed in."""
    stamped: list[tuple[float, int, Message]] = []
    late_after = datetime(2019, 12, 5, tzinfo=UTC).timestamp()
    late = reordered = 0
    for evs in filter(None, cases):
        times = [datetime.fromisoformat(e["occurred_at"]).timestamp() for e in evs]
        backfill = (min(times) < datetime(2019, 9, 1, tzinfo=UTC).timestamp()
                    and rng.random() < 0.12)
        late += backfill
        if len(evs) > 1 and rng.random() < 0.2:  # the completion arrives first
            times = times[::-1]
            reordered += 1
        for t, e in zip(times, evs, strict=True):
            when = t + (late_after - min(times) + rng.uniform(0, 86400) if backfill else 0)
            stamped.append((when, len(stamped), b.message(e)))
            if rng.random() < 0.05:  # re-delivered a little later
                stamped.append((when + rng.uniform(1, 5 * 86400), len(stamped),
                                b.message(e)))
    stamped.sort(key=lambda x: (x[0], x[1]))
    messages = [m for _, _, m in stamped]
    contacts = TOPICS["contacts"]
    for i in range(bad):
        k = b.key("bad", i)
        if i % 2:  # valid JSON, but an outcome that is not in the taxonomy
            body = orjson.dumps(b.event("contact.decided", local(2019, 9, 2, 10),
                                        contact_key=k, outcome="level_9"))
        else:
            body = b"{not json %d" % i
        messages.insert(rng.randrange(len(messages)),
                        Message(contacts, k.encode(), body, None, valid=False))
    return Dataset(messages, {"late_cases": late, "reordered_cases": reordered})
