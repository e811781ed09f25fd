"""``python -m stream due``: the morning list, every worker's open items by deadline.

Each worker lists the open items of the partitions it owns (``/due``), so the
list is complete only when, as for the report, the workers' owned partitions
cover every partition of every source topic once, none is recovering or
rebalancing, every worker answered and all judged their state alike
(``stream.report.workers``). Otherwise ``due`` refuses (exit 2) naming what is
missing as topic[partition]; with ``--partial`` it prints what there is, marked
PARTIAL with what is missing at its top. Workers: ``--workers``, else
``CSPA_WORKERS``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from stream.report.cli import expected_partitions, parse_workers, workers_of
from stream.report.webclient import WebClient
from stream.report.workers import Gaps, ask, gaps
from stream.settings import Settings

Item = dict[str, Any]
FIELDS = frozenset({"deadline", "state", "working_hours_left", "rule", "team", "key"})
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


def merge(lists: Sequence[Sequence[Item]], limit: int) -> list[Item]:
    """The ``limit`` items due first over every worker's list (each its own first)."""
    items = [item for items in lists for item in items]
    items.sort(key=lambda i: (str(i["deadline"]), str(i["rule"])))
    return items[:limit]


def render_table(items: Sequence[Item], found: Gaps) -> str:
    """The list as text; when ``found`` has gaps, marked PARTIAL at its top."""
    lines = [f"PARTIAL: {problem}" for problem in found.problems()]
    lines.append(HEADER)
    lines += [f"{i['deadline']!s:25} {i['state']!s:9} {i['working_hours_left']!s:>10}  "
              f"{i['rule']!s:24} {i['team']!s:5} {i['key']}" for i in items]
    return "\n".join(lines) + "\n"


def render_json(items: Sequence[Item], found: Gaps) -> str:
    """The list as JSON: ``complete`` false and ``problems`` non-empty when partial."""
    return json.dumps({"complete": not found, "problems": found.problems(),
                       "missing": [[t, p] for t, ps in sorted(found.missing.items())
                                   for p in ps],
                       "items": list(items)}, indent=2) + "\n"


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
    answers, unreachable = ask(urls, "/due", args.timeout, f"?limit={args.limit}",
                               WebClient.of(settings))
    lists = []
    for answer in list(answers):
        if _readable(answer.body.get("items")):
            lists.append(answer.body["items"])
        else:
            answers.remove(answer)
            unreachable.append(f"{answer.url} (unreadable due list)")
    found = gaps(answers, unreachable, expected_partitions())
    if found and not args.partial:
        print(refusal(found), file=sys.stderr)
        return 2
    items = merge(lists, args.limit)
    sys.stdout.write(render_json(items, found) if args.json else render_table(items, found))
    return 0


def _readable(items: Any) -> bool:
    return isinstance(items, list) and all(
        isinstance(i, dict) and FIELDS <= i.keys() for i in items)
