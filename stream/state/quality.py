"""The quality-assurance family: learning reviews, dip samples and the monthly-audit standard.

Read from QA records (kind ``qa``, on the audits topic): a learning review (``Review``),
a dip sample (``DipSample``), or an advisor's membership of a team (``Joining``,
``Leaving``); and from the audit record's advisor (``stream.state.audits``).

* learning reviews: one per review, in the local month it was held, by team and theme;
* dip samples: one per sample, in the month taken, by sampler role and theme; the fact
  carries the cases sampled, so ``cspa_dip_sample_cases``'s ``_count`` is the samples and
  its ``_sum`` the cases;
* the monthly-audit standard ("every advisor will have a monthly audit"): an advisor is
  *in post* in team T at the end of month M when their latest join (team T) is in M or
  before and no leave of T dated at or after that join is in M or before. An advisor is
  *audited* in M when an audit graded in M names them (any team). Coverage of M is the
  advisors in post at its end who were audited in it, over those in post.

Membership and audits are keyed differently (advisor key, audit key), so they sit in
different partitions. Their facts carry the advisor as a number, ``advisor_tag``: a
48-bit digest of the pseudonymous key, unlinkable to it without it, that lives only in
the value multisets of cells (never a label, a log line or a metric). Cells add across
partitions, so the set of advisors in post, and of those audited, is exact over whatever
partitions are merged: over all of them for the report and for the worker's
``cspa_advisors_unaudited`` (which follows every partition: ``stream.worker.roster``).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date, timedelta

from stream.state.aggregates import Aggregates
from stream.state.facts import Count, Distribution, Fact, FactContext, Family
from stream.state.records import DipSample, Joining, Leaving, Record, Review
from stream.state.working_days import WorkingCalendar

#: cases looked at in one dip sample
CASE_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)
#: the last working days of a month in which ``AdvisorAuditsBehind`` may fire
LAST_WORKING_DAYS = 5


def advisor_tag(advisor_key: str) -> float:
    """The advisor as a cell value: a 48-bit digest (exact in a float, far from any
    collision among a council's few hundred advisors)."""
    digest = hashlib.blake2b(advisor_key.encode(), digest_size=6, person=b"cspa-advisor")
    return float(int.from_bytes(digest.digest(), "big"))


def qa_facts(rec: Record, ctx: FactContext) -> list[Fact]:
    """The facts of one QA record (a review, a dip sample, or an advisor)."""
    facts: list[Fact] = []
    review = rec.get(Review.KEY)
    if review:
        facts.append(("learning_reviews", (ctx.month(Review.occurred_at(review)),
                                           Review.team(review), Review.theme(review)), None))
    dip = rec.get(DipSample.KEY)
    if dip:
        facts.append(("dip_samples", (ctx.month(DipSample.occurred_at(dip)),
                                      DipSample.sampler_role(dip), DipSample.theme(dip)),
                      float(DipSample.cases_sampled(dip))))
    return facts + _membership(rec, ctx)


def _membership(rec: Record, ctx: FactContext) -> list[Fact]:
    """Joined (and left) facts of an advisor record, per team, valued by its
    ``advisor_tag``.

    A team's latest join opens its spell; that team's latest leave, if not before the
    join, ends it. A leave before the latest join of its team belongs to an earlier
    spell in the same team that the record no longer holds: it is not counted.
    """
    facts: list[Fact] = []
    leaves = Leaving.slots(rec)
    for team, joined in Joining.slots(rec).items():
        tag = advisor_tag(Joining.advisor_key(joined))
        facts.append(("advisors_joined", (ctx.month(Joining.occurred_at(joined)), team), tag))
        left = leaves.get(team)
        if left and Leaving.occurred_at(left) >= Joining.occurred_at(joined):
            facts.append(("advisors_left", (ctx.month(Leaving.occurred_at(left)), team), tag))
    return facts


def in_post(agg: Aggregates, month: str, teams: Iterable[str]) -> dict[str, set[float]]:
    """team -> the advisors (tags) in post at the end of ``month``: joins up to it less the
    leaves up to it (one pass over each figure's cells)."""
    spells: dict[str, Counter[float]] = {team: Counter() for team in teams}
    for figure, sign in (("advisors_joined", 1), ("advisors_left", -1)):
        for (m, team), cell in agg.figure(figure):
            if m <= month and team in spells:
                for tag, n in cell.values.items():
                    spells[team][tag] += sign * n
    return {team: {tag for tag, n in tags.items() if n > 0} for team, tags in spells.items()}


def audited(agg: Aggregates, month: str) -> set[float]:
    """The advisors (tags) an audit graded in ``month`` names."""
    return {tag for (m, _), cell in agg.figure("advisors_audited") if m == month
            for tag in cell.values}


def coverage(agg: Aggregates, month: str, teams: Iterable[str]) -> dict[str, tuple[int, int]]:
    """team -> (advisors in post at the end of ``month`` audited in it, advisors in post)."""
    done = audited(agg, month)
    return {team: (len(tags & done), len(tags))
            for team, tags in in_post(agg, month, teams).items()}


def unaudited(agg: Aggregates, month: str, teams: Iterable[str]) -> Mapping[str, int]:
    """team -> advisors in post now (``month`` is the current one) without an audit in it.

    Exact over the cells of every partition (an advisor's record and their audits sit
    in different ones): the report merges every worker's, and each worker keeps a copy
    of the whole audits table for its gauge (``stream.worker.roster``).
    """
    return {team: posts - done for team, (done, posts) in coverage(agg, month, teams).items()}


def working_days_left(calendar: WorkingCalendar, today: date) -> int:
    """Working days from ``today`` (itself included) to the end of its month: the alert
    ``AdvisorAuditsBehind`` may fire while it is at most ``LAST_WORKING_DAYS``."""
    left, day = 0, today
    while day.month == today.month:
        left += calendar.is_working_day(day)
        day += timedelta(days=1)
    return left


QUALITY = Family(
    "qa", qa_facts,
    counts=(Count("learning_reviews", "cspa_learning_reviews", ("month", "team", "theme"),
                  "Learning reviews held in the month, by team and theme."),),
    distributions=(Distribution("dip_samples", "cspa_dip_sample_cases",
                                ("month", "sampler_role", "theme"), CASE_BUCKETS,
                                "Cases looked at per dip sample taken in the month (_count: "
                                "dip samples; _sum: cases sampled)."),),
    # advisor tags: read by ``in_post`` and the worker's unaudited gauge, never exposed
    cells={"advisors_joined": ("month", "team"), "advisors_left": ("month", "team")},
)
