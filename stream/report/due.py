"""``python -m stream due``: the morning list, every worker's open items by deadline.

Each worker lists the open items of the partitions it owns (``/due``), so the
list is complete only when, as for the report, the workers' owned partitions
cover every partition of every source topic once, none is recovering or
rebalancing, every worker answered and all judged their state alike
(``stream.report.workers``). Otherwise ``due`` refuses (exit 2) naming what is
missing as topic[partition]; with ``--partial`` it prints what there is, marked
PARTIAL with what is missing at its top. Workers: ``--workers``, else
``CSPA_WORKERS``.

Items whose deadline passed more than the workers' horizon ago (``CSPA_OPEN_WORK_HORIZON``
working days) are *stale*: not listed, but counted on a line under the list. ``--stale``
lists them instead, for data-quality follow-up (after a backfill, work whose closing event
the data never held).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from stream.report.cli import expected_partitions, parse_workers, workers_of
from stream.report.webclient import WebClient
from stream.report.workers import Gaps, ask, gaps
from stream.settings import Settings

Item = dict[str, Any]
FIELDS = frozenset({"deadline", "state", "working_hours_left", "rule", "team", "key"})

class Stale(NamedTuple):
    """Stale items per rule over every worker, and the horizon (working days) they passed."""

    counts: dict[str, int]
    horizon: float | None  # None: no worker answered


HEADER = f"{'deadline':25} {'state':9} {'hours left':>10}  {'rule':24} {'team':5} case"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The due list's options (the caller sets ``fn``)."""
    parser.add_argument("--workers", type=parse_workers, default=None,
                        help="every worker's base URL, comma separated (default: "
                             "CSPA_WORKERS, http://127.0.0.1:6066)")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--partial", action="store_true",
                        help="when workers or partitions are missing, print the items there "
                             "are, marked PARTIAL with what is missing (default: refuse)")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for each worker")
    parser.add_argument("--stale", action="store_true",
                        help="list the stale items (deadline passed more than "
                             "CSPA_OPEN_WORK_HORIZON working days ago) instead")


def merge(lists: Sequence[Sequence[Item]], limit: int) -> list[Item]:
    """The ``limit`` items due first over every worker's list (each its own first)."""
    items = [item for items in lists for item in items]
    items.sort(key=lambda i: (str(i["deadline"]), str(i["rule"])))
    return items[:limit]


def merge_stale(bodies: Sequence[Mapping[str, Any]]) -> Stale:
    """The workers' stale counts summed per rule; the largest horizon among them."""
    counts: dict[str, int] = {}
    for body in bodies:
        for rule, n in body["stale"].items():
            counts[rule] = counts.get(rule, 0) + n
    horizons = [float(body["horizon_workdays"]) for body in bodies]
    return Stale(dict(sorted(counts.items())), max(horizons) if horizons else None)


def stale_line(stale: Stale, listed: bool = False) -> str:
    """The line under the list: how many stale items there are, by rule."""
    total = sum(stale.counts.values())
    horizon = "the horizon" if stale.horizon is None else f"{stale.horizon:g} working days"
    by_rule = ", ".join(f"{rule} {n}" for rule, n in stale.counts.items() if n)
    where = "listed above" if listed else "not listed: see due --stale"
    return (f"stale: {total} open item{'' if total == 1 else 's'} past the deadline by more "
            f"than {horizon}" + (f" ({by_rule}; {where})" if total else ""))


def render_table(items: Sequence[Item], found: Gaps,
                 stale: Stale | None = None, listed: bool = False) -> str:
    """The list as text, the stale count under it; marked PARTIAL at its top on gaps."""
    lines = [f"PARTIAL: {problem}" for problem in found.problems()]
    lines.append(HEADER)
    lines += [f"{i['deadline']!s:25} {i['state']!s:9} {i['working_hours_left']!s:>10}  "
              f"{i['rule']!s:24} {i['team']!s:5} {i['key']}"
              + (f" ({i['agency']})" if i.get("agency") else "") for i in items]
    if stale is not None:
        lines.append(stale_line(stale, listed))
    return "\n".join(lines) + "\n"


def render_json(items: Sequence[Item], found: Gaps, stale: Stale | None = None) -> str:
    """The list as JSON: ``complete`` false and ``problems`` non-empty when partial."""
    doc: dict[str, Any] = {"complete": not found, "problems": found.problems(),
                           "missing": [[t, p] for t, ps in sorted(found.missing.items())
                                       for p in ps],
                           "items": list(items)}
    if stale is not None:
        doc |= {"stale": stale.counts, "stale_total": sum(stale.counts.values()),
                "horizon_workdays": stale.horizon}
    return json.dumps(doc, indent=2) + "\n"


def refusal(found: Gaps) -> str:
    """The one-line error of a refused list."""
    return ("due: refusing an incomplete morning list: " + " | ".join(found.problems())
            + f". {found.advice()}; or print what there is with --partial.")


def run_due(args: argparse.Namespace, settings: Settings) -> int:
    try:
        urls = workers_of(args, settings)
    except ValueError as exc:
        print(f"due: {exc}", file=sys.stderr)
        return 2
    query = f"?limit={args.limit}" + ("&stale=1" if args.stale else "")
    answers, unreachable = ask(urls, "/due", args.timeout, query, WebClient.of(settings))
    lists, bodies = [], []
    for answer in list(answers):
        if _readable(answer.body):
            lists.append(answer.body["items"])
            bodies.append(answer.body)
        else:
            answers.remove(answer)
            unreachable.append(f"{answer.url} (unreadable due list)")
    found = gaps(answers, unreachable, expected_partitions(settings.app_id))
    if found and not args.partial:
        print(refusal(found), file=sys.stderr)
        return 2
    items, stale = merge(lists, args.limit), merge_stale(bodies)
    sys.stdout.write(render_json(items, found, stale) if args.json
                     else render_table(items, found, stale, listed=args.stale))
    return 0


def _readable(body: Any) -> bool:
    """A worker's /due answer has its items, the stale counts and its horizon."""
    items, stale = body.get("items"), body.get("stale")
    return (isinstance(items, list)
            and all(isinstance(i, dict) and FIELDS <= i.keys() for i in items)
            and isinstance(stale, dict)
            and all(isinstance(r, str) and isinstance(n, int) for r, n in stale.items())
            and isinstance(body.get("horizon_workdays"), int | float))
