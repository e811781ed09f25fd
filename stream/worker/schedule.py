"""The retention command's front: a council's schedule ("older than 6y") as a cut-off,
and one run of ``stream.worker.retention`` printed for the operator."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from stream.contract.topics import load_topics
from stream.settings import Settings
from stream.state.facts import fact_context
from stream.worker import retention

_DURATION = re.compile(r"^(\d+)([dwmy])$")


def cutoff(older_than: str, now: float, tz: str) -> float:
    """The cut-off (POSIX s) of a duration: ``400d``, ``12w``, ``18m`` (calendar months)
    or ``6y`` (calendar years) before ``now``, at midnight of that day in ``tz``.

    Raises ValueError for anything else.
    """
    match = _DURATION.match(older_than.strip())
    if match is None:
        raise ValueError(f"--older-than {older_than!r}: want a number and d, w, m or y "
                         "(e.g. 6y, 18m, 400d)")
    n, unit = int(match[1]), match[2]
    today = datetime.fromtimestamp(now, ZoneInfo(tz)).date()
    if unit in "dw":
        day = today - timedelta(days=n * (7 if unit == "w" else 1))
    else:
        months = today.year * 12 + today.month - 1 - n * (12 if unit == "y" else 1)
        year, month = divmod(months, 12)
        day = today.replace(year=year, month=month + 1, day=1)
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).timestamp()


def run(settings: Settings, older_than: str, apply: bool,
        changelogs: Mapping[str, str]) -> int:
    """Print what the schedule deletes; with ``apply``, delete it (workers stopped)."""
    now = time.time()
    try:
        cut = cutoff(older_than, now, settings.timezone)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    kwargs = settings.kafka_client_kwargs()
    if apply:
        members = asyncio.run(retention.workers_running(settings.broker, settings.app_id,
                                                        **kwargs))
        if members:
            print(f"retention not applied: {members} worker(s) of {settings.app_id} are "
                  "running; stop every worker first (a running worker keeps erased cases "
                  "in memory and would write them back)", file=sys.stderr)
            return 1
    topics = load_topics(app_id=settings.app_id)
    found = asyncio.run(retention.plan(settings.broker, topics, changelogs, cut, now,
                                       fact_context(settings), **kwargs))
    when = datetime.fromtimestamp(cut, ZoneInfo(settings.timezone)).isoformat()
    print(f"cut-off {when}: events before it, and cases with no event since")
    print("\n".join(found.lines()))
    if not apply:
        print("dry run: nothing deleted (--apply deletes)")
        return 0
    deleted = asyncio.run(retention.apply(settings.broker, found, **kwargs))
    print(f"deleted {deleted} offsets; figures of erased cases kept as aggregates; "
          "workers restore from the changelogs at their next start")
    return 0
