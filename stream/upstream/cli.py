"""Commands for upstream systems: ``simulate``, ``import`` and ``send``.

``add_commands(subparsers)`` adds them to the main CLI (``python -m stream ...``); each
sets ``fn`` to a ``run_*(args, settings) -> exit code`` function.

    python -m stream simulate --start 2019-08-01 --days 92 --speed max
    python -m stream simulate --speed 60            # today, 60x faster than real time
    python -m stream import export.csv --mapping topics/mappings/telephony_cdr.toml \\
        --key-file /secure/pseudonym.key
    python -m stream send event.json                # or: ... | python -m stream send -
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from stream.contract.events import Event
from stream.contract.taxonomy import load_taxonomy
from stream.contract.topics import load_topics
from stream.settings import Settings
from stream.upstream.producer import (
    EventProducer,
    EventValidator,
    encode,
    family_of,
    settings_limits,
)


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise argparse.ArgumentTypeError("--speed is 'max', 1 (real time) or N > 0 (N x faster)")
    return value


def add_commands(subparsers: Any) -> None:
    """Add ``simulate``, ``import`` and ``send`` to an argparse subparsers object."""
    sim = subparsers.add_parser("simulate", help="send calibrated simulated traffic")
    sim.add_argument("--start", type=date.fromisoformat, default=None,
                     help="first day, YYYY-MM-DD (default today)")
    sim.add_argument("--days", type=int, default=1, help="days to generate (default 1)")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--scale", type=float, default=1.0,
                     help="volume multiplier: 1 one council, 10 a region, 150 England")
    sim.add_argument("--speed", type=_speed, default=None, metavar="{max,1,N}",
                     help="max: at once, up to now (default); 1: real time; N: N x faster")
    sim.add_argument("--after", type=datetime.fromisoformat, default=None,
                     help="skip events up to this instant (ISO 8601 with offset): continue "
                          "an earlier run live")
    sim.set_defaults(fn=run_simulate)

    imp = subparsers.add_parser("import", help="backfill events from a CSV / JSON Lines export")
    imp.add_argument("file", type=Path)
    imp.add_argument("--mapping", type=Path, required=True,
                     help="column mapping (TOML), e.g. topics/mappings/annex_a_contacts.toml")
    imp.add_argument("--errors", type=Path, default=None,
                     help="error file, CSV row,reason (default FILE.errors.csv if any)")
    imp.add_argument("--key-file", type=Path, default=None,
                     help="secret key for the pseudonymous keys (HMAC-SHA256)")
    imp.set_defaults(fn=run_import)

    send = subparsers.add_parser("send", help="validate and send one event (JSON)")
    send.add_argument("file", nargs="?", default="-", help="JSON file, or - for stdin")
    send.set_defaults(fn=run_send)


def run_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from stream.upstream.simulator import run

    start = args.start or date.today()
    if args.days < 1 or args.scale <= 0:
        print("simulate: --days must be >= 1 and --scale > 0", file=sys.stderr)
        return 2
    sent = asyncio.run(run(settings, start, args.days, seed=args.seed, scale=args.scale,
                           speed=args.speed, after=args.after))
    print(f"simulate: sent {sent} events ({start} + {args.days} day(s), seed {args.seed}, "
          f"scale {args.scale:g})")
    return 0


def run_import(args: argparse.Namespace, settings: Settings) -> int:
    from stream.upstream.importer import ImportFormatError, import_file

    try:
        summary = asyncio.run(import_file(settings, args.file, args.mapping, args.errors,
                                          args.key_file))
    except (ImportFormatError, FileNotFoundError) as exc:
        print(f"import: {exc}", file=sys.stderr)
        return 2
    return 1 if summary.rows_rejected else 0


def parse_event(raw: bytes, settings: Settings) -> Event:
    """Validate one event given as JSON bytes, exactly as the worker would.

    Raises ValueError (not an object, no event type) or pydantic.ValidationError.
    """
    obj = orjson.loads(raw)
    if not isinstance(obj, dict) or not isinstance(obj.get("event_type"), str):
        raise ValueError("the JSON must be an object with an event_type")
    family = family_of(obj["event_type"], load_topics())
    validator = EventValidator(load_taxonomy(settings.taxonomy_path), settings_limits(settings))
    return validator.build_json(family, raw)


async def _send_one(settings: Settings, event: Event) -> tuple[str, int, int]:
    async with EventProducer(settings) as producer:
        topic = producer.topic_for(event)
        # EventProducer.send only buffers; here the broker's acknowledgement is wanted.
        meta = await producer._producer.send_and_wait(
            topic, encode(event), key=event.key.encode(),
            timestamp_ms=int(event.timestamp * 1000))
    return topic, int(meta.partition), int(meta.offset)


def run_send(args: argparse.Namespace, settings: Settings) -> int:
    raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    try:
        event = parse_event(raw, settings)
    except orjson.JSONDecodeError as exc:
        print(f"send: not valid JSON ({exc.msg} at line {exc.lineno})", file=sys.stderr)
        return 2
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        for err in errors:
            where = ".".join(str(p) for p in err["loc"]) or "(event)"
            print(f"send: {where}: {err['type']}: {err['msg']}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"send: {exc}", file=sys.stderr)
        return 2
    topic, partition, offset = asyncio.run(_send_one(settings, event))
    event_type: str = event.event_type  # type: ignore[attr-defined]
    print(f"sent {event_type} to {topic} partition {partition} offset {offset}")
    return 0
