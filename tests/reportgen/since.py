"""The running totals of ``report --since``, computed from the facts by hand.

Each share is (within, judged) pooled over the months ``first``..``last`` (inclusive) of
the month each fact lands in: MAP enquiries by working days to complete against each
threshold, progressions by their own within-timescale flag, early help allocations and
contact decisions by working days against their rule's timescale (config/rules.toml read
here directly). Within is ``<=``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tests.reportgen.facts import Facts
from tests.reportgen.workdays import RULES, codes

Share = tuple[int, int]  # (within, judged)


def _share(values: Iterable[float], limit: float) -> Share:
    listed = list(values)
    return sum(v <= limit for v in listed), len(listed)


def expected_since(f: Facts, first: str, last: str,
                   map_days: Sequence[float] = (1.0, 5.0)) -> dict[str, Share]:
    """key -> (within, judged) of every running share."""
    def inside(month: str) -> bool:
        return first <= month <= last

    out: dict[str, Share] = {}
    durations = [d[4] for d in f.map_done if inside(d[0]) and d[4] is not None]
    for days in map_days:
        out["since_map_within_" + f"{days:g}".replace(".", "_")] = _share(durations, days)
    for dest in codes("destination"):
        flags = [p[2] for p in f.progressions if p[1] == dest and inside(p[0])]
        out[f"since_progression_within_{dest}"] = (sum(flags), len(flags))
    out["since_early_help_allocation_within"] = _share(
        (a[1] for a in f.allocation if inside(a[0])),
        float(RULES["early_help_allocation"]["timescale"]))
    out["since_contact_decision_within"] = _share(
        (c[3] for c in f.completion if inside(c[0])),
        float(RULES["contact_decision"]["timescale"]))
    return out


def compare_since(got: Mapping[str, Any], expected: Mapping[str, Share]) -> list[str]:
    """Every difference between a JSON report's ``since`` block and the expectation."""
    figures = {fig["key"]: fig for fig in got["figures"]}
    problems = [f"{key}: missing" for key in expected if key not in figures]
    problems += [f"{key}: not expected" for key in figures if key not in expected]
    for key, (within, judged) in expected.items():
        fig = figures.get(key)
        if fig is None:
            continue
        share = round(100.0 * within / judged, 4) if judged else None
        if (fig["within"], fig["judged"]) != (within, judged) or (
                share is None) != (fig["percent"] is None) or (
                share is not None and abs(fig["percent"] - share) > 1e-9):
            problems.append(f"{key}: report {fig['percent']} ({fig['within']} of "
                            f"{fig['judged']}), expected {share} ({within} of {judged})")
    return sorted(problems)
