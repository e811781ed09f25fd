"""*Front door now*: calls waiting, today and this hour at the C-SPA, open work and timescales."""

from __future__ import annotations

from grafana.dashboards_src import common as c

WINDOW_TEXT = {
    "today": "since local midnight (Europe/London)",
    "this_hour": "in the current clock hour (Europe/London)",
}


def _calls(part: str, window: str, by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f'sum{grouping} (cspa_recent_calls_{part}{{window="{window}"}})'


def service_level(window: str, by: str = "") -> str:
    return c.ratio(_calls("answered_within_target", window, by),
                   _calls("service_level_denominator", window, by))


def abandoned_rate(window: str, by: str = "") -> str:
    return c.ratio(f'({_calls("abandoned", window, by)} - {_calls("abandoned_short", window, by)})',
                   f'({_calls("offered", window, by)} - {_calls("abandoned_short", window, by)})')


def window_stats(window: str, label: str) -> list[object]:
    """Eight figures of one live window (event time; each worker exports what it owns)."""
    when = WINDOW_TEXT[window]
    counts = [
        ("Contacts received", "contacts_received", "Contacts received (contact.received events)"),
        ("Contacts decided", "contacts_decided", "Contacts given an RFS outcome (contact.decided)"),
        ("Emails resolved", "emails_resolved", "Email enquiries resolved by the RFS team"),
        ("MAP enquiries completed", "map_enquiries_completed", "MAP enquiries completed"),
    ]
    panels: list[object] = [
        c.stat(f"{title} {label}", f"{text} {when}, by event time: "
               f"sum(cspa_recent_{metric}{{window=\"{window}\"}}) over all workers.",
               c.q(f'sum(cspa_recent_{metric}{{window="{window}"}})'), w=3)
        for title, metric, text in counts]
    panels += [
        c.stat(f"Calls offered {label}", f"Calls offered (answered + abandoned) {when}, all "
               "queues: sum(cspa_recent_calls_offered); 0 when there were none.",
               c.q(f'sum(cspa_recent_calls_offered{{window="{window}"}}) or vector(0)'), w=3),
        c.stat(f"Calls answered {label}", f"Calls answered {when}, all queues.",
               c.q(f'sum(cspa_recent_calls_answered{{window="{window}"}}) or vector(0)'), w=3),
        c.stat(f"Service level {label}", f"Calls answered within the service-level threshold "
               f"{when} / the service-level denominator (variant in force, see Definitions), "
               "ratio of sums over queues and workers. Target 80 %; blank when no calls.",
               c.q(service_level(window)), unit=c.PERCENT,
               steps=c.above_target(c.SERVICE_LEVEL_TARGET), w=3, decimals=1),
        c.stat(f"Abandoned rate {label}", f"(Abandoned - short abandons) / (offered - short "
               f"abandons) {when}; short abandons count only when CSPA_SHORT_ABANDON_SECONDS "
               "> 0. Red at 5 % and above.",
               c.q(abandoned_rate(window)), unit=c.PERCENT,
               steps=c.below_threshold(c.ABANDONED_THRESHOLD), w=3, decimals=1),
    ]
    return panels


def asa(window: str) -> str:
    """Average speed of answer: answer waits summed over queues and workers / answers."""
    return c.ratio(f'sum(cspa_recent_calls_answer_wait_seconds_sum{{window="{window}"}})',
                   f'sum(cspa_recent_calls_answer_wait_seconds_count{{window="{window}"}})')


def calls_now() -> list[object]:
    """The wallboard row: the queue as it stands at this scrape, and the speed of answer."""
    wait = c.CALL_WAIT_THRESHOLD
    return [
        c.row("Calls waiting now"),
        c.stat("Calls waiting", "Calls queued now and not yet answered or abandoned, all "
               "queues: sum(cspa_calls_waiting), evaluated on the worker's clock at every "
               "scrape. A call without an outcome after the waiting limit (default 1 hour) "
               "leaves this count for 'Outcome never arrived'.",
               c.q("sum(cspa_calls_waiting)"), w=4),
        c.stat("Oldest wait", "How long the longest-waiting caller has waited so far, any "
               f"queue: max(cspa_calls_oldest_wait_seconds); 0 when nobody waits. Red above "
               f"{wait:g} s, where CallWaitingTooLong fires in office hours.",
               c.q("max(cspa_calls_oldest_wait_seconds)"), unit=c.SECONDS,
               steps=[(None, "green"), (wait + 0.001, "red")], w=4, decimals=0),
        c.bar_gauge("Calls waiting by queue", "Calls waiting now per queue (taxonomy "
                    "call_queue): sum by (queue) (cspa_calls_waiting).",
                    c.q("sum by (queue) (cspa_calls_waiting)", "{{queue}}"), w=4, h=4),
        c.stat("Average speed of answer today", "Mean queue wait of the calls answered "
               f"today (offered since local midnight): {asa('today')}. Blank when none.",
               c.q(asa("today")), unit=c.SECONDS, w=4, decimals=0),
        c.stat("Average speed of answer this hour", "Mean queue wait of the calls answered "
               "that were offered in the current clock hour: the same ratio for "
               "window=\"this_hour\". Blank when none.",
               c.q(asa("this_hour")), unit=c.SECONDS, w=4, decimals=0),
        c.stat("Outcome never arrived", "Calls queued longer than the waiting limit "
               "(CSPA_CALLS_WAITING_LIMIT_SECONDS, default 1 hour) with no answer or abandon: "
               "sum(cspa_calls_waiting_expired). Not 0 means telephony events are being lost "
               "upstream; they are no longer counted as waiting.",
               c.q("sum(cspa_calls_waiting_expired)"), steps=c.ANY_IS_BAD, w=4),
    ]


def build() -> c.dash_b.Dashboard:
    today = [c.row("Today so far (since midnight, Europe/London)"), *window_stats("today", "today")]
    hour = [c.row("This hour"), *window_stats("this_hour", "this hour")]
    through_day = [
        c.timeseries("Contacts through the day", "Running totals for today, sampled at each "
                     "scrape: cspa_recent_contacts_received / _decided {window=\"today\"}. "
                     "They restart at local midnight.",
                     c.q('sum(cspa_recent_contacts_received{window="today"})', "received",
                         instant=False),
                     c.q('sum(cspa_recent_contacts_decided{window="today"})', "decided",
                         ref="B", instant=False)),
        c.timeseries("Service level by queue through the day", "Service level so far today per "
                     "queue (answered within threshold / denominator in force), sampled at each "
                     "scrape. The dashed line is the 80 % target.",
                     c.q(service_level("today", "queue"), "{{queue}}", instant=False),
                     unit=c.PERCENT, steps=c.above_target(c.SERVICE_LEVEL_TARGET),
                     threshold_line=True),
    ]
    states = c.colours(c.bar_gauge(
        "Open work by state", "Open items of every timescale rule, by state: on_time, due_today "
        "(deadline falls today), at_risk (within the rule's warning hours of its deadline), "
        "overdue (past it). sum by (state) (cspa_open_items).",
        c.q("sum by (state) (cspa_open_items)", "{{state}}"), w=8), c.STATE_COLOURS)
    open_work = [
        c.row("Open work and timescales"),
        states,
        c.per_rule_deadline(c.bar_gauge(
            "Oldest open item per rule", "Working days since the oldest open item of each rule "
            "started its clock (0: none open); max over workers of "
            "cspa_open_item_oldest_workdays. Red from the rule's timescale in "
            "config/rules.toml.",
            c.q("max by (rule) (cspa_open_item_oldest_workdays)", "{{rule}}"),
            unit=c.WORKDAYS, steps=[(None, "green")], w=8)),
        c.bar_gauge(
            "Breaches this month", "Items closed after their deadline or still open past it, "
            "whose deadline falls in the current calendar month (month of the dashboard's end "
            "time), by rule: sum by (rule) (cspa_breaches{month=...}).",
            c.q('sum by (rule) (cspa_breaches{month="${__to:date:YYYY-MM}"})', "{{rule}}"),
            steps=c.ANY_IS_BAD, w=8),
        c.table("Open items by rule and state", "Open items now, rule by state "
                "(sum by (rule, state) (cspa_open_items)). Blank: none in that state.",
                c.q("sum by (rule, state) (cspa_open_items)", fmt="table"),
                transforms=[c.matrix("rule", "state"),
                            c.organize({"rule\\state": "rule"}, exclude=("Time",),
                                       order=("rule\\state", "on_time", "due_today", "at_risk",
                                              "overdue"))],
                w=16, h=7),
        c.definitions_table(),
    ]
    return c.dashboard(
        "cspa-front-door", "C-SPA: front door now",
        "Live state of the Children's Single Point of Access: today so far, this hour, open "
        "work against its timescales. Figures use event time and working days of England and "
        "Wales; each worker exports only the partitions it owns, so every query sums.",
        items=[*calls_now(), *today, *hour, c.row("Through the day"), *through_day, *open_work],
        time_from="now-24h", refresh="1m")
