"""*Monthly performance*, report sections 2 and 3: MAP enquiries and Level 3 outcomes.

Also the working/calendar ``basis`` switch shared by every duration panel. Durations are
exported in pairs: ``<name>_workdays`` (working days of England and Wales, a unit of its
own) and ``<name>_seconds`` (elapsed calendar time). ``$basis`` is 1 for working days and
0 for calendar days; each duration query has one branch per basis, gated by
``and on() (vector($basis) == 1)``, and calendar seconds are divided by 86400.
"""

from __future__ import annotations

from grafana.dashboards_src import common as c
from stream.state.facts import DAY, DAY_BUCKETS

M = c.MONTHS
BASIS_TEXT = ("Days are working days (weekends and England and Wales bank holidays excluded) "
              "or calendar days, per the basis picker.")


def basis_variable() -> c.dash_b.CustomVariable:
    options = [c.dm.VariableOption(text="working days", value="1", selected=True),
               c.dm.VariableOption(text="calendar days", value="0", selected=False)]
    return (c.dash_b.CustomVariable("basis").label("Days")
            .description("Working days (England and Wales) or calendar days for every duration")
            .values("working days : 1,calendar days : 0").options(options)
            .current(options[0]).multi(False).include_all(False))


def month_variable() -> c.dash_b.QueryVariable:
    every = c.dm.VariableOption(text="All", value="$__all", selected=True)
    return (c.dash_b.QueryVariable("month").label("Months")
            .description("Calendar months (Europe/London, event time) the figures cover")
            .query("label_values(cspa_contacts_decided, month)").datasource(c.DATASOURCE)
            .multi(True).include_all(True).all_value(".+").current(every)
            .refresh(c.dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(c.dm.VariableSort.ALPHABETICAL_ASC))


def by_basis(working: str, calendar: str) -> str:
    """The working-days expression or the calendar one, as ``$basis`` says."""
    return (f"(({working}) and on() (vector($basis) == 1)) or "
            f"(({calendar}) and on() (vector($basis) == 0))")


def _by(by: str) -> str:
    return f" by ({by})" if by else ""


def avg_days(prefix: str, by: str = "", match: str = M) -> str:
    """Average duration in days: sum of durations / number of items (ratio of sums)."""
    g = _by(by)
    return by_basis(c.ratio(f"sum{g} ({prefix}_workdays_sum{{{match}}})",
                            f"sum{g} ({prefix}_workdays_count{{{match}}})"),
                    c.ratio(f"sum{g} ({prefix}_seconds_sum{{{match}}}) / {DAY:g}",
                            f"sum{g} ({prefix}_seconds_count{{{match}}})"))


def share_within(prefix: str, days: float, match: str = M) -> str:
    """Share of items that took at most ``days`` (a histogram bucket bound)."""
    return by_basis(
        c.ratio(f'sum({prefix}_workdays_bucket{{{match},le="{float(days)!r}"}})',
                f"sum({prefix}_workdays_count{{{match}}})"),
        c.ratio(f'sum({prefix}_seconds_bucket{{{match},le="{float(days * DAY)!r}"}})',
                f"sum({prefix}_seconds_count{{{match}}})"))


def distribution(prefix: str, match: str = M) -> str:
    """Cumulative buckets by ``le`` in days (calendar buckets relabelled from seconds)."""
    calendar = f"sum by (le) ({prefix}_seconds_bucket{{{match}}})"
    for bound in DAY_BUCKETS:
        calendar = (f'label_replace({calendar}, "le", "{float(bound)!r}", "le", '
                    f'"{float(bound * DAY)!r}")')
    return by_basis(f"sum by (le) ({prefix}_workdays_bucket{{{match}}})", calendar)


def days_histogram(title: str, description: str, prefix: str, w: int = 12) -> object:
    """Bars per bucket: Grafana's heatmap format turns cumulative buckets into counts."""
    return c.bar_gauge(title, description + " Each bar counts items above the previous bound "
                       "and at most this one (days); +Inf: longer than the last bound. "
                       + BASIS_TEXT,
                       c.q(distribution(prefix), "≤ {{le}}", fmt="heatmap"), vertical=True, w=w)


def map_section() -> list[object]:
    completed = f"sum(cspa_map_enquiries_completed{{{M}}})"
    agencies = "cspa_map_enquiry_agencies_consulted"
    return [
        c.row("2. MAP enquiries (by month completed)"),
        c.stat("MAP enquiries completed", "MAP enquiries completed in the selected months "
               "(map_enquiry.completed, month of completion).", c.q(completed), w=5),
        c.stat("Average agencies consulted", "Agencies consulted per completed enquiry: sum of "
               "agencies / number of enquiries over the selected months.",
               c.q(c.ratio(f"sum({agencies}_sum{{{M}}})", f"sum({agencies}_count{{{M}}})")),
               w=5, decimals=1),
        c.stat("Average days to complete (${basis:text})", "Opened to completed, averaged "
               "over enquiries completed in the selected months (ratio of sums); red above the "
               "1-day local target. " + BASIS_TEXT,
               c.q(avg_days("cspa_map_enquiry")), unit=c.DAYS, w=5, decimals=1,
               steps=c.below_threshold(1.05)),  # red above the 1-day target as displayed
        c.stat("Completed within 1 day", "Share of enquiries completed within 1 day of opening "
               "(histogram bucket le=1 day / all completed) in the selected months. The local "
               "target is 1 working day; green from 80 %. " + BASIS_TEXT,
               c.q(share_within("cspa_map_enquiry", 1.0)), unit=c.PERCENT, w=5, decimals=0,
               steps=c.above_target(c.TIMELINESS_TARGET)),
        c.stat("Progress to Level 4", "Share of completed MAP enquiries with outcome Level 4 "
               "(statutory social care): level_4 / all outcomes, selected months.",
               c.q(c.ratio(c.zero_filled(
                   f'sum(cspa_map_enquiries_completed{{{M},outcome="level_4"}})', completed),
                   completed)), unit=c.PERCENT, w=4, decimals=0),
        c.bar_chart("MAP enquiries by month completed", "Enquiries completed per calendar "
                    "month: sum by (month) (cspa_map_enquiries_completed)."
                    + c.EXPECTED_RANGE_NOTE,
                    c.q(f"sum by (month) (cspa_map_enquiries_completed{{{M}}})", fmt="table"),
                    x_field="month", transforms=[c.organize({"Value": "completed"})], w=8),
        c.expected_range_chart("MAP enquiries completed against their expected range",
                               "map_completed", "MAP enquiries completed", w=8),
        c.bar_gauge("Number of agencies consulted", "Completed enquiries by how many agencies "
                    "were consulted (histogram cspa_map_enquiry_agencies_consulted, buckets "
                    "0..12; +Inf: more than 12).",
                    c.q(f'label_replace(sum by (le) ({agencies}_bucket{{{M}}}), "le", "$1", '
                        f'"le", "([0-9]+)\\\\.0")', "{{le}}", fmt="heatmap"),
                    vertical=True, w=8),
        c.labelled(c.pie("MAP enquiries by outcome", "Completed enquiries by outcome level "
                         "(Level 1 universal to Level 4 specialist), selected months.",
                         c.q(f"sum by (outcome) (cspa_map_enquiries_completed{{{M}}})",
                             "{{outcome}}"), w=8), "map_outcome"),
        c.labelled(c.bar_gauge("MAP enquiries by agency consulted", "Completed enquiries that "
                               "consulted each agency (an enquiry counts once per agency), "
                               "selected months.",
                               c.q(f"sum by (agency) (cspa_map_enquiries_by_agency{{{M}}})",
                                   "{{agency}}"), w=12, h=10), "agency"),
        days_histogram("Days taken to complete enquiry (${basis:text})", "Completed enquiries by "
                       "time from opened to completed, selected months.", "cspa_map_enquiry"),
    ]


def level3_section() -> list[object]:
    services = c.taxonomy("level3_service")
    return [
        c.row("3. Information and advice: Level 3 outcomes"),
        c.table(
            "Level 3 outcomes by month", "MAP enquiries completed at Level 3, by the Level 3 "
            "service they went to (TYS, FSP, CC), per month of completion; Total = sum of the "
            "selected months.",
            c.q(f"sum by (month, service) (cspa_level3_outcomes{{{M}}})", fmt="table"),
            transforms=[c.matrix("month", "service"),
                        c.organize({"month\\service": "Month", **services},
                                   order=("month\\service", *services))],
            footer_sum=True, w=12, h=8),
        c.labelled(c.bar_chart(
            "Level 3 outcomes per month", "The same figures stacked by service.",
            c.q(f"sum by (month, service) (cspa_level3_outcomes{{{M}}})", fmt="table"),
            x_field="month", stacked=True, w=12,
            transforms=[c.matrix("month", "service"), c.organize({"month\\service": "month"})]),
            "level3_service"),
    ]


__all__ = ["avg_days", "basis_variable", "by_basis", "distribution",
           "level3_section", "map_section", "month_variable", "share_within"]
