"""An attacker's view of a published report: can any hidden count be worked out?

Independent of ``stream.report.suppression``: built only from two JSON renderings of
one report, published (``*`` for hidden values) and not (the true values), and from
what the report's definitions say adds up (written here from the domain, not read
from the code). The attacker knows every shown count and these equations:

* in every table, each count row's months sum to its Total (a transposed table: each
  month's categories sum to its Total column, each category's months to the Total
  row); the completion cross-tab's counts sum along rows and columns;
* calls + emails = enquiries; MAP outcomes sum to the enquiries completed, and so do
  the agencies-consulted bins, which sum to their count; the agencies named sum to the
  bins weighted by their number of agencies; the days bins sum to their count, which
  the commentary shows again; channels sum to the contacts received;
* every count is a whole number >= 0 ("N/A" is 0).

A hidden count is protected when another whole, non-negative solution of all the
equations gives it another value. ``exposed`` decides that exactly for each hidden
count: a search for a solution with the count below, then above, its true value
(bisection of the counts' ranges, each range narrowed by every equation in turn).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Key = tuple[str, str, str]  # table (or "table#n" for a shown base), row, column
Equation = dict[Key, int]  # sum of coefficient x count = 0
TOTAL = "total"


def cells(doc: Mapping[str, Any]) -> dict[Key, Any]:
    """Every value of a JSON report, counts under ``table#n`` for shown bases."""
    out: dict[Key, Any] = {}
    for section in doc["sections"]:
        for table in section["tables"]:
            cols = [c["key"] for c in table["columns"]]
            for row in table["rows"]:
                for col, v in zip(cols, row["values"], strict=True):
                    out[(table["key"], row["key"], col)] = v
                if "counts" in row:
                    for col, v in zip(cols, row["counts"], strict=True):
                        out[(table["key"] + "#n", row["key"], col)] = v
    return out


def _is_count(v: Any) -> bool:
    return v == "N/A" or (isinstance(v, int) and not isinstance(v, bool))


def _tables(doc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["key"]: t for s in doc["sections"] for t in s["tables"]}


def equations(raw: Mapping[str, Any]) -> list[Equation]:
    """Every equation an attacker can write between the report's counts."""
    values = cells(raw)
    eqs: list[Equation] = []

    def eq(*terms: tuple[int, Key]) -> None:
        out: Equation = {}
        for k, key in terms:
            if key in values and values[key] != "N/A" and k:
                out[key] = out.get(key, 0) + k
        if len(out) > 1:
            eqs.append(out)

    tables = _tables(raw)
    for tkey, table in tables.items():
        cols = [c["key"] for c in table["columns"]]
        rows = [r["key"] for r in table["rows"]]
        name = tkey + "#n" if table["month_axis"] == "none" else tkey
        grid = {(r, c): values.get((name, r, c)) for r in rows for c in cols}
        line_rows = [r for r in rows if all(_is_count(grid[(r, c)]) for c in cols)]
        for r in line_rows:  # across: categories or months to the Total column
            eq(*((1, (name, r, c)) for c in cols if c != TOTAL), (-1, (name, r, TOTAL)))
        if table["month_axis"] in ("rows", "none"):  # down: to the Total row
            for c in cols:
                if all(_is_count(grid[(r, c)]) for r in rows):
                    eq(*((1, (name, r, c)) for r in rows if r != TOTAL),
                       (-1, (name, TOTAL, c)))
    _identities(raw, tables, eq)
    return eqs


def _identities(raw: Mapping[str, Any], tables: Mapping[str, Any], eq: Any) -> None:
    """What adds up between rows and tables (the module's doc)."""
    months = [c["key"] for c in tables["rfs"]["columns"]]
    rows = {t: [r["key"] for r in table["rows"]] for t, table in tables.items()}
    outcomes = rows["map_by_outcome"]
    bins = [r for r in rows["map_agencies"] if r.isdigit()]
    days = next(t for t in tables if t.startswith("map_days_"))
    day_bins = [r for r in rows[days] if r[0].isdigit()]
    for m in months:
        eq((1, ("rfs", "calls", m)), (1, ("rfs", "emails_resolved", m)),
           (-1, ("rfs", "enquiries", m)))
        eq(*((1, ("map_by_outcome", o, m)) for o in outcomes),
           (-1, ("map_summary", "completed", m)))
        eq((1, ("map_agencies", "agencies_count", m)), (-1, ("map_summary", "completed", m)))
        eq(*((1, ("map_agencies", b, m)) for b in bins),
           (-1, ("map_agencies", "agencies_count", m)))
        eq(*((1, ("map_by_agency", a, m)) for a in rows["map_by_agency"]),
           *((-int(b), ("map_agencies", b, m)) for b in bins))
        eq(*((1, (days, b, m)) for b in day_bins), (-1, (days, "map_days_count", m)))
        eq((1, (days, "map_days_count", m)), (-1, ("map_days", "map_days_count", m)))
        channels = [r for r in rows["contacts_received"] if r != "contacts_received"]
        eq(*((1, ("contacts_received", c, m)) for c in channels),
           (-1, ("contacts_received", "contacts_received", m)))


# ----------------------------------------------------------------------- the check

Domains = dict[Key, tuple[int, int]]


def _propagate(eqs: list[Equation], dom: Domains, known: Mapping[Key, int]) -> bool:
    """Tighten every unknown's [lo, hi] from each equation until nothing moves; False
    when some domain empties (no solution)."""
    rhs = [-sum(k * known[key] for key, k in e.items() if key in known) for e in eqs]
    terms = [[(k, key) for key, k in e.items() if key in dom] for e in eqs]
    touching: dict[Key, list[int]] = {}
    for i, ts in enumerate(terms):
        for _, key in ts:
            touching.setdefault(key, []).append(i)
    queue, queued = list(range(len(eqs))), set(range(len(eqs)))
    while queue:
        i = queue.pop()
        queued.discard(i)
        ts = terms[i]
        lo_sum = sum(k * (dom[x][0] if k > 0 else dom[x][1]) for k, x in ts)
        hi_sum = sum(k * (dom[x][1] if k > 0 else dom[x][0]) for k, x in ts)
        for k, key in ts:
            lo, hi = dom[key]
            # k * y = rhs - (the others), the others within [rest_lo, rest_hi]
            a = rhs[i] - (hi_sum - k * (hi if k > 0 else lo))
            b = rhs[i] - (lo_sum - k * (lo if k > 0 else hi))
            new_lo = max(lo, -((-a) // k) if k > 0 else -((-b) // k))
            new_hi = min(hi, b // k if k > 0 else a // k)
            if new_lo > new_hi:
                return False
            if (new_lo, new_hi) != (lo, hi):
                dom[key] = (new_lo, new_hi)
                for j in touching[key]:
                    if j not in queued:
                        queue.append(j)
                        queued.add(j)
    return True


def _solvable(eqs: list[Equation], dom: Domains, known: Mapping[Key, int]) -> bool:
    """Whether whole numbers in these domains satisfy every equation (bisection search
    with bound propagation: exact)."""
    stack = [dict(dom)]
    while stack:
        d = stack.pop()
        if not _propagate(eqs, d, known):
            continue
        open_ = [(hi - lo, key) for key, (lo, hi) in d.items() if hi > lo]
        if not open_:
            if all(sum(k * (d[x][0] if x in d else known[x]) for x, k in e.items()) == 0
                   for e in eqs):
                return True
            continue
        _, key = min(open_)
        lo, hi = d[key]
        mid = (lo + hi) // 2
        stack += [{**d, key: (mid + 1, hi)}, {**d, key: (lo, mid)}]
    return False


def _component(eqs: list[Equation], unknown: set[Key], key: Key) -> set[Key]:
    """The hidden counts linked to ``key`` through equations (the only ones it moves with)."""
    seen, todo = {key}, [key]
    while todo:
        k = todo.pop()
        for e in eqs:
            if k in e:
                for other in e:
                    if other in unknown and other not in seen:
                        seen.add(other)
                        todo.append(other)
    return seen


def exposed(published: Mapping[str, Any], raw: Mapping[str, Any]) -> list[Key]:
    """Hidden counts of ``published`` that can take one value only given everything
    shown (empty: each can take a second whole, non-negative value)."""
    pub, truth = cells(published), cells(raw)
    unknown = {k for k, v in pub.items() if v == "*" and isinstance(truth.get(k), int)}
    known = {k: v for k, v in truth.items() if isinstance(v, int) and k not in unknown}
    known.update((k, 0) for k, v in truth.items() if v == "N/A")
    eqs = [e for e in equations(raw) if any(k in unknown for k in e)]
    for e in eqs:  # the shown counts are the true ones: the equations hold
        assert sum(k * truth[key] for key, k in e.items()) == 0, e
    # Counts searched up to the sum of every count of the report: a search bounded so
    # can only miss a second value (err towards failing), never invent one.
    top = sum(v for v in truth.values() if isinstance(v, int))
    out = []
    for key in sorted(unknown):
        near = _component(eqs, unknown, key)
        eqs_near = [e for e in eqs if any(k in near for k in e)]
        dom: Domains = {k: (0, top) for k in near}
        x = truth[key]
        below = x > 0 and _solvable(eqs_near, {**dom, key: (0, x - 1)}, known)
        if not below and not _solvable(eqs_near, {**dom, key: (x + 1, top)}, known):
            out.append(key)
    return out
