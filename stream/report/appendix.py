"""What a rendering carries besides the monthly tables: data as at, and running totals.

``annotate`` adds both to a report already rendered (``stream.report.render``) in any
format: text and markdown get lines at the end; CSV rows (data as at in the
``definitions`` section; running totals in a ``since`` section, month ``first..last``,
category ``percent``, ``within`` or ``judged``); JSON the keys
``data_as_at`` and ``since``; HTML a section before the end of the page. A published
report (``--publish``) hides a running share whose count within or judged is 1-5, and
those counts, as the tables hide small counts.
"""

from __future__ import annotations

import csv
import html
import io
from typing import Any

import orjson

from stream.report.publication import DataAsAt
from stream.report.running import Since, SinceFigure

HIDDEN = "*"


def _hidden(f: SinceFigure, publish: bool) -> bool:
    return publish and (1 <= f.within <= 5 or 1 <= f.judged <= 5)


def figure_data(f: SinceFigure, publish: bool) -> dict[str, Any]:
    """A running share for machines: percent to 4 dp (None: nothing judged), counts."""
    if _hidden(f, publish):
        return {"key": f.key, "label": f.label, "percent": HIDDEN, "within": HIDDEN,
                "judged": HIDDEN}
    share = f.percent
    return {"key": f.key, "label": f.label,
            "percent": None if share is None else round(share, 4),
            "within": f.within, "judged": f.judged}


def since_json(since: Since, publish: bool) -> dict[str, Any]:
    sentence = "" if _hidden(since.figures[0], publish) else since.sentence()
    return {"first": since.first, "last": since.last, "day_basis": "working",
            "figures": [figure_data(f, publish) for f in since.figures],
            "sentence": sentence or None}


def _text_value(f: SinceFigure, publish: bool) -> str:
    if _hidden(f, publish):
        return HIDDEN
    share = f.percent
    return "" if share is None else f"{share:.2f}% ({f.within} of {f.judged})"


def since_lines(since: Since, publish: bool) -> list[str]:
    """The running totals as text: a title, one line per share, the seed's sentence."""
    width = max(len(f.label) for f in since.figures)
    lines = [f"Running totals since {since.span} (working days, pooled over the months)"]
    lines += [f"  {f.label:<{width}}  {_text_value(f, publish)}" for f in since.figures]
    sentence = since_json(since, publish)["sentence"]
    return [*lines, *([sentence] if sentence else [])]


def _markdown(since: Since | None, as_at: DataAsAt, publish: bool) -> list[str]:
    out = ["", f"_{as_at.line()}_"]
    if since is not None:
        out += ["", f"## Running totals since {since.span}", "",
                "| Share (working days) | Since |", "|---|---|"]
        out += [f"| {f.label} | {_text_value(f, publish)} |" for f in since.figures]
        sentence = since_json(since, publish)["sentence"]
        out += ["", sentence] if sentence else []
    return out


def _csv_rows(since: Since | None, as_at: DataAsAt, publish: bool) -> list[list[Any]]:
    rows: list[list[Any]] = [["definitions", "data_as_at", "", "", as_at.stamp()]]
    rows += [["definitions", "offset", "", f"{t}[{p}]", o]
             for t, ps in sorted(as_at.offsets.items()) for p, o in sorted(ps.items())]
    if since is not None:
        span = f"{since.first}..{since.last}"
        for f in since.figures:
            data = figure_data(f, publish)
            rows += [["since", f.key, span, name, "" if data[name] is None else data[name]]
                     for name in ("percent", "within", "judged")]
    return rows


def _html(since: Since | None, as_at: DataAsAt, publish: bool) -> str:
    esc = html.escape
    out = []
    if since is not None:
        out += [f'<section id="since"><h2>Running totals since {esc(since.span)}</h2>',
                "<table><tr><th>Share (working days)</th><th>Since</th></tr>"]
        out += [f"<tr><th>{esc(f.label)}</th><td>{esc(_text_value(f, publish))}</td></tr>"
                for f in since.figures]
        out.append("</table>")
        sentence = since_json(since, publish)["sentence"]
        out += [f'<p class="sentence">{esc(sentence)}</p>'] if sentence else []
        out.append("</section>")
    out.append(f'<p class="asat">{esc(as_at.line())}</p>')
    return "\n".join(out) + "\n"


def annotate(text: str, fmt: str, as_at: DataAsAt, since: Since | None,
             publish: bool) -> str:
    """``text`` (a report rendered in ``fmt``) with its data as at and running totals."""
    if fmt == "json":
        doc = orjson.loads(text)
        doc["data_as_at"] = as_at.to_json()
        doc["since"] = None if since is None else since_json(since, publish)
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(_csv_rows(since, as_at, publish))
        return text + buffer.getvalue()
    if fmt == "html":
        end = text.rindex("</body>")
        return text[:end] + _html(since, as_at, publish) + text[end:]
    if fmt == "markdown":
        return text.rstrip("\n") + "\n" + "\n".join(_markdown(since, as_at, publish)) + "\n"
    extra = ["", as_at.line()]
    if since is not None:
        extra += ["", *since_lines(since, publish)]
    return text.rstrip("\n") + "\n" + "\n".join(extra) + "\n"
