"""Command line for operators and integrators: ``deadletter`` and ``key``.

``deadletter list|show|replay`` reads and replays the dead-letter topic
(``stream.upstream.deadletter``); ``key`` computes pseudonymous keys
(``stream.contract.keys``) for any producer.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from stream.settings import Settings
from stream.upstream import deadletter


def add_commands(subparsers: Any) -> None:
    """Register ``deadletter`` and ``key`` on the top-level parser's subparsers."""
    dead = subparsers.add_parser("deadletter", help="list, show or replay rejected messages")
    actions = dead.add_subparsers(dest="action", required=True)
    for name, fn, text in (("list", run_list, "where each came from and why (no values)"),
                           ("replay", run_replay, "re-send to the source topic, exactly once")):
        action = actions.add_parser(name, help=text)
        action.add_argument("--reason", help="only this reason (e.g. unexpected_field)")
        action.add_argument("--since", type=deadletter.parse_since,
                            help="only rejected at or after this ISO date/instant (naive: UTC)")
        action.set_defaults(fn=fn)
    show = actions.add_parser("show", help="decode one dead letter (pseudonymous keys only)")
    show.add_argument("offset", type=int, help="its offset on the dead-letter topic")
    show.add_argument("--partition", type=int, default=0)
    show.set_defaults(fn=run_show)
    key = subparsers.add_parser("key", help="the pseudonymous key of identifiers")
    key.add_argument("--kind", required=True, help="key kind (contact, child, call...)")
    key.add_argument("--secret-file", type=Path, default=None,
                     help="the council's key secret (default CSPA_PSEUDONYM_KEY_FILE)")
    key.add_argument("ids", nargs="+", metavar="ID")
    key.set_defaults(fn=run_key)


def _filter(args: argparse.Namespace) -> deadletter.Filter:
    return deadletter.Filter(args.reason, args.since)


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    contents = asyncio.run(deadletter.read_all(settings))
    for line in deadletter.listing(contents, _filter(args)):
        print(line)
    return 0


def run_show(args: argparse.Namespace, settings: Settings) -> int:
    contents = asyncio.run(deadletter.read_all(settings))
    for letter in contents.letters:
        if letter.where == (args.partition, args.offset):
            print(deadletter.showing(letter))
            return 0
    print(f"no dead letter at partition {args.partition} offset {args.offset}", file=sys.stderr)
    return 1


def run_replay(args: argparse.Namespace, settings: Settings) -> int:
    result = asyncio.run(deadletter.replay(settings, _filter(args)))
    print(f"replayed {result.sent} dead letter(s)"
          + (f"; {result.skipped_empty} without a value left as they are"
             if result.skipped_empty else "")
          + (f"; {result.skipped_internal} from the workers' repartition topic left as they"
             " are (hops too late for their child's window: not events, see docs/contract.md)"
             if result.skipped_internal else ""))
    if result.fenced:
        print("stopped: another replay started and took over; it replays the rest "
              "(nothing is sent twice)", file=sys.stderr)
    return 0


def run_key(args: argparse.Namespace, settings: Settings) -> int:
    from stream.contract.keys import SecretError, load_secret, pseudonymous_key

    try:
        secret = load_secret(args.secret_file or settings.pseudonym_key_file)
        for identifier in args.ids:
            print(pseudonymous_key(secret, args.kind, identifier))
    except (SecretError, ValueError) as exc:
        print(f"key: {exc}", file=sys.stderr)
        return 2
    return 0
