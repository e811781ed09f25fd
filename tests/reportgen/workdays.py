"""Taxonomy and rule look-ups, and the calendar worked out by hand.

The taxonomy, topics and rules are read from the repository's own files; working days
are a day-by-day loop over ``holidays.country_holidays("GB", subdiv="ENG")`` in
Europe/London time, medians are nearest-rank, and durations are kept to 1e-4.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays

LONDON = ZoneInfo("Europe/London")
ROOT = Path(__file__).resolve().parents[2]
TAXONOMY: dict[str, Any] = tomllib.loads((ROOT / "topics" / "taxonomy.toml").read_text())
TOPICS = {k: v["topic"] for k, v in
          tomllib.loads((ROOT / "topics" / "topics.toml").read_text()).items()}
RULES = {r["name"]: r for r in
         tomllib.loads((ROOT / "config" / "rules.toml").read_text())["rule"]}
_BANK = holidays.country_holidays("GB", subdiv="ENG", years=range(2018, 2022))
TOTAL = "total"
DAY_BINS = ("0", "1", "2", "3", "4", "5+")
VALUE_DECIMALS = 4


def codes(category: str) -> list[str]:
    """Codes of a taxonomy set, in the file's order (= the report's row order)."""
    return list(TAXONOMY[category])


def valid_from(category: str, code: str) -> date | None:
    entry = TAXONOMY[category][code]
    if isinstance(entry, dict) and "valid_from" in entry:
        return date.fromisoformat(str(entry["valid_from"]))
    return None


def source_group(code: str) -> str:
    group: str = TAXONOMY["source_code"][code]
    return group


def timescale(destination: str) -> float:
    return float(RULES["progression_" + destination]["timescale"])


def complaint_timescales() -> tuple[float, float]:
    """(working days, working days where extended) of rule ``complaint_stage1``."""
    rule = RULES["complaint_stage1"]
    return float(rule["timescale"]), float(rule["extended_timescale"])


# ------------------------------------------------------------------ calendar, by hand

def is_working(d: date) -> bool:
    return d.weekday() < 5 and d not in _BANK


def _midnight(d: date) -> float:
    return datetime(d.year, d.month, d.day, tzinfo=LONDON).timestamp()


def working_days(a: datetime, b: datetime) -> float:
    """Time inside working days (each local day, 23 h or 25 h ones too, counts 1)."""
    ta, tb = a.timestamp(), b.timestamp()
    if tb <= ta:
        return 0.0
    total, d, last = 0.0, a.astimezone(LONDON).date(), b.astimezone(LONDON).date()
    while d <= last:
        if is_working(d):
            start, end = _midnight(d), _midnight(d + timedelta(days=1))
            lo, hi = max(ta, start), min(tb, end)
            if hi > lo:
                total += (hi - lo) / (end - start)
        d += timedelta(days=1)
    return total


def calendar_days(a: datetime, b: datetime) -> float:
    return max(0.0, (b.timestamp() - a.timestamp()) / 86400.0)


def add_working_days(start: datetime, n: float) -> datetime:
    """The instant ``n`` working days after ``start`` (``start`` on a working day)."""
    d = start.astimezone(LONDON).date()
    assert is_working(d), d
    t = start.timestamp()
    remaining = n
    while True:
        day_start, day_end = _midnight(d), _midnight(d + timedelta(days=1))
        length = day_end - day_start
        left = (day_end - t) / length
        if remaining <= left + 1e-12:
            return datetime.fromtimestamp(t + remaining * length, LONDON)
        remaining -= left
        d += timedelta(days=1)
        while not is_working(d):
            d += timedelta(days=1)
        t = _midnight(d)


def month_of(t: datetime) -> str:
    return t.astimezone(LONDON).strftime("%Y-%m")


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=LONDON)


def _kept(v: float) -> float:
    return round(v, VALUE_DECIMALS)


def nearest_rank(values: Sequence[float], p: int) -> float | None:
    """The ceil(p n / 100)-th smallest value (at least the 1st)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p * len(ordered) / 100))
    return ordered[rank - 1]
