"""Calibration of the traffic simulator: the numbers of the December 2019 committee report.

Volumes are per working day (or per non-working day) and are derived from the report's
reference quarter, August to October 2019: 65 working days and 27 weekend / bank-holiday
days in England. At ``scale=1`` the simulator reproduces one council's front door; the
figures it yields are compared with the report in ``tests/unit/upstream/test_simulator.py``.
"""

from __future__ import annotations

import itertools
import math
import random
from bisect import bisect
from collections.abc import Mapping

from stream.contract.taxonomy import UNRECORDED_PATHWAY

#: Working and non-working days of the reference quarter (Aug-Oct 2019, England).
REF_WORKING_DAYS = 65
REF_OTHER_DAYS = 27

# --- RFS team: calls and emails (report section 1) ---------------------------------------
#: Calls offered per working day: 6,678 calls in the quarter.
CALLS_PER_WORKING_DAY = 6678 / REF_WORKING_DAYS
#: Calls answered within the service-level threshold, as a share of calls offered
#: (call-weighted quarter: 62.29%; the report's mean of months is 62.42%).
CALL_SERVICE_LEVEL = 0.623
#: Abandoned / offered (call-weighted 3.31%; mean of months 3.37%).
CALL_ABANDON_RATE = 0.0335
SERVICE_LEVEL_SECONDS = 20.0
#: Waits: quick answers are uniform in (1, 19) s; slow ones 20 s + exponential(mean).
SLOW_ANSWER_MEAN_EXTRA_SECONDS = 75.0
ABANDON_MEAN_WAIT_SECONDS = 55.0
#: Talk and wrap-up: gamma(shape, mean).
HANDLE_SHAPE, HANDLE_MEAN_SECONDS = 2.0, 480.0
#: Emails resolved per working day: 12,960 in the quarter.
EMAILS_PER_WORKING_DAY = 12960 / REF_WORKING_DAYS

#: Relative volume by weekday (Mon..Fri) and by office hour (09..16).
WEEKDAY_WEIGHTS = (1.15, 1.05, 1.0, 0.95, 0.85)
HOUR_WEIGHTS = (1.25, 1.35, 1.2, 0.9, 1.0, 1.05, 0.9, 0.75)

# --- Contacts (report sections 1 and 4) ---------------------------------------------------
#: Contacts into the service: "averaged at around 3,500 contacts" a month.
CONTACTS_PER_MONTH = 3500.0
#: A weekend or bank-holiday day carries this share of a working day's contacts.
NON_WORKING_DAY_SHARE = 0.08
CONTACTS_PER_WORKING_DAY = (3 * CONTACTS_PER_MONTH
                            / (REF_WORKING_DAYS + NON_WORKING_DAY_SHARE * REF_OTHER_DAYS))
#: Share of a working day's contacts that arrive out of hours, police and others
#: (about 5% overall with the source mix below).
OUT_OF_HOURS_SHARE = {"police": 0.12, "other": 0.025}
#: Share of contacts about a child who already had a contact (re-referrals, siblings,
#: agencies calling again), drawn from the children of the last few months. No national
#: figure exists (contacts are not in the DfE's children in need census): an assumption,
#: about one contact in five a repeat within 12 months, as the Front Door Data
#: Collaboration's councils describe repeat demand; the simulated year measures it.
REPEAT_CHILD_SHARE = 0.2
CHILDREN_REMEMBERED = 8000
#: England's re-referral rate, DfE "Children in need" (reporting year 2024): 139,080
#: re-referrals within 12 months of a previous referral, of 621,880 referrals: 22.4%.
RE_REFERRAL_RATE = 139_080 / 621_880
#: The chance a contact decided straight to children's social care (Level 4, LADO) is
#: about a child referred in the 12 months before. Referrals through a MAP enquiry pick
#: their child before the enquiry decides, so they re-refer only by chance: this is set
#: above the target so that a simulated year's share of all referrals comes to about
#: RE_REFERRAL_RATE (tests/unit/upstream/test_simulator.py measures it).
RE_REFERRAL_PICK = 0.29
#: Days a referred child stays eligible to be picked again (12 months).
RE_REFERRAL_DAYS = 365
#: Channel of a contact received in and out of office hours.
CHANNELS_OFFICE = {"phone": 0.34, "email": 0.56, "online_form": 0.10}
CHANNELS_OUT_OF_HOURS = {"email": 0.75, "online_form": 0.25}

#: Outcome mix: the RFS table's Aug-Oct totals (taxonomy codes).
CONTACT_OUTCOMES: Mapping[str, float] = {
    "level_1": 1582, "level_2_fis": 147, "cwd": 37, "ot": 5, "level_2_eh": 1162,
    "level_3": 608, "map": 1376, "level_4": 564, "no_consent": 91, "ola": 472,
    "missing_not_open": 0, "info_request": 1822, "outcome_chaser": 123, "open_case": 2442,
    "open_contact": 818, "inappropriate": 579, "lado": 18,
}

PATHWAYS = ("continue_eh", "progress_to_eh", "map_enquiry", "information", UNRECORDED_PATHWAY)

#: "Average days to complete contacts": source group -> (mean working days, contacts) per
#: pathway, in the order of PATHWAYS; None where the report's cell is empty.
CONTACT_TABLE: Mapping[str, tuple[tuple[float, int] | None, ...]] = {
    "anonymous": (None, (1.8, 6), (1.0, 38), (2.1, 42), (1.0, 17)),
    "health_services": ((4.5, 2), (1.8, 114), (1.2, 30), (1.5, 309), (1.2, 34)),
    "housing": (None, (1.6, 5), (1.0, 1), (1.8, 4), (0.0, 5)),
    "individual": (None, (1.7, 40), (1.4, 15), (1.5, 139), (1.3, 8)),
    "la_services": (None, (2.9, 8), (0.3, 3), (1.4, 45), (1.0, 5)),
    "not_recorded": ((3.0, 1), (1.9, 22), (0.0, 1), (0.9, 23), (1.5, 4)),
    "other_agencies": (None, (2.0, 7), (1.0, 6), (1.3, 10), (2.5, 4)),
    "other_legal_agency": (None, (1.6, 11), (1.1, 23), (1.3, 208), (0.8, 6)),
    "police": ((2.7, 7), (1.4, 37), (0.8, 33), (1.4, 426), (1.0, 34)),
    "schools": (None, (1.9, 107), (1.1, 15), (1.5, 133), (1.7, 30)),
}
#: Shape of the gamma distribution of a contact's working days to complete.
CONTACT_DURATION_SHAPE = 1.3
#: ... capped: no contact waits more than three weeks for a decision.
CONTACT_MAX_DAYS = 15.0

#: Which outcomes each pathway can carry (the case system's "actual outcome" and the RFS
#: team's outcome are recorded separately; these pairings keep them plausible). The joint
#: distribution is fitted to both marginals by iterative proportional fitting.
_ALL = frozenset(CONTACT_OUTCOMES)
PATHWAY_OUTCOMES: Mapping[str, frozenset[str]] = {
    "continue_eh": frozenset({"open_case", "open_contact"}),
    "progress_to_eh": frozenset({"level_2_eh", "level_3", "level_2_fis", "cwd", "ot",
                                 "open_contact"}),
    "map_enquiry": frozenset({"map", "level_4", "lado"}),
    "information": _ALL - {"level_2_eh"},
    UNRECORDED_PATHWAY: _ALL,
}

#: Working days from the decision to the progression (gamma shape, mean), then the
#: Early Help Hub's allocation after the progression (report: average 1.9 working days).
PROGRESSION_DELAY_MEAN = 0.05
ALLOCATION_SHAPE, ALLOCATION_MEAN = 2.0, 1.9

# --- MAP enquiries (report section 2) ----------------------------------------------------
#: About 140 completed a month (697 from July to November): the share of "MAP" contacts
#: that open an enquiry (one enquiry may cover several children of a family).
MAP_OPEN_SHARE = 140 / (CONTACTS_PER_MONTH * 1376 / sum(CONTACT_OUTCOMES.values()))
#: Working days to complete: 79% within one working day (uniform in (LOW, 1)); the rest
#: 1 + gamma(shape, TAIL_MEAN), so that the mean is 2.0.
MAP_WITHIN_DAY = 0.79
MAP_FAST_LOW = 0.05
MAP_TAIL_SHAPE = 5.0
MAP_TAIL_MEAN = (2.0 - MAP_WITHIN_DAY * (1 + MAP_FAST_LOW) / 2) / (1 - MAP_WITHIN_DAY) - 1
#: Agencies consulted: 1 + binomial(11, p) with mean 6.6, drawn without replacement by weight.
MAP_AGENCIES_MEAN = 6.6
AGENCY_WEIGHTS: Mapping[str, float] = {
    "police": 10.0, "gp": 8.0, "education": 8.0, "health_visiting": 5.0,
    "school_nursing": 4.0, "acute_health": 3.5, "camhs": 3.0, "adult_social_care": 2.5,
    "housing": 2.0, "domestic_abuse": 2.0, "youth_justice": 1.2, "probation": 1.0,
}
# Partner agencies' responses (issue 29.2; report section 9, rule partner_response: 4
# working hours). ASSUMED, not calibrated: the seed report has no partner response times
# and we found no published measured source (searched 2026-12-05 again, about 40 queries;
# docs/contract.md lists the nearest figures). A share of enquiries come from a case system
# that sends the partner events; each agency consulted is asked within minutes of the
# opening and answers after a log-normal number of office hours (median 1.5, sigma 1.0:
# about 16% past the 4 hours), scaled per agency so that a slow partner shows; a few
# never answer.
PARTNER_EVENTS_SHARE = 0.6
PARTNER_ASK_MINUTES = (1.0, 20.0)  # opened -> asked, office minutes, uniform
PARTNER_MEDIAN_HOURS, PARTNER_SIGMA = 1.5, 1.0
PARTNER_NO_ANSWER_SHARE = 0.03
#: an agency's answer time relative to the median (assumed: GPs and CAMHS slowest)
PARTNER_SPEED: Mapping[str, float] = {"police": 0.6, "gp": 1.8, "camhs": 2.0, "housing": 1.4}


def partner_response_hours(rng: random.Random, agency: str) -> float | None:
    """Office hours one agency takes to answer a request (None: it never answers)."""
    if rng.random() < PARTNER_NO_ANSWER_SHARE:
        return None
    median = PARTNER_MEDIAN_HOURS * PARTNER_SPEED.get(agency, 1.0)
    return min(median * math.exp(rng.gauss(0.0, PARTNER_SIGMA)), 60.0)


#: Outcome of an enquiry: 44% progress to level 4.
MAP_OUTCOMES: Mapping[str, float] = {"level_4": 44, "level_3": 30, "level_2": 18, "level_1": 8}
#: Level 3 services (report section 3, July-October totals).
LEVEL3_SERVICES: Mapping[str, float] = {"tys": 163, "fsp": 126, "cc": 93}

# --- Quality assurance (report section 5) ------------------------------------------------
AUDITS_PER_MONTH = {"ehh": 20.0, "map": 20.0}
AUDIT_GRADES: Mapping[str, float] = {
    "outstanding": 0, "good": 19, "requires_improvement": 27, "inadequate": 12,
}
#: "every advisor will have a monthly audit": the teams' audits a month are their advisors
ADVISORS = AUDITS_PER_MONTH
#: advisors leaving (and replaced the next working day) per advisor per year
ADVISOR_TURNOVER_PER_YEAR = 0.15
#: "one learning review a month since August" (the EHH)
LEARNING_REVIEWS_PER_MONTH = {"ehh": 1.0}
#: "the service managers and Assistant Director 'dip sample' every week"
DIP_SAMPLES_PER_WEEK = 1.0
DIP_SAMPLERS: Mapping[str, float] = {"service_manager": 3, "assistant_director": 1}
DIP_CASES = (3, 10)  # cases looked at in one dip sample, uniform

# --- Feedback (report section 6, "Then and Now") -------------------------------------------
# The seed prints five approved quotes in its quarter's section 6 (a parent, a Family Centre,
# the CSPA's social workers, health and police colleagues) and says nothing of how much
# feedback came in. Chosen for a county front door: about 30 pieces a month, half of them
# compliments; 1 in 9 compliments approved as a quote (about 1.7 a month: five a quarter),
# nine in ten with consent to publish; 1 in 12 consented quotes withdrawn later.
FEEDBACK_PER_MONTH = 30.0
FEEDBACK_FROM: Mapping[str, float] = {
    "parent_carer": 45, "partner_agency": 35, "staff": 12, "young_person": 8}
#: the partner agencies that give feedback (taxonomy ``agency``), police and health most
FEEDBACK_AGENCIES: Mapping[str, float] = {
    "police": 30, "health_visiting": 12, "gp": 10, "school_nursing": 6, "acute_health": 6,
    "education": 20, "camhs": 4, "housing": 4, "domestic_abuse": 4, "probation": 2,
    "youth_justice": 2}
FEEDBACK_KINDS: Mapping[str, float] = {"compliment": 50, "complaint": 25, "comment": 25}
FEEDBACK_CHANNELS: Mapping[str, float] = {
    "email": 50, "phone": 25, "online_form": 15, "post": 5, "in_person": 5}
QUOTE_SHARE_OF_COMPLIMENTS = 1 / 9
QUOTE_CONSENT_SHARE = 0.9
QUOTE_DELAY_WORKING_DAYS = (3, 15)  # received -> approved, uniform
QUOTE_APPROVERS: Mapping[str, float] = {
    "service_manager": 5, "team_manager": 3, "head_of_service": 1, "assistant_director": 1}
WITHDRAWN_SHARE = 1 / 12
WITHDRAWAL_DELAY_WORKING_DAYS = (5, 60)  # approved -> withdrawn, uniform
# Complaints' stage 1 answers (rule complaint_stage1: 10 working days, 20 if extended in
# time). The seed reports no complaint figures; these assume most answers are on time,
# a few extended (decided in the first 10 days), and some late, so the breach row and
# ComplaintStage1Due have something to show.
COMPLAINT_EXTENDED_SHARE = 0.15
COMPLAINT_EXTENSION_WORKING_DAYS = (4, 9)  # received -> extended, uniform
COMPLAINT_RESPONSE_WORKING_DAYS = (2, 12)  # received -> answered, not extended
COMPLAINT_EXTENDED_RESPONSE_WORKING_DAYS = (11, 22)  # received -> answered, extended


def fit_joint(rows: Mapping[str, float], cols: Mapping[str, float],
              allowed: Mapping[str, frozenset[str]],
              rounds: int = 200) -> dict[str, dict[str, float]]:
    """Weights ``joint[col][row]`` matching both marginals, zero outside ``allowed``.

    Iterative proportional fitting from a uniform start on the allowed cells.
    """
    row_total, col_total = sum(rows.values()), sum(cols.values())
    joint = {c: {r: 1.0 if r in allowed[c] else 0.0 for r in rows} for c in cols}
    for _ in range(rounds):
        for r, want in rows.items():
            have = sum(joint[c][r] for c in cols)
            if have > 0:
                for c in cols:
                    joint[c][r] *= want / row_total / have
        for c, want in cols.items():
            have = sum(joint[c].values())
            if have > 0:
                factor = want / col_total / have
                joint[c] = {r: v * factor for r, v in joint[c].items()}
    return joint


Cell = tuple[float, int]


def contact_mix() -> tuple[dict[tuple[str, str], Cell], dict[str, dict[str, float]],
                           dict[str, dict[str, float]]]:
    """The contacts table by (group, pathway), and the weights of pathway given outcome
    and of source group given pathway."""
    cells = {(g, p): cell for g, row in CONTACT_TABLE.items()
             for p, cell in zip(PATHWAYS, row, strict=True) if cell is not None}
    totals = {p: float(sum(n for (_, q), (_, n) in cells.items() if q == p)) for p in PATHWAYS}
    joint = fit_joint(CONTACT_OUTCOMES, totals, PATHWAY_OUTCOMES)
    pathways = {o: {p: joint[p][o] for p in PATHWAYS} for o in CONTACT_OUTCOMES}
    groups = {p: {g: float(n) for (g, q), (_, n) in cells.items() if q == p} for p in PATHWAYS}
    return cells, pathways, groups


# --- Distributions --------------------------------------------------------------------------
class Choice:
    """A weighted choice from a fixed set (cumulative weights, bisect)."""

    def __init__(self, weights: Mapping[str, float]) -> None:
        items = [(k, w) for k, w in weights.items() if w > 0]
        self.keys = [k for k, _ in items]
        self.cum = list(itertools.accumulate(w for _, w in items))

    def __call__(self, rng: random.Random) -> str:
        return self.keys[bisect(self.cum, rng.random() * self.cum[-1])]


class Deck:
    """Draws without replacement from a shuffled deck holding the weights' proportions.

    Used for the small monthly samples the report compares (MAP outcomes, level 3
    services, MAP completions within a day): the mix over any full deck is exact, so a
    month's figures wander far less than with independent draws, yet the order is random.
    """

    def __init__(self, weights: Mapping[str, float], size: int) -> None:
        total = sum(weights.values())
        exact = {k: w * size / total for k, w in weights.items()}
        counts = {k: int(v) for k, v in exact.items()}
        by_remainder = sorted(exact, key=lambda k: counts[k] - exact[k])
        for k in by_remainder[:size - sum(counts.values())]:
            counts[k] += 1
        self.cards = [k for k, n in counts.items() for _ in range(n)]
        self.hand: list[str] = []

    def __call__(self, rng: random.Random) -> str:
        if not self.hand:
            self.hand = self.cards[:]
            rng.shuffle(self.hand)
        return self.hand.pop()


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson count (normal approximation above 50)."""
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def gamma(rng: random.Random, shape: float, mean: float) -> float:
    """Gamma with the given mean (a token 0.01 for a zero mean)."""
    return rng.gammavariate(shape, mean / shape) if mean > 0 else 0.01


#: How an offered call goes: answered within the threshold, after it, or abandoned.
CALL_FATES: Mapping[str, float] = {
    "quick": CALL_SERVICE_LEVEL, "abandoned": CALL_ABANDON_RATE,
    "slow": 1 - CALL_SERVICE_LEVEL - CALL_ABANDON_RATE,
}


def call_outcome(rng: random.Random, fate: str) -> tuple[bool, float, float]:
    """(answered, wait seconds, handle seconds) of one offered call of a CALL_FATES fate."""
    if fate == "abandoned":
        return False, round(min(rng.expovariate(1 / ABANDON_MEAN_WAIT_SECONDS), 1800), 1), 0.0
    if fate == "quick":
        wait = rng.uniform(1.0, SERVICE_LEVEL_SECONDS - 1)
    else:
        extra = min(rng.expovariate(1 / SLOW_ANSWER_MEAN_EXTRA_SECONDS), 1800)
        wait = SERVICE_LEVEL_SECONDS + 0.5 + extra
    return True, round(wait, 1), round(gamma(rng, HANDLE_SHAPE, HANDLE_MEAN_SECONDS) + 20, 1)


def map_working_days(rng: random.Random, within_day: bool) -> float:
    """Working days a MAP enquiry takes: mostly within a day, with a long tail."""
    if within_day:
        return rng.uniform(MAP_FAST_LOW, 1.0)
    return 1.0 + gamma(rng, MAP_TAIL_SHAPE, MAP_TAIL_MEAN)


def agencies(rng: random.Random) -> list[str]:
    """Agencies consulted by one enquiry: 1 + binomial(11, p) of them, drawn by weight."""
    pool = dict(AGENCY_WEIGHTS)
    p = (MAP_AGENCIES_MEAN - 1) / (len(pool) - 1)
    chosen: list[str] = []
    for _ in range(1 + sum(rng.random() < p for _ in range(len(pool) - 1))):
        pick = Choice(pool)(rng)
        chosen.append(pick)
        del pool[pick]
    return chosen
