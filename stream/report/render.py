"""Rendering a computed ``Report``: text, Markdown, CSV, JSON and one HTML page.

Rounding happens only here: percentages to 2 decimals, days and agency counts
to 1 decimal in the human formats; 4 decimals in CSV and JSON. With
``report.publish`` every count of 1 to 5 is shown as "*", and so is every
average, median, percentile or percentage computed from 1 to 5 values, and every
value hidden by secondary suppression (``stream.report.suppression``, stated in
every format); 0 stays 0 and a category that did not exist yet stays "N/A".

Every output states the months covered and the definitions in force.
"""

from __future__ import annotations

import csv
import html
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson

from stream.report import rates
from stream.report.expected_range import LEGEND, MARKERS, Band, Judgement
from stream.report.suppression import METHOD, primary
from stream.report.tables import TOTAL, DayBasis, Report, Row, Table, Value, month_label
from stream.settings import PeriodCombination, ServiceLevelVariant

TITLE = "Children's Single Point of Access Performance"
SUPPRESSED = "Suppressed: counts of 1-5"
FORMATS = ("text", "markdown", "csv", "json", "html")

_VARIANT_TEXT = {
    ServiceLevelVariant.OFFERED: "calls offered (answered + abandoned)",
    ServiceLevelVariant.ANSWERED: "calls answered",
    ServiceLevelVariant.OFFERED_LESS_SHORT: "calls offered less short abandons",
}


# ------------------------------------------------------------------------- values


def suppressed(v: Value, publish: bool) -> bool:
    """Whether a value is hidden in a published report: a count, or a base, of 1-5, or
    hidden by secondary suppression (``stream.report.suppression``)."""
    if not publish:
        return False
    return v.hidden or primary(v)


def cell_text(v: Value, publish: bool) -> str:
    """A value as people read it: "N/A", "*", "" (an average of nothing) or a number."""
    if v.not_applicable:
        return "N/A"
    if suppressed(v, publish):
        return "*"
    if v.value is None:
        return ""
    if v.kind == "count":
        return str(round(v.value))
    if v.kind == "percent":
        return f"{v.value:.2f}%"
    return f"{v.value:.1f}"


def cell_data(v: Value, publish: bool) -> float | int | str | None:
    """A value for machines: a number, "N/A", "*" or None (an average of nothing)."""
    if v.not_applicable:
        return "N/A"
    if suppressed(v, publish):
        return "*"
    if v.value is None:
        return None
    if v.kind == "count":
        return round(v.value)
    return round(v.value, 4)


def _base(v: Value) -> Value:
    return Value(float(v.base or 0), hidden=v.hidden)


def _with_base(v: Value, publish: bool) -> str:
    if v.base == 0 or v.not_applicable:
        return cell_text(v, publish)
    return f"{cell_text(v, publish)} ({cell_text(_base(v), publish)})"


def _text_cells(table: Table, row: Row, publish: bool) -> list[str]:
    show = _with_base if table.show_base else cell_text
    return [show(v, publish) for v in row.cells]


def judgements(report: Report, table: Table, row: Row) -> list[Judgement | None]:
    """Per column, the count against its expected range (``stream.report.expected_range``);
    None where nothing is judged, and where a published report hides the count."""
    by_month = report.ranges.get((table.key, row.key), {})
    if table.month_axis != "columns" or not by_month:
        return [None] * len(row.cells)
    return [None if suppressed(v, report.publish) else by_month.get(col)
            for col, v in zip(table.column_keys, row.cells, strict=True)]


def _marked_cells(report: Report, table: Table, row: Row) -> list[str]:
    """The row's cells as text, a count outside its expected range marked (``LEGEND``)."""
    return [text + (MARKERS[j.verdict] if j else "")
            for text, j in zip(_text_cells(table, row, report.publish),
                               judgements(report, table, row), strict=True)]


# ------------------------------------------------------------------- words around

def months_span(report: Report) -> str:
    """"Aug 2019 to Oct 2019" (or one month's label)."""
    first, last = report.months[0], report.months[-1]
    return month_label(first) if first == last else f"{month_label(first)} to {month_label(last)}"


def months_line(report: Report) -> str:
    span = months_span(report)
    return f"Months covered: {span} ({len(report.months)} month(s): {', '.join(report.months)})"


def has_data(table: Table) -> bool:
    """Whether a table holds anything counted: a count above 0, or a figure with a base.

    Zeros, N/A and averages of nothing are no data: such a table prints one line
    (``no_data_line``) instead of an empty grid.
    """
    return any((v.value or 0) > 0 if v.kind == "count" else bool(v.base)
               for row in table.rows for v in row.cells)


def no_data_line(report: Report) -> str:
    return f"No data for {months_span(report)}."


def definitions_lines(report: Report) -> list[str]:
    """The definitions in force, one sentence each (every output prints them)."""
    d = report.definitions
    short = (f"calls abandoned within {d.short_abandon_seconds:g} s are short abandons, "
             "left out of the abandoned rate" if d.short_abandon_seconds > 0
             else "none excluded (threshold 0 s)")
    combination = ("ratio of sums (counts pooled over the months)"
                   if d.period_combination is PeriodCombination.RATIO_OF_SUMS
                   else "mean of the monthly percentages (legacy, as the 2019 report)")
    days = ("working days (weekends and England and Wales bank holidays excluded)"
            if d.day_basis == "working" else "calendar days")
    return [
        f"Service level: calls answered within {d.service_level_seconds:g} s as a share of "
        f"{_VARIANT_TEXT[d.service_level_variant]} (variant {d.service_level_variant.value})",
        f"Short abandons: {short}",
        "Abandoned call rate: abandoned calls / calls offered, both less short abandons",
        f"Period totals of percentages: {combination}; averages always pool the values",
        f"Day basis: {days}",
        "Medians and 90th percentiles: nearest rank",
        "Retention: cases erased under the council's retention schedule stay in the "
        "figures of their months as aggregates only (python -m stream retention)",
    ]


def header_lines(report: Report) -> list[str]:
    lines = [months_line(report), *definitions_lines(report)]
    if report.publish:
        lines += [SUPPRESSED + " (and averages and percentages of 1-5 values)", METHOD]
    if report.rates is None:  # section 7 left out: say why, and how to have it
        lines.append(rates.UNSET_LINE)
    if any(j for months in report.ranges.values() for j in months.values()):
        lines.append(LEGEND)
    return lines


def _words(v: Value, publish: bool, digits: int) -> str:
    text = cell_text(v, publish)
    if text in ("*", "N/A", "") or v.value is None:
        return text or "-"
    if v.kind == "count":
        return f"{round(v.value):,}"
    return f"{v.value:.{digits}f}" + ("%" if v.kind == "percent" else "")


def section_notes(report: Report, key: str) -> list[str]:
    """The report's sentences around a section's tables, from the same figures."""
    p, total = report.publish, -1
    if key == "rfs":
        rfs = report.rfs
        return [f"The RFS Team processed a total of {_words(rfs.enquiries.cells[total], p, 0)} "
                f"enquiries during this period; {_words(rfs.email_share.cells[total], p, 0)} "
                "of them were received via email."]
    if key == "map":
        m, basis = report.map, report.definitions.day_basis
        days = m.days(basis)
        return [f"{_words(m.completed.cells[total], p, 0)} MAP enquiries completed. On average "
                f"C-SPA consulted {_words(m.agencies.average.cells[total], p, 1)} agencies to "
                f"complete a MAP enquiry; {_words(days.within_1_day.cells[total], p, 0)} were "
                f"completed within 1 {basis} day (average "
                f"{_words(days.stats.average.cells[total], p, 1)} {basis} days); "
                f"{_words(m.progress_level_4.cells[total], p, 0)} progressed to Level 4."]
    if key == "commentary":
        c = report.commentary
        return [f"The EHH took an average of "
                f"{_words(c.early_help_allocation.average.cells[total], p, 1)} "
                f"{report.definitions.day_basis} days to allocate and the MAP "
                f"{_words(c.map_days.average.cells[total], p, 1)}."]
    if key == "audits" and not report.audits.tables(report.axis):
        return ["No audits were graded, and no learning reviews or dip samples recorded, "
                "in these months."]
    if key == "rates" and report.rates is not None:
        return report.rates.notes()
    if key == "repeats" and report.repeats is not None:
        return report.repeats.notes()
    if key == "feedback":
        return [f"\u201c{q.text}\u201d ({q.attribution} {q.year})."
                for q in report.feedback.quotes]
    return []


# ---------------------------------------------------------------------- text, md

def _layout(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join((first, *rest)).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def render_text(report: Report) -> str:
    """Plain text: each table with months as columns and a Total, as the original."""
    out = [TITLE, "=" * len(TITLE), *header_lines(report), ""]
    for key, title, tables in report.sections():
        out += [title, "-" * len(title), *section_notes(report, key), ""]
        for table in tables:
            out.append(table.title)
            out += _layout((table.corner, *table.columns),
                           [(r.label, *_marked_cells(report, table, r))
                            for r in table.rows]) if has_data(table) else [no_data_line(report)]
            out.append("")
    return "\n".join(out)


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*")


def render_markdown(report: Report) -> str:
    out = [f"# {TITLE}", "", *(f"- {_md(line)}" for line in header_lines(report)), ""]
    for key, title, tables in report.sections():
        out += [f"## {_md(title)}", ""]
        out += [_md(note) + "\n" for note in section_notes(report, key)]
        for table in tables:
            if not has_data(table):
                out += [f"### {_md(table.title)}", "", _md(no_data_line(report)), ""]
                continue
            out += [f"### {_md(table.title)}", "",
                    "| " + " | ".join(_md(c) for c in (table.corner, *table.columns)) + " |",
                    "|---|" + "---:|" * len(table.columns)]
            out += ["| " + " | ".join(_md(c) for c in (
                r.label, *_marked_cells(report, table, r))) + " |" for r in table.rows]
            out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------------- csv, json

CSV_COLUMNS = ("section", "figure", "month", "category", "value")
#: the CSV ``figure`` of the row saying a table (its key in ``category``) has no data
NO_DATA = "no_data"


def _long_rows(report: Report) -> list[tuple[str, str, str, str, float | int | str | None]]:
    p = report.publish
    d = report.definitions
    out: list[tuple[str, str, str, str, float | int | str | None]] = [
        ("definitions", "months", "..".join((report.months[0], report.months[-1])), "",
         " ".join(report.months)),
        ("definitions", "service_level_seconds", "", "", d.service_level_seconds),
        ("definitions", "service_level_variant", "", "", d.service_level_variant.value),
        ("definitions", "short_abandon_seconds", "", "", d.short_abandon_seconds),
        ("definitions", "period_combination", "", "", d.period_combination.value),
        ("definitions", "day_basis", "", "", d.day_basis),
        ("definitions", "percentile_method", "", "", "nearest_rank"),
    ]
    out += [("definitions", name, "", "", value)
            for name, value in rates.definitions(report.rates)]
    if p:
        out.append(("definitions", "suppression", "", "", SUPPRESSED))
        out.append(("definitions", "secondary_suppression", "", "", METHOD))
    for section, _, tables in report.sections():
        for table in tables:
            for row in table.rows:
                for col, v in zip(table.column_keys, row.cells, strict=True):
                    if table.month_axis == "columns":
                        figure = row.figure or row.key
                        month, category = col, row.key if row.figure else ""
                    elif table.month_axis == "rows":
                        figure, month, category = table.key, row.key, col
                    else:
                        figure, month, category = table.key, TOTAL, f"{row.key}/{col}"
                    out.append((section, figure, month, category, cell_data(v, p)))
                    if table.show_base:
                        out.append((section, figure + "_count", month, category,
                                    cell_data(_base(v), p)))
                out += _range_rows(section, row, judgements(report, table, row), table)
            if not has_data(table):
                out.append((section, NO_DATA, "", table.key, no_data_line(report)))
    return out


def _range_rows(section: str, row: Row, found: Sequence[Judgement | None],
                table: Table) -> list[tuple[str, str, str, str, float | int | str | None]]:
    """CSV rows of a judged count: its verdict and its band's edges, per month judged."""
    out: list[tuple[str, str, str, str, float | int | str | None]] = []
    for month, j in zip(table.column_keys, found, strict=True):
        if j:
            out += [(section, "expected_range", month, row.key, j.verdict),
                    (section, "expected_range_low", month, row.key, round(j.band.low, 4)),
                    (section, "expected_range_high", month, row.key, round(j.band.high, 4))]
    return out


def _range_json(j: Judgement | None) -> dict[str, float | str] | None:
    if j is None:
        return None
    b = j.band
    return {"verdict": j.verdict, "low": round(b.low, 4), "high": round(b.high, 4),
            "mean": round(b.mean, 4), "sd": round(b.sd, 4)}


def render_csv(report: Report) -> str:
    """Long format for analysts: section, figure, month, category, value."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in _long_rows(report):
        writer.writerow(["" if x is None else x for x in row])
    return buffer.getvalue()


def render_json(report: Report) -> str:
    p, d = report.publish, report.definitions
    doc = {
        "title": TITLE,
        "months": list(report.months),
        "definitions": {
            "service_level_seconds": d.service_level_seconds,
            "service_level_variant": d.service_level_variant.value,
            "short_abandon_seconds": d.short_abandon_seconds,
            "period_combination": d.period_combination.value,
            "day_basis": d.day_basis,
            "percentile_method": "nearest_rank",
        },
        "statements": header_lines(report),
        "suppression": SUPPRESSED if p else None,
        "secondary_suppression": METHOD if p else None,
        "sections": [{
            "key": key, "title": title, "notes": section_notes(report, key),
            "tables": [{
                "key": t.key, "title": t.title, "month_axis": t.month_axis,
                "no_data": None if has_data(t) else no_data_line(report),
                "columns": [{"key": k, "label": lb}
                            for k, lb in zip(t.column_keys, t.columns, strict=True)],
                "rows": [{"key": r.key, "label": r.label, "figure": r.figure or None,
                          "values": [cell_data(v, p) for v in r.cells],
                          **({"counts": [cell_data(_base(v), p) for v in r.cells]}
                             if t.show_base else {}),
                          **({"expected_range": [_range_json(j) for j in found]}
                             if any(found := judgements(report, t, r)) else {})}
                         for r in t.rows],
            } for t in tables],
        } for key, title, tables in report.sections()],
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"


# ---------------------------------------------------------------------------- html


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    bars: tuple[tuple[str, Value], ...]
    #: per bar, its expected range (drawn shaded), if it has one
    bands: tuple[Band | None, ...] = ()


def charts(report: Report, basis: DayBasis) -> tuple[Chart, ...]:
    """The MAP charts of the original dashboard (totals over the months)."""
    m, total = report.map, -1
    days = m.days(basis)
    avg_agencies = cell_text(m.agencies.average.cells[total], report.publish)
    avg_days = cell_text(days.stats.average.cells[total], report.publish)

    def totals(rows: Sequence[Row]) -> tuple[tuple[str, Value], ...]:
        return tuple((r.label, r.cells[total]) for r in rows)

    ranges = report.ranges.get(("map_summary", "completed"), {})
    bands = tuple(j.band if (j := ranges.get(month)) and not suppressed(v, report.publish)
                  else None for month, v in zip(report.months, m.completed.cells, strict=False))
    return (
        Chart("map_by_month", "MAP enquiries by month completed",
              tuple(zip(report.axis.labels[:-1], m.completed.cells[:-1], strict=True)), bands),
        Chart("map_agencies", f"Number of agencies consulted (average {avg_agencies})",
              totals(m.agencies_distribution)),
        Chart("map_by_agency", "MAP enquiries by agency consulted", totals(m.by_agency)),
        Chart("map_by_outcome", "MAP enquiries by outcome", totals(m.by_outcome)),
        Chart(f"map_days_{basis}", f"{basis.capitalize()} days taken to complete enquiry "
              f"(average = {avg_days} {basis} days)", totals(days.distribution)),
    )


def svg_chart(chart: Chart, publish: bool) -> str:
    """A horizontal bar chart as inline SVG (no scripts, no external resources)."""
    label_w, bar_w, value_w, row_h, top = 200, 300, 70, 24, 8
    shown = [(label, v, cell_text(v, publish)) for label, v in chart.bars]
    drawable = [v.value for _, v, text in shown
                if v.value is not None and text not in ("*", "N/A")]
    bands = chart.bands or (None,) * len(shown)
    peak = max((*drawable, *(b.high for b in bands if b)), default=0.0) or 1.0
    height = top * 2 + row_h * max(1, len(shown))
    width = label_w + bar_w + value_w
    parts = [f'<svg width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(chart.title)}">']
    for i, (label, v, text) in enumerate(shown):
        y = top + i * row_h
        parts.append(f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end" '
                     f'class="lbl">{html.escape(label)}</text>')
        length = 0.0
        if v.value is not None and text not in ("*", "N/A"):
            length = bar_w * v.value / peak
        parts.append(f'<rect x="{label_w}" y="{y + 4}" width="{length:.1f}" height="{row_h - 8}"'
                     ' class="bar"/>')
        parts.append(f'<text x="{label_w + length + 6:.1f}" y="{y + 16}" '
                     f'class="val">{html.escape(text or "0")}</text>')
        if band := bands[i]:
            parts.append(_band_rect(band, label_w + bar_w * band.low / peak,
                                    bar_w * (band.high - band.low) / peak, y + 1, row_h - 2))
    parts.append("</svg>")
    return "".join(parts)


def _band_rect(band: Band, x: float, width: float, y: int, height: int) -> str:
    """A bar's expected range, shaded over it, its edges in a tooltip."""
    return (f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{height}" class="band">'
            f"<title>Expected range {band.low:.1f} to {band.high:.1f}</title></rect>")


@dataclass(frozen=True)
class LineChart:
    """A share (0-100 %) by month, with a target line."""

    key: str
    title: str
    points: tuple[tuple[str, Value], ...]  # (month label, percentage), in month order
    target: float  # percent


def timeliness_charts(report: Report) -> tuple[LineChart, ...]:
    """The seed's "CSPA Progress to ..." charts: % of progressions within timescale by
    month, one per destination, over the report's months, with the target line."""
    target = report.definitions.timeliness_target_percent
    labels = report.axis.labels[:-1]
    return tuple(
        LineChart(f"progress_{row.key.removeprefix('within_')}",
                  f"CSPA Progress to {row.label.split(': ', 1)[-1]}: % within timescale "
                  f"(target {target:g}%, dashed)",
                  tuple(zip(labels, row.cells[:-1], strict=True)), target)
        for row in report.commentary.progression_within)


def _line_points(chart: LineChart, publish: bool) -> list[tuple[int, float] | None]:
    """(month index, %) of each drawable month; None breaks the line (N/A, *, nothing)."""
    out: list[tuple[int, float] | None] = []
    for i, (_, v) in enumerate(chart.points):
        drawable = v.value is not None and cell_text(v, publish) not in ("*", "N/A")
        out.append((i, v.value) if drawable and v.value is not None else None)
    return out


def svg_line_chart(chart: LineChart, publish: bool) -> str:
    """Share by month as inline SVG: 0-100 % axis, the target dashed, a gap for a month
    with nothing to show (N/A, suppressed or no progressions). The target's label sits in
    the right margin, beside the line's end, where no month's share can overlap it."""
    left, right, top, bottom, width, height = 44, 80, 16, 36, 640, 240
    step = (width - left - right) / max(1, len(chart.points))
    every = max(1, math.ceil(60 / step))  # month labels ("Aug 2019") 60 px apart

    def x(i: int) -> float:
        return left + step * (i + 0.5)

    def y(percent: float) -> float:
        return top + (height - top - bottom) * (1 - percent / 100)

    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="{html.escape(chart.title)}">']
    for p in (0, 25, 50, 75, 100):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(p):.1f}" y2="{y(p):.1f}" '
                     f'class="grid"/><text x="{left - 6}" y="{y(p) + 4:.1f}" '
                     f'text-anchor="end" class="lbl">{p}%</text>')
    for i, (label, _) in enumerate(chart.points):
        if i % every == 0:
            parts.append(f'<text x="{x(i):.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                         f'class="lbl">{html.escape(label)}</text>')
    points = _line_points(chart, publish)
    segment: list[str] = []
    for point in [*points, None]:
        if point is None:
            if len(segment) > 1:
                parts.append(f'<polyline points="{" ".join(segment)}" class="line"/>')
            segment = []
            continue
        i, share = point
        segment.append(f"{x(i):.1f},{y(share):.1f}")
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(share):.1f}" r="3" class="pt"/>')
        if step >= 30 or i % every == 0:  # shares ("100%") 30 px apart
            parts.append(f'<text x="{x(i):.1f}" y="{y(share) - 7:.1f}" text-anchor="middle" '
                         f'class="val">{share:.0f}%</text>')
    if not any(points):
        parts.append(f'<text x="{width / 2:.0f}" y="{y(50):.1f}" text-anchor="middle" '
                     'class="lbl">No progressions judged in these months</text>')
    target = y(chart.target)
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{target:.1f}" y2="{target:.1f}" '
                 f'class="target"/><text x="{width - right + 8}" y="{target + 4:.1f}" '
                 f'class="tgt">Target {chart.target:g}%</text></svg>')
    return "".join(parts)


def _line_figure(chart: LineChart, publish: bool) -> str:
    return (f'<figure id="chart-{chart.key}"><figcaption>{html.escape(chart.title)}'
            f"</figcaption>{svg_line_chart(chart, publish)}</figure>")


def _html_block(table: Table, report: Report) -> str:
    """A table, or the one line saying it has no data for the months."""
    if has_data(table):
        return _html_table(table, report)
    return (f'<p class="no-data" id="no-data-{html.escape(table.key)}"><strong>'
            f"{html.escape(table.title)}</strong>: {html.escape(no_data_line(report))}</p>")


_CSS = """
body{font-family:Arial,Helvetica,sans-serif;margin:2em auto;max-width:72em;color:#1b1b1b}
h1{border-bottom:3px solid #1d5aa6;padding-bottom:.3em}h2{margin-top:2em;color:#1d5aa6}
table{border-collapse:collapse;margin:.5em 0 1.5em}caption{text-align:left;font-weight:bold;
padding:.3em 0}th,td{border:1px solid #c8c8c8;padding:.25em .6em}td{text-align:right}
th{background:#eef2f8;text-align:left}td.na{color:#777}.defs{background:#f6f6f6;padding:.8em
1.5em;border-left:4px solid #1d5aa6}.charts{display:flex;flex-wrap:wrap;gap:1.5em}
figure{margin:0}figcaption{font-weight:bold;margin-bottom:.3em}.bar{fill:#1d5aa6}
.lbl,.val{font-size:12px;fill:#1b1b1b}.calendar{display:none}
#basis-calendar:checked~.calendar{display:block}#basis-calendar:checked~.working{display:none}
#basis-working:checked~.working{display:block}#basis-working:checked~.calendar{display:none}
.suppressed{font-weight:bold;color:#a00}
.line{fill:none;stroke:#1d5aa6;stroke-width:2}.pt{fill:#1d5aa6}.grid{stroke:#dcdcdc}
.target{stroke:#b00;stroke-width:1.5;stroke-dasharray:6 4}.tgt{font-size:11px;fill:#b00}
.no-data{color:#444}.band{fill:#f0a030;fill-opacity:.3;stroke:#b06000;stroke-dasharray:3 2}
@page{size:A4;margin:15mm}
@media print{body{margin:0;max-width:none;font-size:9.5pt}h2{margin-top:1.2em}
h1,h2,caption,figcaption{break-after:avoid}tr,figure,.defs,p{break-inside:avoid}
thead{display:table-header-group}table{max-width:100%}th,td{padding:.15em .4em}
.toggle input,.toggle label,.toggle p{display:none}}
"""


def _html_table(table: Table, report: Report) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in (table.corner, *table.columns))
    body = []
    for row in table.rows:
        cells = "".join(f'<td{" class=na" if t == "N/A" else ""}>{esc(t)}</td>'
                        for t in _marked_cells(report, table, row))
        body.append(f"<tr><th>{esc(row.label)}</th>{cells}</tr>")
    return (f"<table><caption>{esc(table.title)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _figure(chart: Chart, publish: bool) -> str:
    return (f'<figure id="chart-{chart.key}"><figcaption>{html.escape(chart.title)}'
            f"</figcaption>{svg_chart(chart, publish)}</figure>")


def _days_toggle(report: Report) -> str:
    """Working / calendar days, switched by CSS radio buttons (no script)."""
    chosen = report.definitions.day_basis
    parts = ['<div class="toggle"><p>Days or working days:</p>']
    for basis in ("working", "calendar"):
        checked = " checked" if basis == chosen else ""
        parts.append(f'<input type="radio" name="basis" id="basis-{basis}"{checked}>'
                     f'<label for="basis-{basis}">{basis.capitalize()} days</label> ')
    for basis in ("working", "calendar"):
        days: DayBasis = "working" if basis == "working" else "calendar"
        chart = charts(report, days)[-1]
        parts.append(f'<div class="{basis}">{_figure(chart, report.publish)}'
                     f"{_html_block(report.map.days_table(report.axis, days), report)}"
                     "</div>")
    parts.append("</div>")
    return "".join(parts)


def render_html(report: Report) -> str:
    """One self-contained page: inline CSS and SVG charts, no scripts or external links."""
    esc, p = html.escape, report.publish
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{esc(TITLE)}</title><style>{_CSS}</style></head><body>",
           f"<h1>{esc(TITLE)}</h1>", '<div class="defs"><ul>']
    for line in header_lines(report):
        cls = ' class="suppressed"' if line.startswith(SUPPRESSED) else ""
        out.append(f"<li{cls}>{esc(line)}</li>")
    out.append("</ul></div>")
    days_key = f"map_days_{report.definitions.day_basis}"
    for key, title, tables in report.sections():
        out.append(f'<section id="{esc(key)}"><h2>{esc(title)}</h2>')
        out += [f"<p>{esc(note)}</p>" for note in section_notes(report, key)]
        if key == "map":
            out.append('<div class="charts">')
            out += [_figure(c, p) for c in charts(report, report.definitions.day_basis)[:-1]]
            out.append("</div>")
            out.append(_days_toggle(report))
        if key == "commentary":
            out.append('<div class="charts">')
            out += [_line_figure(c, p) for c in timeliness_charts(report)]
            out.append("</div>")
        out += [_html_block(t, report) for t in tables if t.key != days_key]
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


RENDERERS: dict[str, Callable[[Report], str]] = {
    "text": render_text, "markdown": render_markdown, "csv": render_csv,
    "json": render_json, "html": render_html,
}


def render(report: Report, fmt: str) -> str:
    """Render in one of ``FORMATS``."""
    return RENDERERS[fmt](report)
