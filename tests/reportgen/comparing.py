"""Comparing a JSON report with an expectation, and reading tables of the text report."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tests.reportgen.expected import Fig, Key

#: Largest difference allowed between a printed 4-decimal value and the expectation:
#: 0.5e-4 for the JSON rounding, 0.5e-4 for the 1e-4 value resolution, and float noise.
TOLERANCE = 1.2e-4
DISPLAY_DIGITS = {"percent": 2, "days": 1, "number": 1}


def flatten(doc: Mapping[str, Any]) -> dict[Key, Any]:
    """A JSON report as (table, row, column[, "count"]) -> value."""
    out: dict[Key, Any] = {}
    for section in doc["sections"]:
        for table in section["tables"]:
            columns = [c["key"] for c in table["columns"]]
            for row in table["rows"]:
                for i, col in enumerate(columns):
                    keys: list[tuple[Key, Any]] = [((table["key"], row["key"], col),
                                                    row["values"][i])]
                    if "counts" in row:
                        keys.append(((table["key"], row["key"], col, "count"), row["counts"][i]))
                    for key, value in keys:
                        if key in out:
                            raise AssertionError(f"figure {key} appears twice in the report")
                        out[key] = value
    return out


def _same_number(got: float, want: float, digits: int) -> bool:
    if abs(got - want) > TOLERANCE:
        return False
    if f"{got:.{digits}f}" == f"{want:.{digits}f}":
        return True
    # Printed differently only if the exact value sits on a rounding boundary.
    scaled = want * 10 ** digits
    return abs(scaled - math.floor(scaled) - 0.5) * 10 ** -digits <= TOLERANCE


def mismatch(got: Any, want: Fig) -> bool:
    """Whether a printed JSON value differs from the expected figure."""
    if want.value in ("N/A", "*") or want.value is None:
        return got != want.value
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        return True
    if want.kind == "count":
        return not (isinstance(got, int) and got == want.value)
    assert isinstance(want.value, float | int)
    return not _same_number(float(got), float(want.value), DISPLAY_DIGITS[want.kind])


def compare(doc: Mapping[str, Any], expected: Mapping[Key, Fig]) -> list[str]:
    """Every difference between a JSON report and an expectation (empty: all equal)."""
    got = flatten(doc)
    problems = [f"{key}: missing from the report (expected {expected[key].value!r})"
                for key in expected if key not in got]
    problems += [f"{key}: not expected (report has {got[key]!r})"
                 for key in got if key not in expected]
    problems += [f"{key}: report {got[key]!r}, expected {expected[key].value!r} "
                 f"({expected[key].kind}, base {expected[key].base})"
                 for key in expected if key in got and mismatch(got[key], expected[key])]
    return sorted(problems)


# --------------------------------------------------------------- text tables

def text_table(text: str, title: str) -> dict[str, list[str]]:
    """A table of ``render_text`` output: row label -> cell texts, and "" -> the column
    headings (column spans come from the dashed rule under the header)."""
    lines = text.splitlines()
    start = lines.index(title)
    header, rule = lines[start + 1], lines[start + 2]
    spans: list[tuple[int, int]] = []
    pos = 0
    for part in rule.split("  "):
        spans.append((pos, pos + len(part)))
        pos += len(part) + 2
    rows: dict[str, list[str]] = {"": [header[a:b].strip() for a, b in spans[1:]]}
    for line in lines[start + 3:]:
        if not line.strip():
            break
        cells = [line[a:b].strip() for a, b in spans]
        rows[cells[0]] = cells[1:]
    return rows
