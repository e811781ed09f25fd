"""The simulator against the December 2019 committee report (Aug-Oct 2019, seed 1).

The figures are counted here directly from the generated events, independently of the
worker's aggregation code. The second half of July is generated as warm-up (work carried
into August) and the first half of November so that late October work can finish; only
August to October are compared.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from stream.contract.decoder import Decoder
from stream.contract.events import Event
from stream.contract.taxonomy import load_taxonomy
from stream.contract.topics import load_topics
from stream.state.working_days import WorkingCalendar
from stream.upstream.producer import encode, family_of
from stream.upstream.simulator import generate

TZ = ZoneInfo("Europe/London")
MONTHS = ("2019-08", "2019-09", "2019-10")
TAXONOMY = load_taxonomy()
CALENDAR = WorkingCalendar()
CALENDAR_DAYS = [date(2019, 7, 15) + timedelta(n) for n in range(124)]  # the events fixture

# The report's figures (Aug-Oct 2019) and the tolerances the simulator must meet.
CALLS_PER_MONTH = 6678 / 3
SERVICE_LEVEL = 62.42
ABANDONED = 3.37
EMAILS_PER_MONTH = 12960 / 3
CONTACTS_PER_MONTH = 3500
RFS_OUTCOMES = {
    "level_1": 1582, "level_2_fis": 147, "cwd": 37, "ot": 5, "level_2_eh": 1162, "level_3": 608,
    "map": 1376, "level_4": 564, "no_consent": 91, "ola": 472, "missing_not_open": 0,
    "info_request": 1822, "outcome_chaser": 123, "open_case": 2442, "open_contact": 818,
    "inappropriate": 579, "lado": 18,
}


def month(event: Event) -> str:
    return event.occurred_at.astimezone(TZ).strftime("%Y-%m")


def working_days(start: datetime, end: datetime) -> float:
    return CALENDAR.working_days_between(start, end)


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return list(generate(date(2019, 7, 15), 124, seed=1, taxonomy=TAXONOMY))


@pytest.fixture(scope="module")
def by_type(events: list[Event]) -> dict[str, list[Event]]:
    grouped: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        grouped[e.event_type].append(e)  # type: ignore[attr-defined]
    return grouped


def in_months(evs: list[Event]) -> list[Event]:
    return [e for e in evs if month(e) in MONTHS]


def test_calls_service_level_and_abandoned(by_type):
    offered_month = {e.call_key: month(e) for e in by_type["call.queued"]}
    offered = Counter(offered_month.values())
    quick = Counter(offered_month[e.call_key] for e in by_type["call.answered"]
                    if e.wait_seconds <= 20)
    abandoned = Counter(offered_month[e.call_key] for e in by_type["call.abandoned"])
    for m in MONTHS:
        assert abs(offered[m] / CALLS_PER_MONTH - 1) <= 0.15, (m, offered[m])
        assert abs(100 * quick[m] / offered[m] - SERVICE_LEVEL) <= 3, m
        assert abs(100 * abandoned[m] / offered[m] - ABANDONED) <= 1, m
    answered = {e.call_key for e in by_type["call.answered"]}
    assert {e.call_key for e in by_type["call.ended"]} == answered
    assert not answered & {e.call_key for e in by_type["call.abandoned"]}
    assert all(e.queue == "rfs" for e in by_type["call.queued"])


def test_emails_resolved(by_type):
    emails = Counter(month(e) for e in by_type["email.resolved"])
    for m in MONTHS:
        assert abs(emails[m] / EMAILS_PER_MONTH - 1) <= 0.15, (m, emails[m])


def test_contacts_decided_and_outcome_mix(by_type):
    decided = in_months(by_type["contact.decided"])
    per_month = Counter(month(e) for e in decided)
    for m in MONTHS:
        assert abs(per_month[m] / CONTACTS_PER_MONTH - 1) <= 0.10, (m, per_month[m])
    shares = Counter(e.outcome for e in decided)
    total = sum(RFS_OUTCOMES.values())
    for outcome, weight in RFS_OUTCOMES.items():
        assert abs(100 * shares[outcome] / len(decided) - 100 * weight / total) <= 2, outcome
    # Categories introduced later are absent before they existed.
    assert not [e for e in decided if e.outcome == "ot" and month(e) < "2019-10"]
    assert not [e for e in decided if e.outcome == "lado" and month(e) < "2019-09"]


def test_contact_sources_pathways_and_completion_days(by_type):
    received = {e.contact_key: e for e in by_type["contact.received"]}
    decided = in_months(by_type["contact.decided"])
    days = [working_days(received[e.contact_key].occurred_at, e.occurred_at) for e in decided]
    assert abs(sum(days) / len(days) - 1.5) <= 0.2
    pathways = Counter(e.pathway or "not_yet_recorded" for e in decided)
    # Report table: Information 1339, Progress to EH 357, MAP Enquiry 165 of 2018 contacts.
    assert abs(pathways["information"] / len(decided) - 1339 / 2018) <= 0.03
    assert abs(pathways["progress_to_eh"] / len(decided) - 357 / 2018) <= 0.03
    assert abs(pathways["map_enquiry"] / len(decided) - 165 / 2018) <= 0.02
    groups = Counter(TAXONOMY.group_of(received[e.contact_key].source_code) for e in decided)
    assert abs(groups["police"] / len(decided) - 537 / 2018) <= 0.03
    assert abs(groups["health_services"] / len(decided) - 489 / 2018) <= 0.03
    police_info = [working_days(received[e.contact_key].occurred_at, e.occurred_at)
                   for e in decided if e.pathway == "information"
                   and received[e.contact_key].source_code == "6"]
    assert abs(sum(police_info) / len(police_info) - 1.4) <= 0.25


def test_map_enquiries(by_type):
    opened = {e.enquiry_key: e for e in by_type["map_enquiry.opened"]}
    done = in_months(by_type["map_enquiry.completed"])
    per_month = Counter(month(e) for e in done)
    for m in MONTHS:
        assert abs(per_month[m] - 140) <= 25, (m, per_month[m])
    agencies = [len(set(e.agencies_consulted)) for e in done]
    assert all(len(e.agencies_consulted) == len(set(e.agencies_consulted)) for e in done)
    assert abs(sum(agencies) / len(agencies) - 6.6) <= 0.3
    days = [working_days(opened[e.enquiry_key].occurred_at, e.occurred_at) for e in done]
    assert abs(sum(days) / len(days) - 2.0) <= 0.3
    assert abs(100 * sum(d <= 1 for d in days) / len(days) - 79) <= 5
    outcomes = Counter(e.outcome for e in done)
    assert abs(100 * outcomes["level_4"] / len(done) - 44) <= 5
    services = Counter(e.level3_service for e in done if e.outcome == "level_3")
    level3 = sum(services.values())
    for service, weight in {"tys": 163, "fsp": 126, "cc": 93}.items():  # report, Jul-Oct
        assert abs(services[service] / level3 - weight / 382) <= 0.10, service  # ~140 draws
    assert all(e.level3_service is None for e in done if e.outcome != "level_3")


def test_progressions_and_early_help_allocation(by_type):
    progressed = {(e.contact_key, e.destination): e for e in by_type["contact.progressed"]}
    allocations = in_months(by_type["early_help.allocated"])
    days = [working_days(progressed[e.contact_key, "early_help"].occurred_at, e.occurred_at)
            for e in allocations]
    assert abs(sum(days) / len(days) - 1.9) <= 0.2
    destinations = Counter(d for _, d in progressed)
    assert destinations["early_help"] > destinations["childrens_social_care"] > 0
    received = {e.contact_key for e in by_type["contact.received"]}
    assert {k for k, _ in progressed} <= received


def test_audits(by_type):
    audits = in_months(by_type["audit.graded"])
    teams = Counter(e.team for e in audits)
    assert set(teams) == {"ehh", "map"}
    for team in ("ehh", "map"):
        assert 40 <= teams[team] <= 80  # ~20 a month each
    grades = Counter(e.grade for e in audits)
    assert grades["requires_improvement"] > grades["good"] > grades["inadequate"] > 0


def test_quality_assurance_in_the_seeds_volumes(by_type):
    """Advisors in post as many as the audits a month (each audit names one, in turn), about
    one learning review a month and a dip sample a week."""
    joined = Counter(e.team for e in by_type["advisor.joined"])
    left = Counter(e.team for e in by_type["advisor.left"])
    assert {t: joined[t] - left[t] for t in joined} == {"ehh": 20, "map": 20}
    audits = by_type["audit.graded"]
    assert all(e.advisor_key for e in audits)
    in_post = {e.advisor_key for e in by_type["advisor.joined"]}
    assert {e.advisor_key for e in audits} <= in_post
    months = len(MONTHS)
    assert 0.3 * months <= len(in_months(by_type["learning_review.held"])) <= 2.5 * months
    weeks = months * 4.3
    samples = in_months(by_type["dip_sample.taken"])
    assert 0.5 * weeks <= len(samples) <= 1.6 * weeks
    assert all(3 <= e.cases_sampled <= 10 for e in samples)


def test_every_contact_decided_and_every_enquiry_completed(by_type):
    end = datetime(2019, 10, 21, tzinfo=TZ)  # > 15 working days before the period ends
    decided = {e.contact_key for e in by_type["contact.decided"]}
    assert all(e.contact_key in decided for e in by_type["contact.received"]
               if e.occurred_at < end)
    completed = {e.enquiry_key for e in by_type["map_enquiry.completed"]}
    early = datetime(2019, 10, 15, tzinfo=TZ)
    assert all(e.enquiry_key in completed for e in by_type["map_enquiry.opened"]
               if e.occurred_at < early)
    # Work still in hand at the end of the period stays open.
    assert len(decided) < len(by_type["contact.received"])


def test_working_hours_weekends_and_bank_holidays(events):
    out_of_hours = Counter()
    contacts = 0
    for e in events:
        local = e.occurred_at.astimezone(TZ)
        working = CALENDAR.is_working_day(local.date())
        office = working and 9 <= local.hour < 17
        kind = e.event_type  # type: ignore[attr-defined]
        contacts += kind == "contact.received"
        if office:
            continue
        if kind.startswith("call.") and kind != "call.queued":
            assert working and local.hour < 19, kind  # a call offered before 17:00 runs on
            continue
        assert kind == "contact.received", (kind, local)
        out_of_hours["working" if working else "closed"] += 1
    share = (out_of_hours["working"] + out_of_hours["closed"]) / contacts
    assert 0.05 <= share <= 0.12  # ~5% at night on working days, plus weekends
    # The August bank holiday (26 Aug 2019) is quiet: a few contacts, nothing else.
    holiday = [e for e in events if e.occurred_at.astimezone(TZ).date() == date(2019, 8, 26)]
    assert 0 < len(holiday) < 40
    assert {e.event_type for e in holiday} == {"contact.received"}  # type: ignore[attr-defined]


def test_events_sorted_unique_and_aware(events):
    stamps = [e.timestamp for e in events]
    assert stamps == sorted(stamps)
    assert len({e.event_id for e in events}) == len(events)
    assert all(e.occurred_at.tzinfo is not None for e in events)
    assert all(e.source_system == "simulator" for e in events)


def test_events_valid_on_the_wire(events):
    topics = load_topics()
    decoders = {f: Decoder(f, TAXONOMY) for f in ("contacts", "map_enquiries", "calls", "audits",
                                                     "feedback")}
    now = datetime(2030, 1, 1).timestamp()
    seen = set()
    for e in events[::7] + events[-50:]:
        family = family_of(e.event_type, topics)  # type: ignore[attr-defined]
        decoded = decoders[family].decode(e.key.encode(), encode(e), now)
        assert decoded == e, decoded
        seen.add(e.event_type)  # type: ignore[attr-defined]
    assert len(seen) >= 12  # the 12 frequent types; the audits topic's rarer ones may be too


def test_deterministic_for_a_seed():
    first = [encode(e) for e in generate(date(2019, 9, 2), 3, seed=5, taxonomy=TAXONOMY)]
    again = [encode(e) for e in generate(date(2019, 9, 2), 3, seed=5, taxonomy=TAXONOMY)]
    other = [encode(e) for e in generate(date(2019, 9, 2), 3, seed=6, taxonomy=TAXONOMY)]
    assert first == again
    assert first != other
    assert all(e.event_id.startswith("sim-5-") for e in
               generate(date(2019, 9, 2), 1, seed=5, taxonomy=TAXONOMY))


def test_scale_and_until():
    one = sum(1 for _ in generate(date(2019, 9, 2), 1, seed=3, taxonomy=TAXONOMY))
    ten = sum(1 for _ in generate(date(2019, 9, 2), 1, seed=3, scale=10, taxonomy=TAXONOMY))
    assert 8 <= ten / one <= 12
    until = datetime(2019, 9, 3, 12, 0, tzinfo=TZ)
    cut = list(generate(date(2019, 9, 2), 3, seed=3, taxonomy=TAXONOMY, until=until))
    full = list(generate(date(2019, 9, 2), 3, seed=3, taxonomy=TAXONOMY))
    assert cut and all(e.occurred_at <= until for e in cut)
    assert cut == full[:len(cut)]
    assert full[len(cut)].occurred_at > until


def test_calls_queue_then_end_so_the_live_queue_moves(by_type):
    """Every call is queued first and ends after its wait: in office hours the queue is
    seldom empty for long (about 0.16 calls waiting on average at scale 1, Little's law)."""
    queued = {e.call_key: e.timestamp for e in by_type["call.queued"]}  # type: ignore[attr-defined]
    ends = [e for t in ("call.answered", "call.abandoned") for e in by_type[t]]
    assert len(ends) == len(queued)
    spans = []
    for e in ends:
        start = queued[e.call_key]  # type: ignore[attr-defined]
        assert e.timestamp - start == pytest.approx(e.wait_seconds, abs=1e-3)  # type: ignore[attr-defined]
        spans.append(e.timestamp - start)
    office_seconds = sum(1 for d in CALENDAR_DAYS if CALENDAR.is_working_day(d)) * 8 * 3600
    assert 0.1 < sum(spans) / office_seconds < 0.3  # mean calls waiting in office hours
    assert 30 < sum(spans) / len(spans) < 60  # mean wait, seconds


def test_real_time_pacing_sends_each_event_at_its_own_time():
    from stream.upstream.simulator import due_at

    wall0, started, first = 1_000_000.0, 50.0, 990_000.0  # the run began at wall0
    # speed 1: the past goes at once (due before the start), the future at its own time
    assert due_at(995_000.0, first, wall0, started, 1.0) < started
    assert due_at(wall0 + 90, first, wall0, started, 1.0) == started + 90
    # speed 60: gaps from the first event 60 times faster, never before an event's time
    assert due_at(first + 600, first, wall0, started, 60.0) == started + 10
    assert due_at(wall0 + 20_000, first, wall0, started, 60.0) == started + 20_000


def test_partner_requests_follow_the_assumed_profile(by_type):
    """Issue 29.2's events: a share of enquiries ask each agency they consulted, once; the
    answers come after their requests, in office hours counted here by the calendar, about
    16% past 4 hours overall (log-normal, median 1.5 office hours: an assumption, there is
    no published source), and GPs and CAMHS slower than the police."""
    consulted = {e.enquiry_key: set(e.agencies_consulted)
                 for e in by_type["map_enquiry.completed"]}
    asked: dict[tuple[str, str], datetime] = {}
    for e in by_type["map_enquiry.agency_requested"]:
        assert (e.enquiry_key, e.agency) not in asked  # one request per agency
        asked[(e.enquiry_key, e.agency)] = e.occurred_at
    enquiries = {k for k, _ in asked}
    assert abs(len(enquiries) / len(consulted) - 0.6) <= 0.05
    assert all({a for k2, a in asked if k2 == k} == consulted[k] for k in enquiries
               if k in consulted)
    hours: dict[str, list[float]] = defaultdict(list)
    for e in by_type["map_enquiry.agency_responded"]:
        start = asked[(e.enquiry_key, e.agency)]
        assert e.occurred_at > start
        hours[e.agency].append(CALENDAR.working_hours_between(start, e.occurred_at))
    answered = sum(len(v) for v in hours.values())
    assert 0.95 <= answered / len(asked) <= 0.99  # about 3% never answered
    late = sum(h > 4 for v in hours.values() for h in v) / answered
    assert 0.12 <= late <= 0.26, late

    def median(agency: str) -> float:
        return sorted(hours[agency])[len(hours[agency]) // 2]

    assert median("police") < median("education") < median("gp")
    assert median("police") < median("camhs")
def _repeat_share(items: dict[str, tuple[float, str]]) -> float:
    """Share of (time, child) items with another of the same child in the 365 days before."""
    by_child: dict[str, list[float]] = defaultdict(list)
    for ts, child in items.values():
        by_child[child].append(ts)
    repeats = 0
    for times in by_child.values():
        times.sort()
        repeats += sum(1 for a, b in zip(times, times[1:], strict=False) if b - a <= 365 * 86400)
    return repeats / len(items)


def test_a_year_re_refers_at_englands_rate_and_repeats_a_fifth() -> None:
    """Re-referrals: DfE "Children in need" 2024, 139,080 of 621,880 referrals (22.4%);
    repeat contacts: no national figure, the profile's assumption (a fifth)."""
    contacts: dict[str, tuple[float, str]] = {}
    referred: dict[str, float] = {}
    for e in generate(date(2019, 1, 1), 365, seed=3, taxonomy=load_taxonomy()):
        if e.event_type == "contact.received":
            assert e.child_key is not None
            contacts[e.contact_key] = (e.timestamp, e.child_key)
        elif e.event_type == "contact.progressed" and e.destination == "childrens_social_care":
            referred[e.contact_key] = e.timestamp
    referrals = {k: (ts, contacts[k][1]) for k, ts in referred.items()}
    assert len(referrals) > 2000
    assert _repeat_share(referrals) == pytest.approx(0.224, abs=0.03)
    assert _repeat_share(contacts) == pytest.approx(0.2, abs=0.03)
