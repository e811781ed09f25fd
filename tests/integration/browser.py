"""Open an HTML page in headless Chromium and list what a reader would find wrong.

Analysts forward the HTML committee report to committee members, who read it on
screen or print it. :func:`inspect` loads the page once through the DevTools
protocol (tests/integration/devtools.py) and keeps what the checks need: console
errors, the page measured on a 1280 px screen and again as printed on A4, a
full-page screenshot and the A4 PDF. :func:`problems` turns that into sentences;
an empty list means the page passed. The same code checks the real report
(tests/integration/test_report_seed.py) and deliberately broken pages
(tests/unit/test_browser_checks.py), which proves each check can fail.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.integration.devtools import Session, page_session
from tests.integration.pdfpages import PdfLayout, read_layout

SCREEN_WIDTH = 1280
A4_MM = (210.0, 297.0)
MARGIN_MM = 15.0  # as the report's @page rule; printToPDF is given the same margins
PX_PER_MM = 96 / 25.4
PRINT_WIDTH = round((A4_MM[0] - 2 * MARGIN_MM) * PX_PER_MM)  # CSS px across a printed page

#: Measures the page as laid out now; every radio toggle is tried so that charts
#: shown only under another choice (working / calendar days) are measured too.
MEASURE = """(() => {
  const MARKS = 'rect,path,circle,ellipse,line,polyline,polygon';
  const shown = e => e.getClientRects().length > 0;
  const box = e => e.getBoundingClientRect();
  const drawn = m => { const b = box(m); const flat = /line/.test(m.tagName);
    return flat ? b.width + b.height > 0 : b.width > 0 && b.height > 0; };
  const charts = () => [...document.querySelectorAll('svg')].filter(shown).map((s, i) => ({
    id: (s.closest('figure') || s).id || `svg ${i + 1}`, width: box(s).width,
    height: box(s).height, marks: [...s.querySelectorAll(MARKS)].filter(drawn).length}));
  const found = charts();
  const radios = [...document.querySelectorAll('input[type=radio]')];
  const chosen = radios.filter(r => r.checked);
  for (const r of radios.filter(r => !r.checked)) { r.checked = true; found.push(...charts()); }
  chosen.forEach(r => { r.checked = true; });
  const page = document.documentElement;
  return {
    width: page.clientWidth, height: page.scrollHeight, scrollWidth: page.scrollWidth,
    sections: [...document.querySelectorAll('section[id]')].filter(shown).map(s => ({
      id: s.id, heading: (s.querySelector('h2') || {}).textContent || '',
      height: box(s).height})),
    tables: [...document.querySelectorAll('table')].filter(shown).map((t, i) => ({
      name: (t.caption && t.caption.textContent) || `table ${i + 1}`,
      right: box(t).right, width: box(t).width,
      rows: [...t.rows].map(r => r.cells.length ? r.cells[0].textContent : '')})),
    charts: found};
})()"""


@dataclass(frozen=True)
class Inspection:
    """One page as Chromium showed it: on screen, in print, and its console."""

    screen: dict[str, Any]
    printed: dict[str, Any]
    console_errors: tuple[str, ...]
    pdf: PdfLayout
    screenshot: Path
    pdf_path: Path


def _console_errors(events: Sequence[dict[str, Any]]) -> tuple[str, ...]:
    """Errors the page logged, threw, or the browser logged for it (failed loads)."""
    out = []
    for e in events:
        p = e.get("params", {})
        if e["method"] == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
            out.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p["args"]))
        elif e["method"] == "Runtime.exceptionThrown":
            details = p["exceptionDetails"]
            out.append(details.get("exception", {}).get("description", details["text"]))
        elif e["method"] == "Log.entryAdded" and p["entry"]["level"] == "error":
            out.append(p["entry"]["text"])
    return tuple(out)


async def _measure(s: Session, media: str, width: int) -> dict[str, Any]:
    """The page laid out for ``media`` at ``width`` CSS px: print CSS applies only here."""
    await s.send("Emulation.setEmulatedMedia", media=media)
    await s.send("Emulation.setDeviceMetricsOverride", width=width, height=900,
                 deviceScaleFactor=1, mobile=False)
    found = await s.send("Runtime.evaluate", expression=MEASURE, returnByValue=True)
    value: dict[str, Any] = found["result"]["value"]
    return value


async def _inspect(page: Path, out: Path) -> Inspection:
    """One load for everything, so the console holds every error the page caused."""
    async with page_session() as s:
        for domain in ("Page", "Runtime", "Log"):
            await s.send(f"{domain}.enable")
        await s.load(page.resolve().as_uri())
        screen = await _measure(s, "screen", SCREEN_WIDTH)
        shot = await s.send("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                            clip={"x": 0, "y": 0, "width": SCREEN_WIDTH,
                                  "height": screen["height"], "scale": 1})
        printed = await _measure(s, "print", PRINT_WIDTH)
        await s.send("Emulation.clearDeviceMetricsOverride")
        await s.send("Emulation.setEmulatedMedia", media="")
        margin = MARGIN_MM / 25.4
        pdf = await s.send("Page.printToPDF", paperWidth=A4_MM[0] / 25.4,
                           paperHeight=A4_MM[1] / 25.4, marginTop=margin, marginBottom=margin,
                           marginLeft=margin, marginRight=margin, printBackground=True,
                           preferCSSPageSize=True, generateTaggedPDF=True)
        errors = _console_errors(s.events)
    (out / "screen.png").write_bytes(base64.b64decode(shot["data"]))
    (out / "print.pdf").write_bytes(base64.b64decode(pdf["data"]))
    layout = read_layout((out / "print.pdf").read_bytes())
    return Inspection(screen, printed, errors, layout, out / "screen.png", out / "print.pdf")


def inspect(page: Path, out: Path) -> Inspection:
    """Load ``page`` in a fresh headless Chromium; screenshot and PDF go to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_inspect(page, out))


def _section_problems(ins: Inspection, sections: Sequence[str]) -> list[str]:
    """A section must be there, titled and not collapsed to nothing."""
    found = {s["id"]: s for s in ins.screen["sections"]}
    out = []
    for key in sections:
        section = found.get(key)
        if section is None:
            out.append(f"section {key!r} is missing")
        elif not section["heading"].strip() or section["height"] <= 0:
            out.append(f"section {key!r} has no heading or no height")
    return out


def _chart_problems(ins: Inspection) -> list[str]:
    """Every chart shown under some toggle must have a size and draw at least one mark."""
    out = []
    for chart in ins.screen["charts"]:
        if chart["width"] <= 0 or chart["height"] <= 0:
            out.append(f"chart {chart['id']} has no size "
                       f"({chart['width']:g} x {chart['height']:g} px)")
        if chart["marks"] == 0:
            out.append(f"chart {chart['id']} has no marks (nothing drawn)")
    return sorted(set(out))


def _width_problems(measured: dict[str, Any], where: str) -> list[str]:
    """A table past the right edge is cut off on paper and scrolls sideways on screen."""
    out = [f"table {t['name']!r} overflows the {where} ({t['right']:.0f} px > "
           f"{measured['width']} px)" for t in measured["tables"]
           if t["right"] > measured["width"] + 0.5]
    if measured["scrollWidth"] > measured["width"] and not out:
        out.append(f"the page scrolls sideways on the {where} ({measured['scrollWidth']} px)")
    return out


def _row_names(ins: Inspection) -> list[str]:
    """Names of the printed rows in document order, as the PDF tags them."""
    return [f"{t['name']!r} row {label.strip()!r}"
            for t in ins.printed["tables"] for label in t["rows"]]


def _pdf_problems(ins: Inspection) -> list[str]:
    """Pages must be A4 and no body row may straddle two of them."""
    pdf, out = ins.pdf, []
    wanted = tuple(mm * 72 / 25.4 for mm in A4_MM)
    for n, (w, h) in enumerate(pdf.page_sizes, 1):
        if abs(w - wanted[0]) > 2 or abs(h - wanted[1]) > 2:
            out.append(f"PDF page {n} is {w:.0f} x {h:.0f} pt, not A4")
    if ins.printed["tables"] and not pdf.rows:
        out.append("the PDF has no tagged table rows, so cut rows cannot be checked")
    names = _row_names(ins)
    for row in pdf.cut_rows():
        name = names[row.index - 1] if len(names) == len(pdf.rows) else f"row {row.index}"
        out.append(f"table {name} is cut across PDF pages {row.pages}")
    return out


def screen_problems(ins: Inspection, sections: Sequence[str]) -> list[str]:
    """What is wrong with the page on a 1280 px screen (print left out): what a
    screenshot of it would show (tools/report-screenshot.py)."""
    return [*_section_problems(ins, sections), *_chart_problems(ins),
            *_width_problems(ins.screen, f"{SCREEN_WIDTH} px screen"),
            *(f"console error: {e}" for e in ins.console_errors)]


def problems(ins: Inspection, sections: Sequence[str]) -> list[str]:
    """Everything wrong with the page; ``sections`` are the ids that must be there."""
    return [*screen_problems(ins, sections),
            *_width_problems(ins.printed, "A4 page width"), *_pdf_problems(ins)]
