"""A calibrated simulator of front-door traffic, emitting contract events.

``generate`` yields the events of a council's Children's Single Point of Access for a run
of days, in event-time order, deterministically for a seed. At ``scale=1`` its monthly
figures match the December 2019 committee report within sampling noise (the calibration
is in ``stream.upstream.profile``); ``scale`` multiplies every volume (10: a region,
150: England). ``run`` sends them to Kafka as fast as possible, in real time or
accelerated. Everything happens on the England and Wales calendar, Europe/London:
calls, emails, decisions, audits, learning reviews, dip samples, advisors joining and
leaving, and feedback (``stream.upstream.feedback``) in office hours on working days; some
contacts arrive out of hours (police at night) and a few at weekends and on bank holidays.
Work still in progress when the period ends stays open (its later events are dropped).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import heapq
import itertools
import math
import random
import sys
import time
from bisect import bisect
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

from stream.contract import events as ev
from stream.contract.taxonomy import UNRECORDED_PATHWAY, Taxonomy, load_taxonomy
from stream.settings import Settings
from stream.state.working_days import WorkingCalendar
from stream.upstream import profile as prof
from stream.upstream.feedback import FeedbackSource, quote_for
from stream.upstream.producer import EventProducer

TZ = ZoneInfo("Europe/London")
OPEN, CLOSE = clock(9), clock(17)
_MIN = 60.0
_DAY = timedelta(1)
_OFFSETS: dict[timedelta, timezone] = {}


def _local(ts: float) -> datetime:
    """London wall-clock time with a fixed UTC offset, as the event arrives on the wire.

    (A ZoneInfo datetime in the repeated autumn hour never equals its wire form.)
    """
    local = datetime.fromtimestamp(ts, TZ)
    offset = local.utcoffset()
    assert offset is not None
    return local.replace(tzinfo=_OFFSETS.setdefault(offset, timezone(offset)), fold=0)


class _Sim:
    """The state of one generation: random stream, calendar cache, pending events."""

    def __init__(self, seed: int, scale: float, taxonomy: Taxonomy) -> None:
        self.seed, self.scale, self.taxonomy = seed, scale, taxonomy
        self.rng = random.Random(seed)
        self.calendar = WorkingCalendar()
        self.pending: list[tuple[float, int, type[ev.Event], dict[str, Any]]] = []
        self.seq = itertools.count()
        self.counters: dict[str, Iterator[int]] = {}
        self.children: list[str] = []
        #: children referred (progressed to children's social care): (when, child), oldest
        #: first; drawn on a stream of their own, so the other
        #: draws are as they were before re-referrals were simulated
        self.referred: collections.deque[tuple[float, str]] = collections.deque()
        self.kids = random.Random(seed * 31 + 29)
        self.audits_due: dict[str, float] = {}
        self.days: dict[date, tuple[bool, float, float, float, float]] = {}
        self.outcomes: dict[date, prof.Choice] = {}
        self.cells, pathways, groups = prof.contact_mix()
        self.pathway_of = {o: prof.Choice(w) for o, w in pathways.items()}
        self.group_of = {p: prof.Choice(w) for p, w in groups.items()}
        self.codes = {g: sorted(c for c, cg in taxonomy.source_groups.items() if cg == g)
                      for g in prof.CONTACT_TABLE}
        self.hours = list(itertools.accumulate(prof.HOUR_WEIGHTS))
        self.office_channel = prof.Choice(prof.CHANNELS_OFFICE)
        self.night_channel = prof.Choice(prof.CHANNELS_OUT_OF_HOURS)
        self.call_fate = prof.Deck(prof.CALL_FATES, 600)
        self.map_opens = prof.Deck({"open": prof.MAP_OPEN_SHARE,
                                    "not": 1 - prof.MAP_OPEN_SHARE}, 32)
        self.map_outcome = prof.Deck(prof.MAP_OUTCOMES, 50)
        self.level3 = prof.Deck(prof.LEVEL3_SERVICES, 20)
        self.map_speed = prof.Deck({"fast": prof.MAP_WITHIN_DAY,
                                    "slow": 1 - prof.MAP_WITHIN_DAY}, 100)
        self.grade = prof.Deck(prof.AUDIT_GRADES, 58)
        # Quality assurance beyond grades draws on its own stream, so every other event
        # is what it was before it existed.
        self.qa = random.Random(seed * 7919 + 27)
        self.advisors: dict[str, list[str]] = {}  # team -> advisors in post, next audit first
        self.feedback = FeedbackSource(seed, scale)  # its own random stream too
        self.partners = random.Random(seed * 7907 + 29)  # partner requests: their own too

    # --- calendar -------------------------------------------------------------------
    def day(self, d: date) -> tuple[bool, float, float, float, float]:
        """(working, start, end, open, close) of a local date, as POSIX seconds."""
        info = self.days.get(d)
        if info is None:
            start, end = (datetime.combine(x, clock(0), TZ).timestamp() for x in (d, d + _DAY))
            info = self.days[d] = (self.calendar.is_working_day(d), start, end,
                                   datetime.combine(d, OPEN, TZ).timestamp(),
                                   datetime.combine(d, CLOSE, TZ).timestamp())
        return info

    def add_working_days(self, ts: float, n: float) -> float:
        """The instant ``n`` working days after ``ts`` (days are whole local days)."""
        d = datetime.fromtimestamp(ts, TZ).date()
        working, start, end, _, _ = self.day(d)
        target = n + ((ts - start) / (end - start) if working else 0.0)
        while True:
            working, start, end, _, _ = self.day(d)
            if working:
                if target < 1:
                    return start + target * (end - start)
                target -= 1
            d += timedelta(1)

    def in_office(self, ts: float, not_before: float, not_after: float = math.inf) -> float:
        """``ts`` moved to the nearer office-hours edge (a little inside) if outside them."""
        d = datetime.fromtimestamp(ts, TZ).date()
        working, _, _, open_, close = self.day(d)
        if working and open_ <= ts < close:
            return ts
        back, ahead = d if working and ts >= close else d - timedelta(1), d
        while not self.day(back)[0]:
            back -= timedelta(1)
        if not (working and ts < open_):
            ahead = d + timedelta(1)
            while not self.day(ahead)[0]:
                ahead += timedelta(1)
        earlier = self.day(back)[4] - self.rng.uniform(_MIN, 20 * _MIN)
        later = self.day(ahead)[3] + self.rng.uniform(_MIN, 20 * _MIN)
        if earlier > not_before and (ts - earlier < later - ts or later > not_after):
            return earlier
        return later

    def after(self, ts: float, days: float) -> float:
        """In office hours about ``days`` working days after ``ts``, in the same whole day."""
        limit = self.add_working_days(ts, math.ceil(days))
        return self.in_office(self.add_working_days(ts, days), ts + _MIN, limit)

    def office_time(self, d: date) -> float:
        """A time in office hours on ``d``, busier in the morning."""
        hour = bisect(self.hours, self.rng.random() * self.hours[-1])
        return self.day(d)[3] + (hour + self.rng.random()) * 3600

    # --- events ---------------------------------------------------------------------
    def key(self, kind: str) -> str:
        n = next(self.counters.setdefault(kind, itertools.count()))
        return hashlib.blake2b(f"{self.seed}:{kind}:{n}".encode(), digest_size=16).hexdigest()

    def child_for(self, received: float, referral: bool) -> str:
        """The contact's child: for a contact decided straight to children's social care,
        now and then a child referred in the 12 months before (``RE_REFERRAL_PICK``)."""
        key = self.child()
        recent = self.referred
        while recent and recent[0][0] < received - prof.RE_REFERRAL_DAYS * 86_400:
            recent.popleft()
        if referral and recent and self.kids.random() < prof.RE_REFERRAL_PICK:
            key = recent[self.kids.randrange(len(recent))][1]
        return key

    def child(self) -> str:
        """A new child, or one with an earlier contact (the last few thousand children)."""
        seen = self.children
        if seen and self.rng.random() < prof.REPEAT_CHILD_SHARE:
            return self.rng.choice(seen)
        key = self.key("child")
        if len(seen) < prof.CHILDREN_REMEMBERED * self.scale:
            seen.append(key)
        else:
            seen[self.rng.randrange(len(seen))] = key
        return key

    def emit(self, ts: float, model: type[ev.Event], **fields: Any) -> None:
        heapq.heappush(self.pending, (ts, next(self.seq), model, fields))

    def simulate_day(self, d: date) -> None:
        rng, scale = self.rng, self.scale
        working = self.day(d)[0]
        if working:
            self.quality(d)  # first: the advisors are in post before any audit names them
            self.feedback.day(self, d)
            weight = prof.WEEKDAY_WEIGHTS[d.weekday()]
            for _ in range(prof.poisson(rng, prof.CALLS_PER_WORKING_DAY * weight * scale)):
                self.call(self.office_time(d))
            for _ in range(prof.poisson(rng, prof.EMAILS_PER_WORKING_DAY * weight * scale)):
                self.emit(self.office_time(d), ev.EmailResolved, event_type="email.resolved",
                          enquiry_key=self.key("email"))
            for team, per_month in prof.AUDITS_PER_MONTH.items():
                # Audits follow a monthly plan (one per advisor): steady, not Poisson.
                due = self.audits_due.get(team, rng.random())
                due += per_month * 3 / prof.REF_WORKING_DAYS * scale * rng.uniform(0.5, 1.5)
                self.audits_due[team] = due - int(due)
                for _ in range(int(due)):
                    self.emit(self.office_time(d), ev.AuditGraded, event_type="audit.graded",
                              audit_key=self.key("audit"), team=team, grade=self.grade(rng),
                              advisor_key=self.next_audited(team))
        per_day = prof.CONTACTS_PER_WORKING_DAY * (1 if working else prof.NON_WORKING_DAY_SHARE)
        for _ in range(prof.poisson(rng, per_day * scale)):
            self.contact(d, working)

    def quality(self, d: date) -> None:
        """Advisors in post (joined on the first working day, some leaving and replaced),
        learning reviews and weekly dip samples, on their own random stream."""
        qa, scale, open_ = self.qa, self.scale, self.day(d)[3]
        for team, per_month in prof.ADVISORS.items():
            staff = self.advisors.setdefault(team, [])
            while len(staff) < round(per_month * scale):
                staff.append(self.key("advisor"))
                self.emit(open_ + qa.uniform(0, 3600), ev.AdvisorJoined,
                          event_type="advisor.joined", advisor_key=staff[-1], team=team)
            # REF_WORKING_DAYS is three months' working days: a year is four of them
            leave = prof.ADVISOR_TURNOVER_PER_YEAR * len(staff) / (4 * prof.REF_WORKING_DAYS)
            for _ in range(prof.poisson(qa, leave)):
                gone = staff.pop(qa.randrange(len(staff)))  # replaced the next working day
                self.emit(open_ + 7 * 3600 + qa.uniform(0, 3000), ev.AdvisorLeft,
                          event_type="advisor.left", advisor_key=gone, team=team)
        for team, per_month in prof.LEARNING_REVIEWS_PER_MONTH.items():
            for _ in range(prof.poisson(qa, per_month * 3 * scale / prof.REF_WORKING_DAYS)):
                self.emit(open_ + qa.uniform(3600, 7 * 3600), ev.LearningReviewHeld,
                          event_type="learning_review.held", review_key=self.key("review"),
                          team=team, theme=qa.choice(self.taxonomy.ordered("qa_theme")))
        for _ in range(prof.poisson(qa, prof.DIP_SAMPLES_PER_WEEK * scale / 5)):
            roles = prof.DIP_SAMPLERS
            self.emit(open_ + qa.uniform(3600, 7 * 3600), ev.DipSampleTaken,
                      event_type="dip_sample.taken", sample_key=self.key("dip"),
                      sampler_role=qa.choices(list(roles), list(roles.values()))[0],
                      theme=qa.choice(self.taxonomy.ordered("qa_theme")),
                      cases_sampled=qa.randint(*prof.DIP_CASES))

    def next_audited(self, team: str) -> str | None:
        """The team's advisor audited longest ago (so each is audited about monthly)."""
        staff = self.advisors.get(team)
        if not staff:
            return None
        staff.append(staff.pop(0))
        return staff[-1]

    def call(self, ts: float) -> None:
        base = {"call_key": self.key("call"), "queue": "rfs"}
        self.emit(ts, ev.CallQueued, event_type="call.queued", **base)
        answered, wait, handle = prof.call_outcome(self.rng, self.call_fate(self.rng))
        if not answered:
            self.emit(ts + wait, ev.CallAbandoned, event_type="call.abandoned",
                      wait_seconds=wait, **base)
            return
        self.emit(ts + wait, ev.CallAnswered, event_type="call.answered", wait_seconds=wait,
                  **base)
        self.emit(ts + wait + handle, ev.CallEnded, event_type="call.ended",
                  handle_seconds=handle, **base)

    def outcome_choice(self, d: date) -> prof.Choice:
        month = d.replace(day=1)
        choice = self.outcomes.get(month)
        if choice is None:
            choice = self.outcomes[month] = prof.Choice({
                o: w for o, w in prof.CONTACT_OUTCOMES.items()
                if self.taxonomy.exists_in("contact_outcome", o, month)})
        return choice

    def contact(self, d: date, working: bool) -> None:
        rng = self.rng
        outcome = self.outcome_choice(d)(rng)
        pathway = self.pathway_of[outcome](rng)
        group = self.group_of[pathway](rng)
        _, start, end, _, _ = self.day(d)
        ooh = prof.OUT_OF_HOURS_SHARE["police" if group == "police" else "other"]
        if working and rng.random() >= ooh:
            received, channel = self.office_time(d), self.office_channel(rng)
        else:
            night = rng.uniform(0, 16 * 3600) if working else rng.uniform(0, end - start)
            received = start + night + (8 * 3600 if working and night >= 9 * 3600 else 0)
            channel = self.night_channel(rng)
        key = self.key("contact")
        child = self.child_for(received, outcome in ("level_4", "lado")
                               and pathway != "progress_to_eh")
        self.emit(received, ev.ContactReceived, event_type="contact.received", contact_key=key,
                  child_key=child, channel=channel, team="rfs",
                  source_code=rng.choice(self.codes[group]))
        mean = self.cells[group, pathway][0]
        days = prof.gamma(self.rng, prof.CONTACT_DURATION_SHAPE, mean)
        decided = self.after(received, min(days, prof.CONTACT_MAX_DAYS))
        self.emit(decided, ev.ContactDecided, event_type="contact.decided", contact_key=key,
                  outcome=outcome, pathway=None if pathway == UNRECORDED_PATHWAY else pathway)
        if pathway == "progress_to_eh":
            self.progress(key, decided, "early_help")
        elif outcome in ("level_4", "lado"):
            # A LADO referral is passed to children's social care (closes its rule).
            self.progress(key, decided, "childrens_social_care", child)
        elif outcome == "map" and self.map_opens(rng) == "open":
            self.map_enquiry(key, decided, child)

    def progress(self, contact_key: str, ts: float, destination: str,
                 child: str | None = None) -> None:
        when = self.after(ts, self.rng.expovariate(1 / prof.PROGRESSION_DELAY_MEAN))
        self.emit(when, ev.ContactProgressed, event_type="contact.progressed",
                  contact_key=contact_key, destination=destination)
        if child is not None and destination == "childrens_social_care":
            self.referred.append((when, child))
        if destination == "early_help":
            wait = prof.gamma(self.rng, prof.ALLOCATION_SHAPE, prof.ALLOCATION_MEAN)
            allocated = self.after(when, wait)
            self.emit(allocated, ev.EarlyHelpAllocated, event_type="early_help.allocated",
                      contact_key=contact_key)

    def map_enquiry(self, contact_key: str, decided: float, child: str) -> None:
        rng, key = self.rng, self.key("map")
        opened = self.in_office(decided + rng.uniform(2 * _MIN, 30 * _MIN), decided)
        self.emit(opened, ev.MapEnquiryOpened, event_type="map_enquiry.opened",
                  enquiry_key=key, contact_key=contact_key)
        fast = self.map_speed(rng) == "fast"
        done = self.after(opened, prof.map_working_days(rng, fast))
        outcome = self.map_outcome(rng)
        consulted = prof.agencies(rng)
        self.emit(done, ev.MapEnquiryCompleted, event_type="map_enquiry.completed",
                  enquiry_key=key, agencies_consulted=consulted, outcome=outcome,
                  level3_service=self.level3(rng) if outcome == "level_3" else None)
        self.partner_requests(key, opened, consulted)
        if outcome == "level_4":
            self.progress(contact_key, done, "childrens_social_care", child)
        elif outcome == "level_2":
            self.progress(contact_key, done, "early_help")


    def partner_requests(self, key: str, opened: float, consulted: list[str]) -> None:
        """For a share of enquiries, a request to each agency consulted and its answer
        (``profile.partner_response_hours``, office hours), on their own random stream."""
        rng = self.partners
        if rng.random() >= prof.PARTNER_EVENTS_SHARE:
            return
        for agency in consulted:
            # minutes of office time: a request and its answer are office-hours work
            asked = self.calendar.add_working_hours_ts(
                opened, rng.uniform(*prof.PARTNER_ASK_MINUTES) / 60)
            self.emit(asked, ev.MapAgencyRequested, event_type="map_enquiry.agency_requested",
                      enquiry_key=key, agency=agency)
            hours = prof.partner_response_hours(rng, agency)
            if hours is not None:
                self.emit(self.calendar.add_working_hours_ts(asked, hours),
                          ev.MapAgencyResponded, event_type="map_enquiry.agency_responded",
                          enquiry_key=key, agency=agency)


def generate(start: date, days: int, *, seed: int = 1, scale: float = 1.0,
             taxonomy: Taxonomy, until: datetime | None = None) -> Iterator[ev.Event]:
    """The events of ``days`` local days from ``start``, in event-time order.

    ``until`` (aware) stops the stream at that instant (a live run never sends the future).
    Event ids are ``sim-<seed>-<n>``, numbered in event-time order.
    """
    sim, context = _Sim(seed, scale, taxonomy), {"taxonomy": taxonomy}
    stop = math.inf if until is None else until.timestamp()
    n = 0
    for i in range(days):
        d = start + timedelta(i)
        sim.simulate_day(d)
        horizon = min(sim.day(d)[2], stop + 1e-6)
        while sim.pending and sim.pending[0][0] < horizon:
            ts, _, model, fields = heapq.heappop(sim.pending)
            fields.update(event_id=f"sim-{seed}-{n:06d}", schema_version=1,
                          source_system="simulator", occurred_at=_local(ts))
            n += 1
            yield model.model_validate(fields, context=context)
        if horizon > stop:
            return


def _progress(sent: int, started: float, latest: datetime | None) -> None:
    rate = sent / max(time.monotonic() - started, 1e-9)
    when = latest.isoformat(timespec="seconds") if latest else "-"
    print(f"simulate: {sent} events sent, {rate:.0f}/s, event time {when}", file=sys.stderr)


def due_at(ts: float, first: float, wall0: float, started: float, speed: float) -> float:
    """When (monotonic) a paced run sends the event of event time ``ts``.

    Speed 1 is real time: each event goes at its own time and what is already past goes at
    once, so a call queued now is queued on the worker's clock now and its answer follows
    after its simulated wait (replaying the past at 1x would never catch up, and every wait
    would look hours long). Speed N > 1 replays event-time gaps from the first event N times
    faster, never sending an event before its own time.
    """
    own_time = started + ts - wall0
    if speed == 1:
        return own_time
    return max(started + (ts - first) / speed, own_time)


async def _send(producer: EventProducer, event: ev.Event) -> None:
    """Send one event; an approved quote sealed by the producer under a fresh key of its
    own (the key to the key topic), a withdrawal after tombstoning that key."""
    if isinstance(event, ev.FeedbackQuoteApproved):
        approval = event.model_dump(mode="json", exclude_none=True, exclude={"sealed_quote"})
        await producer.approve_quote(approval, quote_for(event.feedback_key, event.attribution))
    elif isinstance(event, ev.FeedbackWithdrawn):
        await producer.withdraw_quote(event.model_dump(mode="json", exclude_none=True))
    else:
        await producer.send(event)


async def run(settings: Settings, start: date, days: int, *, seed: int, scale: float,
              speed: float | None, until: datetime | None = None,
              after: datetime | None = None) -> int:
    """Send the generated events; ``speed`` None: at once, 1.0: real time, N: N times faster.

    The unpaced run only generates up to ``until`` (default now). ``after`` skips the
    events up to that instant: a paced run that continues an unpaced one (``make run``)
    sends only what the first did not. Returns events sent.
    """
    taxonomy = load_taxonomy(settings.taxonomy_path)
    if speed is None and until is None:
        until = datetime.now(UTC)
    skip = -math.inf if after is None else after.timestamp()
    started = last_report = time.monotonic()
    wall0, first, sent = time.time(), None, 0
    latest: datetime | None = None
    async with EventProducer(settings) as producer:
        for event in generate(start, days, seed=seed, scale=scale, taxonomy=taxonomy,
                              until=until):
            ts = event.timestamp
            if ts <= skip:
                continue
            if speed is not None:
                first = ts if first is None else first
                due = due_at(ts, first, wall0, started, speed)
                if due > time.monotonic():
                    await asyncio.sleep(due - time.monotonic())
            await _send(producer, event)
            sent, latest = sent + 1, event.occurred_at
            if time.monotonic() - last_report >= 5:
                last_report = time.monotonic()
                _progress(sent, started, latest)
        await producer.flush()
    _progress(sent, started, latest)
    return sent
