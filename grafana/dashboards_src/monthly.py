"""*Monthly performance*: every section of the committee report, for the months picked.

Sections 1 (RFS team), 4 (contacts and timeliness) and 5 (QA audits) are here; 2 (MAP)
and 3 (Level 3) in ``monthly_map``, 6 (feedback) in ``monthly_feedback``. Totals over
several months are ratios of sums; the legacy mean of monthly percentages (how the 2019
report made its "Total") is shown beside.
"""

from __future__ import annotations

from collections.abc import Callable

from grafana.dashboards_src import common as c
from grafana.dashboards_src import monthly_feedback as mf
from grafana.dashboards_src import monthly_map as mm

M = c.MONTHS
ALL = "all"  # the label value of grand-total rows and columns


def _calls(part: str, by: str = "month") -> str:
    return f"sum{f' by ({by})' if by else ''} (cspa_calls_{part}{{{M}}})"


def service_level(by: str = "month") -> str:
    return c.ratio(_calls("answered_within_target", by), _calls("service_level_denominator", by))


def abandoned_rate(by: str = "month") -> str:
    return c.ratio(f"({_calls('abandoned', by)} - {_calls('abandoned_short', by)})",
                   f"({_calls('offered', by)} - {_calls('abandoned_short', by)})")


def _emails(by: str = "month") -> str:
    return f"sum{f' by ({by})' if by else ''} (cspa_emails_resolved{{{M}}})"


SL_TEXT = ("Calls answered within the service-level threshold / service-level denominator "
           "(variant in force: see Definitions); target 80 %.")
AB_TEXT = ("(Abandoned - short abandons) / (offered - short abandons); short abandons count only "
           "when CSPA_SHORT_ABANDON_SECONDS > 0. Red at 5 %.")


def enquiries(by: str = "month") -> str:
    """Calls offered + emails resolved (the report's total enquiries)."""
    return f"({_calls('offered', by)} + {_emails(by)})"


def rfs_section() -> list[object]:
    sl_steps, ab_steps = c.above_target(c.SERVICE_LEVEL_TARGET), c.below_threshold(
        c.ABANDONED_THRESHOLD)
    totals = [
        c.stat("Calls offered", "Calls offered (answered + abandoned) in the selected months, "
               "all queues.", c.q(_calls("offered", ""))),
        c.stat("Service level", SL_TEXT + " Ratio of sums over the selected months.",
               c.q(service_level("")), unit=c.PERCENT, steps=sl_steps, decimals=2),
        c.stat("Service level (mean of months)", "Legacy: plain mean of the monthly service "
               "levels, as the 2019 report's Total column (62.42 % where the call-weighted "
               "value is 62.29 %). " + SL_TEXT,
               c.q(f"avg({service_level()})"), unit=c.PERCENT, steps=sl_steps, decimals=2),
        c.stat("Abandoned rate", AB_TEXT + " Ratio of sums over the selected months.",
               c.q(abandoned_rate("")), unit=c.PERCENT, steps=ab_steps, decimals=2),
        c.stat("Abandoned rate (mean of months)", "Legacy: plain mean of the monthly abandoned "
               "rates, as the 2019 report's Total. " + AB_TEXT,
               c.q(f"avg({abandoned_rate()})"), unit=c.PERCENT, steps=ab_steps, decimals=2),
        c.stat("Emails resolved", "Email enquiries resolved by the RFS team in the selected "
               "months.", c.q(_emails(""))),
        c.stat("Total enquiries", "Calls offered + emails resolved in the selected months.",
               c.q(enquiries(""))),
        c.stat("Email share", "Emails resolved / (calls offered + emails resolved) in the "
               "selected months.", c.q(c.ratio(_emails(""), enquiries(""))),
               unit=c.PERCENT, decimals=0),
    ]
    for panel in totals:
        panel.span(3)
    names = {"Value #A": "Calls", "Value #B": "Service level", "Value #C": "Abandoned rate",
             "Value #D": "Emails resolved", "Value #E": "Total enquiries",
             "Value #F": "Email share", "month": "Month"}
    by_month = c.table(
        "RFS team by month", "Per calendar month: calls offered, service level and abandoned "
        "rate (definitions in force), emails resolved, total enquiries and the email share.",
        c.q(_calls("offered"), fmt="table"), c.q(service_level(), ref="B", fmt="table"),
        c.q(abandoned_rate(), ref="C", fmt="table"), c.q(_emails(), ref="D", fmt="table"),
        c.q(enquiries("month"), ref="E", fmt="table"),
        c.q(c.ratio(_emails(), enquiries("month")), ref="F", fmt="table"),
        transforms=[c.merge(), c.organize(names, order=tuple(names)[-1:] + tuple(names)[:-1])],
        columns={"Service level": (c.PERCENT, sl_steps), "Abandoned rate": (c.PERCENT, ab_steps),
                 "Email share": (c.PERCENT, None)}, w=12, h=9)
    outcomes = c.label_cells(c.table(
        "Contacts decided by outcome", "Contacts decided per month by RFS outcome category "
        "(cspa_contacts_decided). A blank cell means no contact had that outcome; categories "
        "before their valid_from month (OT, LADO) are never recorded (N/A, not 0). Total: sum "
        "of the selected months.",
        c.q(f"sum by (month, outcome) (cspa_contacts_decided{{{M}}})", fmt="table"),
        transforms=[c.matrix("outcome", "month"), c.organize({"outcome\\month": "Outcome"})],
        footer_sum=True, w=12, h=18), "Outcome", "contact_outcome")
    return [c.row("1. Request for Support (RFS) team"), *totals, by_month, outcomes]


def _with_totals(expr: Callable[[str], str], rows: str, cols: str) -> str:
    """``expr(by)`` by rows and columns, plus grand-total rows, columns and corner (label all)."""
    def total(e: str, *labels: str) -> str:
        for label in labels:
            e = f'label_replace({e}, "{label}", "{ALL}", "", "")'
        return e
    parts = [expr(f"{rows}, {cols}"), total(expr(rows), cols), total(expr(cols), rows),
             total(expr(""), rows, cols)]
    return " or ".join(f"({p})" for p in parts)


def within_timescale(by: str) -> str:
    """Share of progressions made within their rule's timescale (0 when none were)."""
    every = f"sum by ({by}) (cspa_progressions{{{M}}})"
    within = f'sum by ({by}) (cspa_progressions{{{M},within_timescale="true"}})'
    return c.ratio(c.zero_filled(within, every), every)


def repeat_share(metric: str, label: str) -> str:
    """Per month, the share of ``metric`` with ``label="yes"`` (0 when none is)."""
    every = f"sum by (month) ({metric}{{{M}}})"
    again = f'sum by (month) ({metric}{{{M},{label}="yes"}})'
    return c.ratio(c.zero_filled(again, every), every)


def contacts_section() -> list[object]:
    rules = c.rule_timescales()
    pathways = {**c.taxonomy("pathway"), ALL: "Grand total"}
    grid = [c.matrix("source_group", "pathway"),
            c.organize({"source_group\\pathway": "Source", **pathways},
                       order=("source_group\\pathway", *pathways))]
    completion = "cspa_contact_completion"
    return [
        c.row("4. Contacts into the service, allocation and timeliness"),
        c.labelled(c.bar_chart(
            "Contacts received per month", "Contacts received per calendar month (event time), "
            "stacked by channel: sum by (month, channel) (cspa_contacts_received)."
            + c.EXPECTED_RANGE_NOTE,
            c.q(f"sum by (month, channel) (cspa_contacts_received{{{M}}})", fmt="table"),
            x_field="month", stacked=True, w=12,
            transforms=[c.matrix("month", "channel"), c.organize({"month\\channel": "month"})]),
            "channel"),
        c.expected_range_chart("Contacts received against their expected range",
                               "contacts_received", "contacts received"),
        c.bar_chart(
            "Repeat contacts and re-referrals per month", "Of the contacts naming a child "
            "(child_key), the share whose child had another contact in the 12 months before; "
            "of the referrals (progressions to children's social care) naming a child, the "
            "share whose child was referred in the 12 months before (the DfE's re-referral; "
            "England 2024: 22.4 %). Event time. Contacts naming no child are not judged: "
            "cspa_contacts_without_child_key counts them (report section 8).",
            c.q(repeat_share("cspa_child_contacts", "repeat"), fmt="table"),
            c.q(repeat_share("cspa_child_referrals", "re_referral"), ref="B", fmt="table"),
            x_field="month", unit=c.PERCENT, w=12,
            transforms=[c.merge(), c.organize({"Value #A": "Repeat contacts",
                                               "Value #B": "Re-referrals"})]),
        c.bar_chart(
            "Average days to allocate (EHH) and to complete (MAP), ${basis:text}",
            "Per month: EHH = progression to early help to allocation; MAP = enquiry opened to "
            "completed. Sum of durations / number of items. " + mm.BASIS_TEXT,
            c.q(mm.avg_days("cspa_early_help_allocation", "month"), fmt="table"),
            c.q(mm.avg_days("cspa_map_enquiry", "month"), ref="B", fmt="table"),
            x_field="month", unit=c.DAYS, w=12,
            transforms=[c.merge(), c.organize({"Value #A": "EHH allocation",
                                               "Value #B": "MAP enquiry"})]),
        c.label_cells(c.table(
            "Average days to complete contacts (${basis:text})", "Contacts completed in the "
            "selected months: average days from received to completed, by source group "
            "(CIN referral-source groups) and actual outcome, with grand totals. "
            + mm.BASIS_TEXT,
            c.q(_with_totals(lambda by: mm.avg_days(completion, by), "source_group", "pathway"),
                fmt="table"),
            unit=c.DAYS, transforms=grid, w=12, h=10), "Source", "source_group",
            {ALL: "Grand total"}).decimals(1),
        c.label_cells(c.table(
            "Contacts completed (counts behind the averages)", "Number of contacts completed in "
            "the selected months, by source group and actual outcome, with grand totals.",
            c.q(_with_totals(lambda by: f"sum{f' by ({by})' if by else ''} "
                             f"({completion}_workdays_count{{{M}}})", "source_group", "pathway"),
                fmt="table"),
            transforms=grid, w=12, h=10), "Source", "source_group", {ALL: "Grand total"}),
        c.labelled(c.bar_chart(
            "Progressions within timescale per month", "Share of progressions (to children's "
            "social care, to early help) made within the rule's timescale, per month: "
            "within_timescale=true / all progressions. Green from 80 %.",
            c.q(within_timescale("month, destination"), fmt="table"),
            x_field="month", unit=c.PERCENT, steps=c.above_target(c.TIMELINESS_TARGET), w=12,
            transforms=[c.matrix("month", "destination"),
                        c.organize({"month\\destination": "month"})]), "destination"),
        c.labelled(c.bar_gauge(
            "Progressions within timescale (selected months)", "Within timescale / all "
            "progressions per destination, pooled over the selected months (ratio of sums).",
            c.q(within_timescale("destination"), "{{destination}}"),
            unit=c.PERCENT, steps=c.above_target(c.TIMELINESS_TARGET), w=6), "destination"),
        c.stat("EHH average days to allocate (${basis:text})", "Progression to early help to "
               "allocation by the EHH, averaged over the selected months (ratio of sums); red "
               f"above the {rules.get('early_help_allocation', 2):g}-day local timescale. "
               + mm.BASIS_TEXT, c.q(mm.avg_days("cspa_early_help_allocation")), unit=c.DAYS,
               steps=c.below_threshold(rules.get("early_help_allocation", 2.0) + 0.05),
               w=6, h=8, decimals=1),
    ]


def audits_section() -> list[object]:
    grades = c.taxonomy("grade")
    return [c.row("5. Quality-assurance audits")] + [
        c.table(f"QA audits: {label}", f"Audits of the {label} team graded in each month, by "
                "grade; Total: sum of the selected months.",
                c.q(f'sum by (month, grade) (cspa_audits{{{M},team="{team}"}})', fmt="table"),
                transforms=[c.matrix("month", "grade"),
                            c.organize({"month\\grade": "Month", **grades},
                                       order=("month\\grade", *grades))],
                footer_sum=True, w=8, h=8)
        for team, label in c.taxonomy("team").items()] + quality_panels()


def quality_panels() -> list[object]:
    """The monthly-audit standard now, and learning reviews and dip samples per month."""
    return [
        c.labelled(c.bar_gauge(
            "Advisors without an audit this month", "Advisors in post in each team with no "
            "audit graded this calendar month (audit.graded with advisor_key); the standard "
            "is a monthly audit per advisor. AdvisorAuditsBehind fires in the month's last 5 "
            "working days while any remain.",
            c.q("max by (team) (cspa_advisors_unaudited)", "{{team}}"),
            steps=c.below_threshold(0.5), w=8, h=8), "team"),
        c.table("Learning reviews and dip samples", "Learning reviews held, dip samples "
                "taken and the cases they sampled, per month; Total: sum of the selected "
                "months.",
                c.q(f"sum by (month) (cspa_learning_reviews{{{M}}})", fmt="table", ref="A"),
                c.q(f"sum by (month) (cspa_dip_sample_cases_count{{{M}}})", fmt="table",
                    ref="B"),
                c.q(f"sum by (month) (cspa_dip_sample_cases_sum{{{M}}})", fmt="table",
                    ref="C"),
                transforms=[c.merge(), c.organize(
                    {"month": "Month", "Value #A": "Learning reviews",
                     "Value #B": "Dip samples", "Value #C": "Cases sampled"})],
                footer_sum=True, w=16, h=8),
    ]


def build() -> c.dash_b.Dashboard:
    return c.dashboard(
        "cspa-monthly", "C-SPA: monthly performance",
        "The select committee report, live: pick the months (calendar months of Europe/London, "
        "event time) and the day basis. Figures over several months are ratios of sums.",
        variables=[mm.month_variable(), mm.basis_variable()],
        items=[c.row("Definitions"), c.definitions_table(w=24, h=4), *rfs_section(),
               *mm.map_section(), *mm.level3_section(), *contacts_section(),
               *audits_section(), *mf.feedback_section()],
        time_from="now-1h", refresh="5m")
