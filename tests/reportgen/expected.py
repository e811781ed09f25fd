"""The expected report: every figure, the notes around the tables, and what is published."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date

from tests.reportgen.facts import Facts
from tests.reportgen.workdays import DAY_BINS, TOTAL, codes, nearest_rank, valid_from


@dataclass(frozen=True)
class Defs:
    """The report's definitions (as the report command reads them from CSPA_* / flags)."""

    service_level_seconds: float = 20.0
    variant: str = "offered"
    short_abandon_seconds: float = 0.0
    combination: str = "ratio_of_sums"
    basis: str = "working"


@dataclass(frozen=True)
class Fig:
    """One expected figure: "N/A", None (nothing to average), or a number of a kind."""

    value: float | str | None
    kind: str = "count"
    base: int | None = None


Key = tuple[str, ...]  # (table, row, column) or (table, row, column, "count")
NA = Fig("N/A")


def _pct(num: int, den: int) -> Fig:
    return Fig(100.0 * num / den if den else None, "percent", den)


def _mean(values: Sequence[float], kind: str = "days") -> Fig:
    return Fig(sum(values) / len(values) if values else None, kind, len(values))


class _Expect:
    def __init__(self, months: Sequence[str], defs: Defs) -> None:
        self.months, self.defs = list(months), defs
        self.cols = [*self.months, TOTAL]
        self.out: dict[Key, Fig] = {}

    def put(self, table: str, row: str, figs: Sequence[Fig]) -> None:
        for col, fig in zip(self.cols, figs, strict=True):
            key = (table, row, col)
            assert key not in self.out, key
            self.out[key] = fig

    def count_row(self, table: str, row: str, per_month: Mapping[str, int],
                  category: str | None = None) -> None:
        figs: list[Fig] = []
        for m in self.months:
            n = per_month.get(m, 0)
            since = valid_from(category, row) if category else None
            exists = since is None or date.fromisoformat(m + "-01") >= since
            figs.append(Fig(n) if exists or n else NA)
        present = [f.value for f in figs if f.value != "N/A"]
        figs.append(Fig(sum(present)) if present else NA)  # type: ignore[arg-type]
        self.put(table, row, figs)

    def percent_row(self, table: str, row: str, num: Mapping[str, int],
                    den: Mapping[str, int]) -> None:
        figs = [_pct(num.get(m, 0), den.get(m, 0)) for m in self.months]
        total_den = sum(den.get(m, 0) for m in self.months)
        if self.defs.combination == "mean_of_months":
            monthly = [f.value for f in figs if f.value is not None]
            figs.append(Fig(sum(monthly) / len(monthly) if monthly else None,  # type: ignore
                            "percent", total_den))
        else:
            figs.append(_pct(sum(num.get(m, 0) for m in self.months), total_den))
        self.put(table, row, figs)

    def stats(self, table: str, prefix: str, per_month: Mapping[str, list[float]],
              kind: str = "days") -> None:
        columns = [per_month.get(m, []) for m in self.months]
        columns.append([v for c in columns for v in c])
        self.put(table, prefix + "_count", [Fig(len(c)) for c in columns])
        self.put(table, prefix + "_average", [_mean(c, kind) for c in columns])
        self.put(table, prefix + "_median",
                 [Fig(nearest_rank(c, 50), kind, len(c)) for c in columns])
        self.put(table, prefix + "_p90", [Fig(nearest_rank(c, 90), kind, len(c)) for c in columns])

    def transposed_counts(self, table: str, columns: Sequence[str],
                          counts: Mapping[tuple[str, str], int]) -> None:
        """Months as rows; ``counts[(month, column)]``; a Total row and column."""
        for m in self.months:
            row = [counts.get((m, c), 0) for c in columns]
            for c, n in zip([*columns, TOTAL], [*row, sum(row)], strict=True):
                self.out[(table, m, c)] = Fig(n)
        for c in columns:
            self.out[(table, TOTAL, c)] = Fig(sum(counts.get((m, c), 0) for m in self.months))
        self.out[(table, TOTAL, TOTAL)] = Fig(sum(counts.get((m, c), 0) for m in self.months
                                                  for c in columns))


def expected_report(f: Facts, months: Sequence[str], defs: Defs = Defs()) -> dict[Key, Fig]:
    """Every figure of the JSON report for ``months``: (table, row, column) -> Fig."""
    x = _Expect(months, defs)
    inside = set(months)
    w = 3 if defs.basis == "working" else 4  # index of the duration in a fact

    # 1. RFS -----------------------------------------------------------------------------
    offered: Counter[str] = Counter()
    within: Counter[str] = Counter()
    abandoned: Counter[str] = Counter()
    short: Counter[str] = Counter()
    for m, _, answered, wait in f.calls:
        offered[m] += 1
        if answered:
            within[m] += wait <= defs.service_level_seconds
        else:
            abandoned[m] += 1
            short[m] += defs.short_abandon_seconds > 0 and wait <= defs.short_abandon_seconds
    answered_n = {m: offered[m] - abandoned[m] for m in months}
    denominator = {"offered": offered, "answered": answered_n,
                   "offered_less_short_abandons": {m: offered[m] - short[m] for m in months},
                   }[defs.variant]
    emails = Counter(f.emails)
    x.count_row("rfs", "calls", offered)
    x.percent_row("rfs", "service_level", within, denominator)
    x.percent_row("rfs", "abandoned_rate", {m: abandoned[m] - short[m] for m in months},
                  {m: offered[m] - short[m] for m in months})
    x.count_row("rfs", "emails_resolved", emails)
    decided: dict[str, Counter[str]] = defaultdict(Counter)
    for m, outcome in f.decided:
        decided[outcome][m] += 1
    for code in codes("contact_outcome"):
        x.count_row("rfs", code, decided[code], "contact_outcome")
    enquiries = {m: offered[m] + emails[m] for m in months}
    x.count_row("rfs", "enquiries", enquiries)
    x.percent_row("rfs", "email_share", emails, enquiries)

    # 2. MAP ------------------------------------------------------------------------------
    done = [d for d in f.map_done if d[0] in inside]
    completed = Counter(d[0] for d in done)
    x.count_row("map_summary", "completed", completed)
    x.percent_row("map_summary", "progress_level_4",
                  Counter(d[0] for d in done if d[1] == "level_4"), completed)
    agencies: dict[str, list[float]] = defaultdict(list)
    for d in done:
        agencies[d[0]].append(float(len(d[2])))
    x.stats("map_agencies", "agencies", agencies, "number")
    numbers = sorted({int(v) for vs in agencies.values() for v in vs})
    for n in range(numbers[0], numbers[-1] + 1) if numbers else ():
        x.count_row("map_agencies", str(n),
                    {m: sum(int(v) == n for v in agencies[m]) for m in months})
    for agency in codes("agency"):
        x.count_row("map_by_agency", agency, Counter(d[0] for d in done if agency in d[2]))
    for outcome in codes("map_outcome"):
        x.count_row("map_by_outcome", outcome, Counter(d[0] for d in done if d[1] == outcome))
    days: dict[str, list[float]] = defaultdict(list)
    for d in done:
        v = d[4] if defs.basis == "working" else d[5]
        if v is not None:
            days[d[0]].append(v)
    for table in (f"map_days_{defs.basis}", "map_days"):
        x.stats(table, "map_days", days)
    table = f"map_days_{defs.basis}"
    x.percent_row(table, "within_1_day", {m: sum(v <= 1.0 for v in days[m]) for m in months},
                  {m: len(days[m]) for m in months})
    if defs.combination != "mean_of_months":
        pooled = [v for m in months for v in days[m]]
        x.out[(table, "within_1_day", TOTAL)] = _pct(sum(v <= 1.0 for v in pooled), len(pooled))
    for i, name in enumerate(DAY_BINS):
        x.count_row(table, name, {m: sum(min(math.floor(v), 5) == i for v in days[m])
                                  for m in months})

    # 3. Information and advice ---------------------------------------------------------
    level3 = Counter((d[0], d[3]) for d in done if d[3])
    x.transposed_counts("level3_outcomes", codes("level3_service"), level3)

    # 4. Commentary ----------------------------------------------------------------------
    received = Counter(r[0] for r in f.received)
    x.count_row("contacts_received", "contacts_received", received)
    for channel in codes("channel"):
        x.count_row("contacts_received", channel,
                    Counter(r[0] for r in f.received if r[1] == channel))
    alloc: dict[str, list[float]] = defaultdict(list)
    for a in f.allocation:
        alloc[a[0]].append(a[1] if defs.basis == "working" else a[2])
    x.stats("early_help_allocation", "ehh_allocation", alloc)
    groups, pathways = codes("source_group"), codes("pathway")
    grid: dict[tuple[str, str], list[float]] = defaultdict(list)
    for c in f.completion:
        if c[0] in inside:
            for g in (c[1], TOTAL):
                for p in (c[2], TOTAL):
                    grid[(g, p)].append(c[w])  # type: ignore[arg-type]
    for g in (*groups, TOTAL):
        for p in (*pathways, TOTAL):
            vals = grid[(g, p)]
            x.out[("contact_completion_average", g, p)] = _mean(vals)
            x.out[("contact_completion_average", g, p, "count")] = Fig(len(vals))
            x.out[("contact_completion_median", g, p)] = Fig(nearest_rank(vals, 50), "days",
                                                             len(vals))
            x.out[("contact_completion_p90", g, p)] = Fig(nearest_rank(vals, 90), "days",
                                                          len(vals))
    for dest in codes("destination"):
        judged = Counter(prog[0] for prog in f.progressions if prog[1] == dest)
        yes = Counter(prog[0] for prog in f.progressions if prog[1] == dest and prog[2])
        x.percent_row("progressions", f"within_{dest}", yes, judged)
    for dest in codes("destination"):
        per: dict[str, list[float]] = defaultdict(list)
        for prog in f.progressions:
            if prog[1] == dest:
                per[prog[0]].append(prog[3] if defs.basis == "working" else prog[4])
        columns = [per[m] for m in months]
        columns.append([v for c in columns for v in c])
        x.put("progressions", f"days_{dest}_average", [_mean(c) for c in columns])

    # 5. Audits ---------------------------------------------------------------------------
    audits = [a for a in f.audits if a[0] in inside]
    for team in codes("team"):
        if any(a[1] == team for a in audits):
            x.transposed_counts(f"audits_{team}", codes("grade"),
                                Counter((a[0], a[2]) for a in audits if a[1] == team))
    _quality(x, f)

    # % of complaints answered within the stage 1 timescale (a row of the timeliness table)
    judged = Counter(c[0] for c in f.complaints)
    x.percent_row("progressions", "within_complaint_stage1",
                  Counter(c[0] for c in f.complaints if c[1]), judged)

    # 6. Feedback (none unless generated with ``feedback`` or ``complaints``: counts 0)
    for who in codes("feedback_from"):
        x.count_row("feedback", who, Counter(fb[0] for fb in f.feedback if fb[1] == who))
    for kind in codes("feedback_kind"):
        x.count_row("feedback", kind, Counter(fb[0] for fb in f.feedback if fb[3] == kind))
    x.count_row("feedback", TOTAL, Counter(fb[0] for fb in f.feedback))
    x.count_row("feedback", "feedback_quotes_approved", Counter(f.quotes))
    x.count_row("feedback", "feedback_withdrawn", Counter(f.withdrawals))
    _repeats(x, f)  # 8. Repeat contacts and re-referrals
    _partners(x, f)
    return x.out


def _repeats(x: _Expect, f: Facts) -> None:
    """Section 8: for contacts and referrals naming a child, the repeats and their share,
    all sources and per source group; then those naming no child."""
    for table, facts, unkeyed, unkeyed_row in (
            ("repeat_contacts", f.child_contacts, f.unkeyed_contacts,
             "contacts_without_child_key"),
            ("re_referrals", f.child_referrals, f.unkeyed_referrals,
             "referrals_without_child_key")):
        yes = Counter(m for m, _, again in facts if again)
        x.count_row(table, table, yes)
        x.percent_row(table, f"{table}_share", yes, Counter(m for m, _, _ in facts))
        for group in codes("source_group"):
            mine = [(m, again) for m, g, again in facts if g == group]
            yes_g = Counter(m for m, again in mine if again)
            x.count_row(table, group, yes_g)
            x.percent_row(table, f"{group}_share", yes_g, Counter(m for m, _ in mine))
        x.count_row(table, unkeyed_row, Counter(m for m, _ in unkeyed))


def _partners(x: _Expect, f: Facts) -> None:
    """9. Partner agencies' responses: a row per agency, only when any request was made."""
    if not f.partner_requests:
        return
    for agency in codes("agency"):
        x.count_row("partner_requests", agency,
                    Counter(m for m, a in f.partner_requests if a == agency))
        hours = defaultdict(list)
        for m, a, h, _ in f.partner_responses:
            if a == agency:
                hours[m].append(h)
        columns = [hours.get(m, []) for m in x.months]
        columns.append([h for c in columns for h in c])
        for key, p in (("partner_response_median", 50), ("partner_response_p90", 90)):
            x.put(key, agency, [Fig(nearest_rank(c, p), "number", len(c)) for c in columns])
        x.count_row("partner_responses_late", agency,
                    Counter(m for m, a, _, late in f.partner_responses if a == agency and late))
        x.count_row("partner_requests_open", agency,
                    Counter(m for m, a in f.partner_open if a == agency))


def _quality(x: _Expect, f: Facts) -> None:
    """Learning reviews, dip samples, and the share of advisors in post audited."""
    columns = {"learning_reviews": Counter(f.reviews),
               "dip_samples": Counter(m for m, _ in f.dips),
               "cases_sampled": Counter()}
    for month, cases in f.dips:
        columns["cases_sampled"][month] += cases
    if any(columns[c][m] for c in columns for m in x.months):
        for m in [*x.months, TOTAL]:
            for c, counts in columns.items():
                n = counts[m] if m != TOTAL else sum(counts[k] for k in x.months)
                x.out[("qa_activity", m, c)] = Fig(n)
    done: dict[tuple[str, str], int] = Counter()
    posts: dict[tuple[str, str], int] = Counter()
    for key, joined, team, left in f.advisors:
        for m in x.months:
            if joined <= m and (left is None or left > m):  # in post at the month's end
                posts[(team, m)] += 1
                done[(team, m)] += (m, key) in set(f.audited)
    for team in codes("team"):
        den = {m: posts[(team, m)] for m in x.months}
        if any(den.values()):
            num = {m: done[(team, m)] for m in x.months}
            figs = [_pct(num[m], den[m]) for m in x.months]
            if x.defs.combination == "mean_of_months":
                monthly = [g.value for g in figs if g.value is not None]
                figs.append(Fig(sum(monthly) / len(monthly) if monthly else None,  # type: ignore
                                "percent", sum(den.values())))
            else:
                figs.append(_pct(sum(num.values()), sum(den.values())))
            for m, fig in zip([*x.months, TOTAL], figs, strict=True):
                x.out[("audit_coverage", m, team)] = fig


def expected_notes(expected: Mapping[Key, Fig], basis: str = "working") -> dict[str, list[str]]:
    """The sentences around the tables (section key -> notes), from the expected figures."""
    def v(*key: str) -> float:
        value = expected[key].value
        assert isinstance(value, (int, float)), key
        return float(value)

    return {
        "rfs": [f"The RFS Team processed a total of {v('rfs', 'enquiries', TOTAL):,.0f} "
                f"enquiries during this period; {v('rfs', 'email_share', TOTAL):.0f}% of them "
                "were received via email."],
        "map": [f"{v('map_summary', 'completed', TOTAL):,.0f} MAP enquiries completed. On "
                f"average C-SPA consulted {v('map_agencies', 'agencies_average', TOTAL):.1f} "
                "agencies to complete a MAP enquiry; "
                f"{v(f'map_days_{basis}', 'within_1_day', TOTAL):.0f}% were completed within "
                f"1 {basis} day (average {v('map_days', 'map_days_average', TOTAL):.1f} "
                f"{basis} days); {v('map_summary', 'progress_level_4', TOTAL):.0f}% progressed "
                "to Level 4."],
        "info_advice": [],
        "commentary": [f"The EHH took an average of "
                       f"{v('early_help_allocation', 'ehh_allocation_average', TOTAL):.1f} "
                       f"{basis} days to allocate and the MAP "
                       f"{v('map_days', 'map_days_average', TOTAL):.1f}."],
        "audits": [],
        "feedback": [],
        "repeats": [
            "A repeat contact is a contact about a child who had another contact in the 12 "
            "months before it; a re-referral, a referral (progression to children's social "
            "care) of a child referred in the 12 months before it (event time). Shares are of "
            "the contacts (referrals) naming a child; those naming none are counted apart, "
            "not judged.",
            "England's re-referral rate: 22.4% (139,080 re-referrals within 12 months of a "
            "previous referral, of 621,880 referrals; DfE, Children in need, reporting year "
            "2024); repeat contacts have no national figure (contacts are not in the children "
            "in need census)."],
        # section 9 has no sentences; it is there when any partner request was made
        **({"partners": []} if any(k[0] == "partner_requests" for k in expected) else {}),
    }


def published(expected: Mapping[Key, Fig]) -> dict[Key, Fig]:
    """The expectation with counts of 1-5, and figures over 1-5 values, shown as "*"."""
    out: dict[Key, Fig] = {}
    for key, fig in expected.items():
        hide = False
        if fig.value != "N/A":
            if fig.kind == "count":
                hide = isinstance(fig.value, (int, float)) and 1 <= fig.value <= 5
            else:
                hide = fig.base is not None and 1 <= fig.base <= 5
        out[key] = replace(fig, value="*") if hide else fig
    return out
