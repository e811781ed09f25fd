"""The seed's figures (the SEED_* tables) and ``seed_dataset``, the events that give them."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from tests.reportgen.events import Builder, Dataset
from tests.reportgen.facts import _at
from tests.reportgen.generated import MONTHS
from tests.reportgen.workdays import (
    LONDON,
    TAXONOMY,
    add_working_days,
    codes,
    is_working,
    local,
    working_days,
)

AUG, SEP, OCT, NOV = "2019-08", "2019-09", "2019-10", "2019-11"
QUARTER = (AUG, SEP, OCT)
#: month -> (offered N, abandoned A, short abandons (<= 5 s) S, answered within 20 s W),
#: as found in tests/unit/report/test_report.py (variant offered_less_short_abandons).
SEED_CALLS = {AUG: (1763, 91, 23, 1113), SEP: (2412, 94, 17, 1428), OCT: (2503, 88, 14, 1585)}
SEED_EMAILS = {AUG: 3921, SEP: 4185, OCT: 4854}
#: The seed's RFS table, outcome rows: Aug, Sep, Oct (None = N/A), Total.
SEED_OUTCOMES: dict[str, tuple[int | None, int | None, int | None, int]] = {
    "level_1": (497, 506, 579, 1582), "level_2_fis": (45, 48, 54, 147),
    "cwd": (0, 15, 22, 37), "ot": (None, None, 5, 5), "level_2_eh": (321, 409, 432, 1162),
    "level_3": (170, 174, 264, 608), "map": (402, 461, 513, 1376),
    "level_4": (159, 195, 210, 564), "no_consent": (28, 23, 40, 91),
    "ola": (155, 144, 173, 472), "missing_not_open": (0, 0, 0, 0),
    "info_request": (544, 539, 739, 1822), "outcome_chaser": (40, 28, 55, 123),
    "open_case": (861, 763, 818, 2442), "open_contact": (205, 271, 342, 818),
    "inappropriate": (108, 205, 266, 579), "lado": (None, 9, 9, 18),
}
#: Section 3: Level 3 outcomes, TYS / FSP / CC.
SEED_LEVEL3 = {"2019-07": (35, 30, 28), AUG: (27, 19, 12), SEP: (44, 32, 24),
               OCT: (57, 45, 29)}
#: Section 5, Early Help Hub: Outstanding (blank in the seed), Good, RI, Inadequate.
SEED_AUDITS = {AUG: (0, 7, 9, 8), SEP: (0, 8, 8, 1), OCT: (0, 3, 10, 3)}
#: "CSPA Progress to Early Help": the shares within timescale the seed's text gives
#: ("from 16% (August 2018) to 77% (August 2019) and 24% (November 2018) to 93% (November
#: 2019)"), as (within, late) progressions per month.
SEED_EARLY_HELP_TIMELINESS = {AUG: (77, 23), NOV: (93, 7)}
SEED_PATHWAYS = ("continue_eh", "progress_to_eh", "map_enquiry", "information",
                 "not_yet_recorded")
#: "Average days to complete contacts" (Nov 2019): (mean, contacts) per pathway, then the
#: row total. Police x Information is 1.37 (prints 1.4), see tests/unit/report/test_report.py.
SEED_COMPLETION: dict[str, tuple[tuple[float, int] | None, ...]] = {
    "anonymous": (None, (1.8, 6), (1.0, 38), (2.1, 42), (1.0, 17), (1.5, 103)),
    "health_services": ((4.5, 2), (1.8, 114), (1.2, 30), (1.5, 309), (1.2, 34), (1.5, 489)),
    "housing": (None, (1.6, 5), (1.0, 1), (1.8, 4), (0.0, 5), (1.1, 15)),
    "individual": (None, (1.7, 40), (1.4, 15), (1.5, 139), (1.3, 8), (1.5, 202)),
    "la_services": (None, (2.9, 8), (0.3, 3), (1.4, 45), (1.0, 5), (1.5, 61)),
    "not_recorded": ((3.0, 1), (1.9, 22), (0.0, 1), (0.9, 23), (1.5, 4), (1.4, 51)),
    "other_agencies": (None, (2.0, 7), (1.0, 6), (1.3, 10), (2.5, 4), (1.6, 27)),
    "other_legal_agency": (None, (1.6, 11), (1.1, 23), (1.3, 208), (0.8, 6), (1.3, 248)),
    "police": ((2.7, 7), (1.4, 37), (0.8, 33), (1.37, 426), (1.0, 34), (1.3, 537)),
    "schools": (None, (1.9, 107), (1.1, 15), (1.5, 133), (1.7, 30), (1.7, 285)),
}
SEED_COMPLETION_TOTALS = ((3.1, 10), (1.8, 357), (1.0, 165), (1.4, 1339), (1.2, 147),
                          (1.5, 2018))
#: Section 2 (MAP enquiries completed 1 Jul - 29 Nov 2019): 697 completed, 6.8 agencies
#: on average (the chart; the text's 6.6 is a defect of the seed), 79% within 1 working
#: day, average 2.0 working days, 44% progress to Level 4.
SEED_MAP = {"completed": 697, "level_4": 307, "within_1": 551, "agencies_total": 4740}


def _working_dates(month: str) -> list[date]:
    first = date.fromisoformat(month + "-01")
    d, out = first, []
    while d.month == first.month:
        if is_working(d):
            out.append(d)
        d += timedelta(days=1)
    return out


def _spread(month: str, n: int, i: int, hours: tuple[int, int] = (9, 17)) -> datetime:
    """The i-th of n instants spread over the working days and office hours of a month."""
    days = _working_dates(month)
    d = days[i * len(days) // n]
    slot = (i * 7919) % ((hours[1] - hours[0]) * 3600)
    return datetime(d.year, d.month, d.day, hours[0], tzinfo=LONDON) + timedelta(seconds=slot)


def _pairs(mean: float, n: int) -> list[float]:
    """n values averaging exactly ``mean`` (symmetric pairs), all >= 0."""
    values = [mean] if n % 2 else []
    for k in range(n // 2):
        d = min(0.1 * (k % 5 + 1), mean)
        values += [round(mean - d, 2), round(mean + d, 2)]
    return values


def seed_dataset() -> Dataset:
    """Events that reproduce the seed report's figures (see the SEED_* tables)."""
    b = Builder("seed")
    events: list[dict[str, Any]] = []
    # 1. Calls: W within 20 s (waits 0-20 s, 20 s counts), N-A-W slower, S short abandons
    #    (<= 5 s, 5 s counts), A-S longer abandons (5.5 s is not short).
    for month, (n, a, s, w) in SEED_CALLS.items():
        kinds = ([("answered", (0.0, 8.0, 12.0, 20.0)[i % 4]) for i in range(w)]
                 + [("answered", (20.5, 45.0, 300.0)[i % 3]) for i in range(n - a - w)]
                 + [("abandoned", (1.0, 3.0, 5.0)[i % 3]) for i in range(s)]
                 + [("abandoned", (5.5, 60.0)[i % 2]) for i in range(a - s)])
        for i, (kind, wait) in enumerate(kinds):
            k = b.key("call", month, i)
            at = _spread(month, n, i) + timedelta(seconds=wait)
            events.append(b.event(f"call.{kind}", at, call_key=k,
                                  queue="consultation" if i % 10 == 0 else "rfs",
                                  wait_seconds=wait))
    # Emails resolved, any day of the month.
    for month, n in SEED_EMAILS.items():
        first = date.fromisoformat(month + "-01")
        days = ((first.replace(day=28) + timedelta(days=4)).replace(day=1) - first).days
        for i in range(n):
            at = datetime(first.year, first.month, 1 + i * days // n, 8,
                          tzinfo=LONDON) + timedelta(seconds=(i * 104729) % 36000)
            events.append(b.event("email.resolved", at, enquiry_key=b.key("email", month, i)))
    # Contacts decided per outcome (the RFS table).
    for code, counts in SEED_OUTCOMES.items():
        for month, count in zip(QUARTER, counts[:3], strict=True):
            for i in range(count or 0):
                k = b.key("decided", code, month, i)
                events.append(b.event("contact.decided", _spread(month, count or 1, i),
                                      contact_key=k, outcome=code))
    # Audits (EHH).
    grades = codes("grade")
    for month, counts in SEED_AUDITS.items():
        for grade, count in zip(grades, counts, strict=True):
            for i in range(count):
                events.append(b.event("audit.graded", _spread(month, count, i),
                                      audit_key=b.key("audit", month, grade, i), team="ehh",
                                      grade=grade))
    events += _seed_map(b)
    events += _seed_completion(b)
    events += _seed_progressions(b)
    return Dataset([Builder.message(e) for e in events])


def _seed_map(b: Builder) -> list[dict[str, Any]]:
    """697 MAP enquiries Jul-Nov: the Level 3 table, 44% Level 4, 6.8 agencies, 2.0 days."""
    plan: list[tuple[str, str, str | None]] = []  # month, outcome, level 3 service
    for month, counts in SEED_LEVEL3.items():
        for service, n in zip(codes("level3_service"), counts, strict=True):
            plan += [(month, "level_3", service)] * n
    for i in range(SEED_MAP["level_4"]):
        plan.append((MONTHS[i % 5], "level_4", None))
    plan += [("2019-07", "level_1", None)] * 2 + [(NOV, "level_2", None)] * 6
    assert len(plan) == SEED_MAP["completed"]
    # Agencies: 558 x 7 and 139 x 6 = 4740 (mean 6.8006), then pairs 7,7 -> 5,9.
    counts = [7] * 558 + [6] * 139
    for i in range(0, 100, 2):
        counts[i], counts[i + 1] = 5, 9
    assert sum(counts) == SEED_MAP["agencies_total"]
    agencies = codes("agency")
    short_n = SEED_MAP["within_1"]
    long_n = len(plan) - short_n
    per_month: Counter[str] = Counter()
    out: list[dict[str, Any]] = []
    short_total = 0.0
    for i, (month, outcome, service) in enumerate(plan):
        k = b.key("map", i)
        days = _working_dates(month)
        j = per_month[month]
        per_month[month] += 1
        # Interleave: enquiry i is short unless it falls in the long share.
        is_short = (i * long_n) // len(plan) == ((i + 1) * long_n) // len(plan)
        if is_short:
            opened = datetime.combine(days[j % len(days)], datetime.min.time(),
                                      LONDON) + timedelta(hours=10)
            done = opened + timedelta(minutes=60 + (i * 37) % 300)
            short_total += working_days(opened, done)
        else:
            opened = datetime.combine(days[j % 5], datetime.min.time(),
                                      LONDON) + timedelta(hours=10)
            done = opened  # set below, once the short ones are known
        out.append(b.event("map_enquiry.opened", opened, enquiry_key=k))
        start = i * 5 % len(agencies)
        consulted = [agencies[(start + n) % len(agencies)] for n in range(counts[i])]
        out.append(b.event("map_enquiry.completed", done, enquiry_key=k,
                           agencies_consulted=consulted, outcome=outcome,
                           level3_service=service))
    # The long ones share what the average of 2.0 working days leaves: about 8.8 each.
    long_each = (2.0 * len(plan) - short_total) / long_n
    n_long = 0
    for opened_ev, done_ev in zip(out[::2], out[1::2], strict=True):
        if opened_ev["occurred_at"] == done_ev["occurred_at"]:
            shift = (-0.5, 0.5)[n_long % 2] if n_long < long_n - long_n % 2 else 0.0
            n_long += 1
            done_ev["occurred_at"] = add_working_days(_at(opened_ev),
                                                      long_each + shift).isoformat()
    assert n_long == long_n
    return out


def _seed_completion(b: Builder) -> list[dict[str, Any]]:
    """2,018 contacts completed 1-26 Nov 2019 giving the table's means and counts."""
    outcome_of = {"continue_eh": "level_2_eh", "progress_to_eh": "level_2_eh",
                  "map_enquiry": "map", "information": "info_request",
                  "not_yet_recorded": "level_1"}
    by_group: dict[str, list[str]] = defaultdict(list)
    for code, group in TAXONOMY["source_code"].items():
        by_group[group].append(code)
    days = [d for d in _working_dates(NOV) if d.day <= 15]
    out: list[dict[str, Any]] = []
    i = 0
    for group, cells in SEED_COMPLETION.items():
        for pathway, cell in zip(SEED_PATHWAYS, cells[:5], strict=True):
            if cell is None:
                continue
            mean, n = cell
            for j, value in enumerate(_pairs(mean, n)):
                k = b.key("completion", i)
                received = datetime.combine(days[i % len(days)], datetime.min.time(),
                                            LONDON) + timedelta(hours=9, minutes=i % 420)
                decided = add_working_days(received, value)
                assert decided <= local(2019, 11, 26, 23, 59), (group, pathway, value)
                codes_ = by_group[group]
                out.append(b.event("contact.received", received, contact_key=k,
                                   channel=("phone", "email")[i % 2],
                                   source_code=codes_[j % len(codes_)], team="rfs"))
                recorded = None if pathway == "not_yet_recorded" and j % 2 else pathway
                out.append(b.event("contact.decided", decided, contact_key=k,
                                   outcome=outcome_of[pathway], pathway=recorded))
                i += 1
    assert i == 2018
    return out


def _seed_progressions(b: Builder) -> list[dict[str, Any]]:
    """Contacts progressed to early help in 1.0 working day (within the 3-day timescale)
    or 4.5 (late), received on a month's first 8 working days so all progress in it."""
    out: list[dict[str, Any]] = []
    for month, (within, late) in SEED_EARLY_HELP_TIMELINESS.items():
        days = _working_dates(month)[:8]
        for i in range(within + late):
            k = b.key("progression", month, i)
            received = datetime.combine(days[i % len(days)], datetime.min.time(),
                                        LONDON) + timedelta(hours=9, minutes=i % 420)
            progressed = add_working_days(received, 1.0 if i < within else 4.5)
            assert progressed.strftime("%Y-%m") == month
            out.append(b.event("contact.received", received, contact_key=k, channel="phone",
                               source_code="2A", team="ehh"))
            out.append(b.event("contact.progressed", progressed, contact_key=k,
                               destination="early_help"))
    return out
