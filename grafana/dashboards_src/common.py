"""Shared builders for the C-SPA dashboards (grafana-foundation-sdk, Grafana 11.6 schema).

Every panel made here queries the provisioned Prometheus datasource (uid ``prometheus``),
carries a description saying how its figure is defined, and uses one of the units below.
Figure metrics are additive gauges: ratios are always ``sum(a) / sum(b)`` (ratio of sums),
and a zero denominator gives no value (blank), never 0 %.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from grafana_foundation_sdk.builders import barchart as barchart_b
from grafana_foundation_sdk.builders import bargauge as bargauge_b
from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import piechart as piechart_b
from grafana_foundation_sdk.builders import prometheus as prom_b
from grafana_foundation_sdk.builders import stat as stat_b
from grafana_foundation_sdk.builders import table as table_b
from grafana_foundation_sdk.builders import timeseries as timeseries_b
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

__all__ = ["ABANDONED_THRESHOLD", "ANY_IS_BAD", "BYTES", "CALL_WAIT_THRESHOLD", "COUNT",
           "DATASOURCE", "DAYS", "EXPECTED_RANGE_NOTE", "MILLISECONDS", "MONTHS", "NEUTRAL",
           "PERCENT", "SECONDS", "SERVICE_LEVEL_TARGET",
           "STATE_COLOURS", "TIMELINESS_TARGET", "WORKDAYS", "WORKING_HOURS", "above_target",
           "bar_chart",
           "bar_gauge", "below_threshold", "colours", "dash_b", "dashboard", "definitions_table",
           "dm", "expected_range_chart", "label_cells", "labelled", "matrix", "merge", "organize",
           "per_rule_deadline", "pie", "q", "ratio", "render", "row", "rule_timescales", "stat",
           "table", "taxonomy", "thresholds", "timeseries", "transform", "zero_filled"]

ROOT = Path(__file__).resolve().parents[2]
DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="prometheus")
TIMEZONE = "Europe/London"

# Units (Grafana unit ids).
PERCENT = "percentunit"  # ratios 0..1
COUNT = "short"
DAYS = "suffix: days"
WORKDAYS = "suffix: working days"
WORKING_HOURS = "suffix: working hours"
SECONDS = "s"
MILLISECONDS = "ms"
BYTES = "bytes"

# Targets the thresholds are coloured at (the same as grafana/prometheus/rules).
SERVICE_LEVEL_TARGET = 0.80  # 80 % of calls answered within the threshold in force
ABANDONED_THRESHOLD = 0.05  # abandoned rate above 5 % is red
CALL_WAIT_THRESHOLD = 120.0  # seconds: CallWaitingTooLong (rules/calls_waiting.yml)
# Share handled within timescale: no national target exists; 80 % is the local
# aspiration the dashboards colour at (report: 60-70 % CSC, 77-93 % early help).
TIMELINESS_TARGET = 0.80

#: the description's words on the report's expected range, on the monthly count charts
EXPECTED_RANGE_NOTE = (
    " Its expected range (mean +/- 2 SD of the previous 12 months) is charted beside it.")
MONTHS = 'month=~"$month"'  # the month-range picker (multi-value, regex formatted)

Step = tuple[float | None, str]  # (lower bound, colour); the first bound is None


def above_target(target: float) -> list[Step]:
    """Red below the target, green at or above it."""
    return [(None, "red"), (target, "green")]


def below_threshold(threshold: float) -> list[Step]:
    """Green below the threshold, red at or above it."""
    return [(None, "green"), (threshold, "red")]


NEUTRAL: list[Step] = [(None, "blue")]
ANY_IS_BAD: list[Step] = [(None, "green"), (1, "red")]


def thresholds(steps: Sequence[Step]) -> dash_b.ThresholdsConfig:
    return dash_b.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(
        [dm.Threshold(value=v, color=c) for v, c in steps])


def ratio(numerator: str, denominator: str) -> str:
    """``numerator / denominator``; a zero denominator gives no sample (blank, not 0 %)."""
    return f"{numerator} / ({denominator} > 0)"


def zero_filled(numerator: str, denominator: str) -> str:
    """The numerator, or 0 for every group the denominator has and the numerator lacks.

    A gauge with no matching series gives no sample; a share whose numerator is absent
    but whose denominator is present is 0 %, not blank.
    """
    return f"({numerator} or {denominator} * 0)"


def q(expr: str, legend: str = "", *, ref: str = "A", instant: bool = True,
      fmt: str = "time_series") -> prom_b.Dataquery:
    """A Prometheus query on the fixed datasource."""
    query = prom_b.Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE).format(
        pm.PromQueryFormat(fmt))
    query = query.instant() if instant else query.range()
    return query.legend_format(legend) if legend else query


P = TypeVar("P", stat_b.Panel, timeseries_b.Panel, bargauge_b.Panel, barchart_b.Panel,
            piechart_b.Panel, table_b.Panel)


def _common(panel: P, title: str, description: str, targets: Iterable[prom_b.Dataquery],
            unit: str, steps: Sequence[Step], w: int, h: int,
            transforms: Sequence[dm.DataTransformerConfig] = ()) -> P:
    panel = (panel.title(title).description(description).datasource(DATASOURCE)
             .targets(list(targets)).unit(unit).thresholds(thresholds(steps)).span(w).height(h))
    for transform in transforms:
        panel = panel.with_transformation(transform)
    return panel


def _reduce() -> common_b.ReduceDataOptions:
    return common_b.ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def stat(title: str, description: str, *targets: prom_b.Dataquery, unit: str = COUNT,
         steps: Sequence[Step] = NEUTRAL, w: int = 4, h: int = 4,
         decimals: float | None = None) -> stat_b.Panel:
    panel = _common(stat_b.Panel(), title, description, targets, unit, steps, w, h)
    panel = (panel.reduce_options(_reduce()).color_mode(cm.BigValueColorMode.VALUE)
             .graph_mode(cm.BigValueGraphMode.NONE).text_mode(cm.BigValueTextMode.AUTO))
    return panel.decimals(decimals) if decimals is not None else panel


def timeseries(title: str, description: str, *targets: prom_b.Dataquery,
               unit: str = COUNT, steps: Sequence[Step] = NEUTRAL, w: int = 12, h: int = 8,
               stacked: bool = False, threshold_line: bool = False) -> timeseries_b.Panel:
    panel = _common(timeseries_b.Panel(), title, description, targets, unit, steps, w, h)
    panel = panel.fill_opacity(10).legend(common_b.VizLegendOptions().show_legend(True)
                                          .display_mode(cm.LegendDisplayMode.LIST)
                                          .placement(cm.LegendPlacement.BOTTOM))
    if stacked:
        panel = panel.stacking(common_b.StackingConfig().mode(cm.StackingMode.NORMAL))
    if threshold_line:
        panel = panel.thresholds_style(common_b.GraphThresholdsStyleConfig().mode(
            cm.GraphThresholdsStyleMode.DASHED))
    return panel


def bar_gauge(title: str, description: str, *targets: prom_b.Dataquery, unit: str = COUNT,
              steps: Sequence[Step] = NEUTRAL, w: int = 12, h: int = 8,
              vertical: bool = False,
              transforms: Sequence[dm.DataTransformerConfig] = ()) -> bargauge_b.Panel:
    """Bars from an instant query: one bar per series (or per bucket with format heatmap)."""
    panel = _common(bargauge_b.Panel(), title, description, targets, unit, steps, w, h,
                    transforms)
    orientation = cm.VizOrientation.VERTICAL if vertical else cm.VizOrientation.HORIZONTAL
    return (panel.reduce_options(_reduce()).orientation(orientation).min(0)
            .display_mode(cm.BarGaugeDisplayMode.BASIC).show_unfilled(True))


def bar_chart(title: str, description: str, *targets: prom_b.Dataquery, x_field: str,
              unit: str = COUNT, steps: Sequence[Step] = NEUTRAL, w: int = 12, h: int = 8,
              stacked: bool = False,
              transforms: Sequence[dm.DataTransformerConfig] = ()) -> barchart_b.Panel:
    """A bar chart of table-formatted instant queries, one bar group per ``x_field`` value."""
    panel = _common(barchart_b.Panel(), title, description, targets, unit, steps, w, h,
                    transforms)
    stacking = cm.StackingMode.NORMAL if stacked else cm.StackingMode.NONE
    return (panel.x_field(x_field).stacking(stacking).show_value(cm.VisibilityMode.AUTO)
            .legend(common_b.VizLegendOptions().show_legend(True)
                    .display_mode(cm.LegendDisplayMode.LIST)
                    .placement(cm.LegendPlacement.BOTTOM)))


def expected_range_chart(title: str, figure: str, what: str, w: int = 12) -> barchart_b.Panel:
    """A monthly count between the low and high edges of its expected range, per month."""
    sel = f'figure="{figure}",{MONTHS}'
    return bar_chart(
        title, f"{what} per calendar month (event time) between the edges of its expected "
        "range: the mean +/- 2 population standard deviations of the 12 calendar months "
        "before it (low edge at least 0), as the committee report judges it "
        "(recording rules cspa:expected_range_low:count and cspa:expected_range_high:count "
        "over cspa:monthly_count:sum). A month has edges only once 12 months of its data "
        "are exported (CSPA_METRICS_MONTHS, default 13: the current month): a count "
        "outside them is worth a question.",
        q(f"cspa:expected_range_low:count{{{sel}}}", fmt="table"),
        q(f"cspa:monthly_count:sum{{{sel}}}", ref="B", fmt="table"),
        q(f"cspa:expected_range_high:count{{{sel}}}", ref="C", fmt="table"),
        x_field="month", w=w,
        transforms=[merge(), organize({"Value #A": "expected low", "Value #B": what,
                                       "Value #C": "expected high"},
                                      exclude=("Time", "figure"),
                                      order=("month", "Value #A", "Value #B", "Value #C"))])


def pie(title: str, description: str, *targets: prom_b.Dataquery, w: int = 12,
        h: int = 8) -> piechart_b.Panel:
    from grafana_foundation_sdk.models import piechart as pc

    panel = _common(piechart_b.Panel(), title, description, targets, COUNT, NEUTRAL, w, h)
    return (panel.reduce_options(_reduce()).pie_type(pc.PieChartType.PIE)
            .display_labels([pc.PieChartLabels.PERCENT])
            .legend(piechart_b.PieChartLegendOptions().show_legend(True)
                    .display_mode(cm.LegendDisplayMode.TABLE)
                    .placement(cm.LegendPlacement.RIGHT)
                    .values([pc.PieChartLegendValues.VALUE, pc.PieChartLegendValues.PERCENT])))


def table(title: str, description: str, *targets: prom_b.Dataquery, unit: str = COUNT,
          steps: Sequence[Step] = NEUTRAL, w: int = 24, h: int = 8, footer_sum: bool = False,
          transforms: Sequence[dm.DataTransformerConfig] = (),
          columns: dict[str, tuple[str, Sequence[Step] | None]] | None = None
          ) -> table_b.Panel:
    """A table of instant queries; ``columns`` sets a unit (and coloured thresholds) per column."""
    panel = _common(table_b.Panel(), title, description, targets, unit, steps, w, h, transforms)
    if footer_sum:
        panel = panel.footer(common_b.TableFooterOptions().show(True).reducer(["sum"])
                             .count_rows(False))
    for name, (col_unit, col_steps) in (columns or {}).items():
        props = [dm.DynamicConfigValue(id_val="unit", value=col_unit)]
        if col_steps is not None:
            props += [dm.DynamicConfigValue(id_val="thresholds", value=thresholds(col_steps)
                                            .build()),
                      dm.DynamicConfigValue(id_val="custom.cellOptions",
                                            value={"type": "color-text"})]
        panel = panel.override_by_name(name, props)
    return panel


def colours(panel: Any, by_name: dict[str, str]) -> Any:
    """Fixed colours per series (e.g. open-item states)."""
    for name, colour in by_name.items():
        panel = panel.override_by_name(name, [dm.DynamicConfigValue(
            id_val="color", value={"mode": "fixed", "fixedColor": colour})])
    return panel


STATE_COLOURS = {"on_time": "green", "due_today": "yellow", "at_risk": "orange",
                 "overdue": "red"}


def rule_timescales() -> dict[str, float]:
    """Working-day timescale of each rule in config/rules.toml (rules on other clocks left out)."""
    rules = tomllib.loads((ROOT / "config" / "rules.toml").read_text())["rule"]
    return {r["name"]: float(r["timescale"]) for r in rules if r["clock"] == "working_days"}


def per_rule_deadline(panel: Any) -> Any:
    """Colour each rule's series red from its own timescale (working days) upwards."""
    for rule, days in sorted(rule_timescales().items()):
        panel = panel.override_by_name(rule, [dm.DynamicConfigValue(
            id_val="thresholds", value=thresholds(below_threshold(days)).build())])
    return panel


def taxonomy(section: str) -> dict[str, str]:
    """Code -> label of one closed set in topics/taxonomy.toml (labels are what reports print)."""
    entries = tomllib.loads((ROOT / "topics" / "taxonomy.toml").read_text())[section]
    return {code: v["label"] if isinstance(v, dict) else str(v) for code, v in entries.items()}


def labelled(panel: Any, section: str) -> Any:
    """Show each series (named by its code) under its taxonomy label."""
    for code, label in taxonomy(section).items():
        panel = panel.override_by_name(code, [dm.DynamicConfigValue(id_val="displayName",
                                                                    value=label)])
    return panel


def label_cells(panel: Any, column: str, section: str,
                extra: dict[str, str] | None = None) -> Any:
    """Print a table column's codes as their taxonomy labels."""
    labels = {**taxonomy(section), **(extra or {})}
    options = {code: {"text": label, "index": i} for i, (code, label) in enumerate(labels.items())}
    return panel.override_by_name(column, [dm.DynamicConfigValue(
        id_val="mappings", value=[{"type": "value", "options": options}])])


def definitions_table(w: int = 8, h: int = 7) -> Any:
    return table("Definitions in force", "The call definitions the worker is using "
                 "(cspa_definition_info): service-level threshold in seconds, service-level "
                 "denominator variant, short-abandon threshold, and how periods combine.",
                 q("max by (service_level_seconds, service_level_variant, "
                   "short_abandon_seconds, period_combination) (cspa_definition_info)",
                   fmt="table"),
                 transforms=[organize(exclude=("Time", "Value"))], w=w, h=h)


def transform(kind: str, **options: Any) -> dm.DataTransformerConfig:
    return dm.DataTransformerConfig(id_val=kind, options=options)


def organize(rename: dict[str, str] | None = None, exclude: Sequence[str] = ("Time",),
             order: Sequence[str] = ()) -> dm.DataTransformerConfig:
    """Hide, rename and order table columns."""
    return transform("organize", excludeByName={name: True for name in exclude},
                     renameByName=rename or {},
                     indexByName={name: i for i, name in enumerate(order)})


def matrix(rows: str, columns: str, value: str = "Value") -> dm.DataTransformerConfig:
    """Long table (one row per label pair) to a cross table: ``rows`` down, ``columns`` across."""
    return transform("groupingToMatrix", rowField=rows, columnField=columns, valueField=value,
                     emptyValue="null")


def merge() -> dm.DataTransformerConfig:
    """Join several table queries on their common label columns."""
    return transform("merge")


def row(title: str) -> dash_b.Row:
    return dash_b.Row(title)


def dashboard(uid: str, title: str, description: str, *, items: Iterable[Any],
              variables: Iterable[Any] = (), time_from: str = "now-24h",
              refresh: str = "1m") -> dash_b.Dashboard:
    """A dashboard of ``items`` (rows and panels, laid out left to right, top to bottom)."""
    board = (dash_b.Dashboard(title).uid(uid).description(description).tags(["cspa"])
             .timezone(TIMEZONE).time(time_from, "now").refresh(refresh).editable()
             .tooltip(dm.DashboardCursorSync.CROSSHAIR)
             .link(dash_b.DashboardLink("C-SPA dashboards").type(dm.DashboardLinkType.DASHBOARDS)
                   .tags(["cspa"]).as_dropdown(True).include_vars(False).keep_time(False)))
    for variable in variables:
        board = board.with_variable(variable)
    for item in items:
        board = board.with_row(item) if isinstance(item, dash_b.Row) else board.with_panel(item)
    return board


def render(board: dash_b.Dashboard) -> str:
    """Dashboard JSON as committed: panel ids numbered in order, keys sorted, newline-ended."""
    model = board.build()
    for number, panel in enumerate(model.panels or [], start=1):
        panel.id_val = number
    return json.dumps(model, cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
