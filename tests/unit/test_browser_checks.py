"""The browser checks of the HTML report can fail: each broken page is caught.

tests/integration/browser.py checks the real committee report in headless
Chromium (tests/integration/test_report_seed.py). A check that never fails proves
nothing, so here the same code reads small hand-made pages, one fault each, and
must name that fault; the sound page, and the fixed version of the page with cut
rows, must pass. No broker is needed; Chromium is (``make tools``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.browser import PRINT_WIDTH, SCREEN_WIDTH, inspect, problems

SECTIONS = ("one", "two", "three", "four", "five")
CHART = ('<figure id="chart-ok"><svg width="300" height="40"><rect x="0" y="5" width="120" '
         'height="20" fill="#1d5aa6"/><text x="130" y="20">12</text></svg></figure>')
TABLE = ("<table><caption>Small</caption><thead><tr><th></th><th>Aug</th></tr></thead>"
         "<tbody><tr><th>Calls</th><td>1763</td></tr></tbody></table>")
#: Rows of 30 lines each (about 540 px): the second row reaches past the first page.
TALL = "<br>".join(f"line {i}" for i in range(30))
TALL_ROWS = ("<table><caption>Tall</caption><thead><tr><th>Row</th><th>Text</th></tr>"
             "</thead><tbody>" + "".join(f"<tr><th>r{n}</th><td>{TALL}</td></tr>"
                                         for n in range(3)) + "</tbody></table>")


def page(body: str = CHART + TABLE, sections: tuple[str, ...] = SECTIONS,
         head: str = "") -> str:
    """A page shaped like the report: one <section id> with an <h2> per key."""
    parts = "".join(f'<section id="{key}"><h2>{key}</h2>{body if i == 0 else "<p>x</p>"}'
                    "</section>" for i, key in enumerate(sections))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>t</title>'
            f"<style>body{{margin:0}}</style>{head}</head><body>{parts}</body></html>")


def found(tmp_path: Path, html: str) -> list[str]:
    source = tmp_path / "page.html"
    source.write_text(html, encoding="utf-8")
    return problems(inspect(source, tmp_path / "out"), SECTIONS)


def test_a_sound_page_passes_with_a_screenshot_and_an_a4_pdf(tmp_path: Path) -> None:
    source = tmp_path / "page.html"
    source.write_text(page(), encoding="utf-8")
    ins = inspect(source, tmp_path / "out")
    assert problems(ins, SECTIONS) == []
    assert ins.screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(ins.screenshot.read_bytes()[16:20], "big") == SCREEN_WIDTH
    assert ins.pdf_path.read_bytes().startswith(b"%PDF")
    assert [(w // 1, h // 1) for w, h in ins.pdf.page_sizes] == [(595, 841)]  # A4 in pt
    assert ins.screen["charts"] == [{"id": "chart-ok", "width": 300, "height": 40, "marks": 1}]


def test_a_missing_section_is_caught(tmp_path: Path) -> None:
    assert found(tmp_path, page(sections=SECTIONS[:4])) == ["section 'five' is missing"]


def test_a_section_without_its_heading_is_caught(tmp_path: Path) -> None:
    html = page().replace("<h2>three</h2>", "")
    assert found(tmp_path, html) == ["section 'three' has no heading or no height"]


@pytest.mark.parametrize(("chart", "expected"), [
    (CHART.replace('width="300" height="40"', 'width="0" height="0"'),
     "chart chart-ok has no size (0 x 0 px)"),
    (CHART.replace('width="120"', 'width="0"'), "chart chart-ok has no marks (nothing drawn)"),
    ('<figure id="chart-text"><svg width="300" height="40"><text x="5" y="20">12</text>'
     "</svg></figure>", "chart chart-text has no marks (nothing drawn)"),
], ids=["no-size", "zero-bar", "text-only"])
def test_a_chart_without_size_or_marks_is_caught(tmp_path: Path, chart: str,
                                                 expected: str) -> None:
    assert found(tmp_path, page(chart + TABLE)) == [expected]


def test_a_table_wider_than_the_screen_is_caught(tmp_path: Path) -> None:
    wide = TABLE.replace("<table>", '<table style="width:1500px">')
    assert found(tmp_path, page(CHART + wide)) == [
        f"table 'Small' overflows the {SCREEN_WIDTH} px screen (1500 px > {SCREEN_WIDTH} px)",
        f"table 'Small' overflows the A4 page width (1500 px > {PRINT_WIDTH} px)"]


def test_a_table_that_fits_the_screen_but_not_a4_is_caught(tmp_path: Path) -> None:
    wide = TABLE.replace("<table>", '<table style="width:900px">')
    assert found(tmp_path, page(CHART + wide)) == [
        f"table 'Small' overflows the A4 page width (900 px > {PRINT_WIDTH} px)"]


def test_a_row_cut_by_a_page_break_is_caught_and_break_inside_avoid_fixes_it(
        tmp_path: Path) -> None:
    cut = found(tmp_path, page(CHART + TALL_ROWS))
    assert cut == ["table 'Tall' row 'r1' is cut across PDF pages (1, 2)"]
    whole = page(CHART + TALL_ROWS, head="<style>tr{break-inside:avoid}</style>")
    assert found(tmp_path, whole) == []


@pytest.mark.parametrize(("script", "expected"), [
    ('console.error("figures missing")', "console error: figures missing"),
    ("null.width", "console error: TypeError: Cannot read properties of null"),
], ids=["console.error", "exception"])
def test_a_console_error_is_caught(tmp_path: Path, script: str, expected: str) -> None:
    result = found(tmp_path, page(CHART + TABLE + f"<script>{script}</script>"))
    assert len(result) == 1 and result[0].startswith(expected), result


def test_a_resource_that_fails_to_load_is_a_console_error(tmp_path: Path) -> None:
    result = found(tmp_path, page(CHART + TABLE + '<img src="missing.png" alt="">'))
    assert len(result) == 1 and "ERR_FILE_NOT_FOUND" in result[0], result
