"""*Timeliness*: each rule's open items, warnings, oldest item, stale items and breaches.

Rules, their clocks, timescales and warning hours are configuration (config/rules.toml);
a breach records the rule version that judged it.
"""

from __future__ import annotations

from grafana.dashboards_src import common as c

R = 'rule=~"$rule"'
THIS_MONTH = 'month="${__to:date:YYYY-MM}"'
STATES = ("on_time: before its deadline day; due_today: the deadline falls today; at_risk: "
          "within the rule's warning hours of the deadline; overdue: past the deadline.")


def rule_variable() -> c.dash_b.QueryVariable:
    every = c.dm.VariableOption(text="All", value="$__all", selected=True)
    return (c.dash_b.QueryVariable("rule").label("Rule")
            .description("Timescale rules of config/rules.toml")
            .query("label_values(cspa_open_item_oldest_workdays, rule)")
            .datasource(c.DATASOURCE).multi(True).include_all(True).all_value(".+")
            .current(every).refresh(c.dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(c.dm.VariableSort.ALPHABETICAL_ASC))


def _open(state: str) -> str:
    return f'sum(cspa_open_items{{{R},state="{state}"}})'


def now_section() -> list[object]:
    return [
        c.row("Now"),
        c.stat("Overdue", "Open items past their deadline, selected rules: "
               "sum(cspa_open_items{state=\"overdue\"}).", c.q(_open("overdue")),
               steps=c.ANY_IS_BAD),
        c.stat("At risk", "Open items within their rule's warning hours (warn_working_hours) "
               "of the deadline.", c.q(_open("at_risk")), steps=[(None, "green"), (1, "orange")]),
        c.stat("Due today", "Open items whose deadline falls on today's working day.",
               c.q(_open("due_today")), steps=[(None, "green"), (1, "yellow")]),
        c.stat("On time", "Open items before their deadline day.", c.q(_open("on_time")),
               steps=[(None, "green")]),
        c.stat("Breaches this month", "Items closed after their deadline or open past it, whose "
               "deadline falls in the month of the dashboard's end time, selected rules: "
               "sum(cspa_breaches{month=...}).",
               c.q(f"sum(cspa_breaches{{{R},{THIS_MONTH}}})"), steps=c.ANY_IS_BAD),
        c.stat("States evaluated", "Seconds since the worker last evaluated the timeliness "
               "states (time() - cspa_timeliness_evaluated_timestamp_seconds, newest worker). "
               "States are evaluated at every scrape: a large value means no scrape.",
               c.q("time() - max(cspa_timeliness_evaluated_timestamp_seconds)"),
               unit=c.SECONDS, steps=[(None, "green"), (120, "orange"), (600, "red")]),
    ]


def per_rule_section() -> list[object]:
    repeated = c.colours(c.timeseries(
        "Open items: $rule", "Open items of this rule by state over time: sum by (state) "
        "(cspa_open_items{rule=...}). " + STATES,
        c.q("sum by (state) (cspa_open_items{rule=~\"$rule\"})", "{{state}}", instant=False),
        stacked=True, w=8), c.STATE_COLOURS)
    repeated.repeat("rule").repeat_direction("h").max_per_row(3)
    return [c.row("Open items by state, per rule"), repeated]


def warnings_section() -> list[object]:
    return [
        c.row("At risk, overdue and oldest"),
        c.timeseries("At risk by rule", "Open items within the warning hours of their deadline, "
                     "per rule, over time.",
                     c.q(f'sum by (rule) (cspa_open_items{{{R},state="at_risk"}})', "{{rule}}",
                         instant=False), w=8),
        c.timeseries("Overdue by rule", "Open items past their deadline, per rule, over time.",
                     c.q(f'sum by (rule) (cspa_open_items{{{R},state="overdue"}})', "{{rule}}",
                         instant=False), w=8),
        c.per_rule_deadline(c.timeseries(
            "Oldest open item by rule", "Working days since the oldest open item of each rule "
            "started its clock (0: none open), max over workers. Each rule is coloured red "
            "from its own timescale.",
            c.q(f"max by (rule) (cspa_open_item_oldest_workdays{{{R}}})", "{{rule}}",
                instant=False), unit=c.WORKDAYS, steps=[(None, "green")], w=8)),
        c.label_cells(c.table(
            "Open items by team and state", "Open items now, by the team that owns the rule and "
            "state. " + STATES,
            c.q(f"sum by (team, state) (cspa_open_items{{{R}}})", fmt="table"),
            transforms=[c.matrix("team", "state"),
                        c.organize({"team\\state": "Team"},
                                   order=("team\\state", "on_time", "due_today", "at_risk",
                                          "overdue"))], w=12, h=6), "Team", "team"),
        c.per_rule_deadline(c.bar_gauge(
            "Oldest open item now", "Working days since the oldest open item of each rule "
            "started its clock; red from the rule's timescale.",
            c.q(f"max by (rule) (cspa_open_item_oldest_workdays{{{R}}})", "{{rule}}"),
            unit=c.WORKDAYS, steps=[(None, "green")], w=12, h=6)),
    ]


def stale_section() -> list[object]:
    return [
        c.row("Stale open items (data quality)"),
        c.bar_gauge(
            "Stale open items by rule", "Open items whose deadline passed more than "
            "CSPA_OPEN_WORK_HORIZON working days ago (default 20): not in the counts above nor "
            "in the due list, since a real item that late is a data-quality question (a closing "
            "event never sent; after a backfill, one the data never held). List them with "
            "python -m stream due --stale: sum by (rule) (cspa_open_items_stale).",
            c.q(f"sum by (rule) (cspa_open_items_stale{{{R}}})", "{{rule}}"), w=12, h=6),
        c.bar_gauge(
            "Oldest stale item by rule", "Working days since the oldest stale open item of "
            "each rule started its clock (0: none), max over workers: "
            "max by (rule) (cspa_open_item_stale_oldest_workdays).",
            c.q(f"max by (rule) (cspa_open_item_stale_oldest_workdays{{{R}}})", "{{rule}}"),
            unit=c.WORKDAYS, w=12, h=6),
    ]


#: rule partner_response's timescale in office hours (config/rules.toml): the oldest
#: request is red from it
PARTNER_TIMESCALE_HOURS = 4.0


def partners_section() -> list[object]:
    """Which partner is slow: open requests of MAP enquiries to each agency (issue 29.2)."""
    return [
        c.row("Partner agencies' responses to MAP enquiries"),
        c.label_cells(c.table(
            "Partner requests by agency", "MAP enquiries' requests to each partner agency not "
            "yet answered, by state of rule partner_response (4 working hours, warned 1 hour "
            "ahead), most overdue first: sum by (agency, state) (cspa_partner_requests_open). "
            + STATES,
            c.q("sum by (agency, state) (cspa_partner_requests_open)", fmt="table"),
            transforms=[c.matrix("agency", "state"),
                        c.transform("sortBy", sort=[{"field": "overdue", "desc": True}]),
                        c.organize({"agency\\state": "Agency"},
                                   order=("agency\\state", "overdue", "at_risk", "due_today",
                                          "on_time"))], w=12, h=9), "Agency", "agency"),
        c.labelled(c.bar_gauge(
            "Oldest partner request by agency", "Office hours on working days since each "
            "agency's oldest unanswered request (0: none), max over workers, longest first; "
            "red from the 4 working hour timescale: "
            "sort_desc(max by (agency) (cspa_partner_request_oldest_working_hours)).",
            c.q("sort_desc(max by (agency) (cspa_partner_request_oldest_working_hours))",
                "{{agency}}"),
            unit=c.WORKING_HOURS, steps=c.below_threshold(PARTNER_TIMESCALE_HOURS), w=12, h=9),
            "agency"),
    ]


def breaches_section() -> list[object]:
    return [
        c.row("Breach history"),
        c.bar_chart("Breaches by month of deadline", "Items closed after their deadline or "
                    "still open past it, by the calendar month their deadline fell in, stacked "
                    "by rule: sum by (month, rule) (cspa_breaches).",
                    c.q(f"sum by (month, rule) (cspa_breaches{{{R}}})", fmt="table"),
                    x_field="month", stacked=True, w=14,
                    transforms=[c.matrix("month", "rule"), c.organize({"month\\rule": "month"})]),
        c.table("Breaches by rule version", "Breaches per rule, rule version (the version that "
                "judged them) and month of the deadline.",
                c.q(f"sum by (rule, rule_version, month) (cspa_breaches{{{R}}})", fmt="table"),
                transforms=[c.organize({"rule": "Rule", "rule_version": "Version",
                                        "month": "Month", "Value": "Breaches"},
                                       order=("rule", "rule_version", "month", "Value"))],
                w=10, h=8),
    ]


def build() -> c.dash_b.Dashboard:
    return c.dashboard(
        "cspa-timeliness", "C-SPA: timeliness",
        "Open work against every timescale rule (config/rules.toml), the warnings before a "
        "breach and the breach history. Clocks run in working days of England and Wales.",
        variables=[rule_variable()],
        items=[*now_section(), *per_rule_section(), *warnings_section(), *stale_section(),
               *partners_section(), *breaches_section()],
        time_from="now-7d", refresh="1m")
