"""Timescale rules versioned in time, loaded from ``config/rules.toml``.

A rule may have several versions, each in force from its ``effective_from`` date
(local midnight in the calendar's zone, Europe/London by default); the first
version's date may be left out (in force since always). An item is judged by the
version in force when its clock started (``Versions.at``): a change applies from its
date and earlier judgements stay as they were.
"""

from __future__ import annotations

import math
import tomllib
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

Clock = Literal["working_days", "working_hours", "hours"]
_CLOCKS = ("working_days", "working_hours", "hours")
#: what every version of a rule shares: they define the item itself and label its series
_SHARED = ("team", "opens", "closes")


class RuleError(ValueError):
    """The rules file is malformed."""


@dataclass(frozen=True)
class Rule:
    """One version of a timescale: the clock starts at ``opens`` and stops at ``closes``.

    ``opens``/``closes`` are event types, optionally narrowed by a category code
    after a colon (``contact.progressed:early_help``). ``effective_from``: the local
    date from which this version judges items (None: since always).

    ``extended_by``: an event type on the same case record that extends the item to
    ``extended_timescale`` (same clock), when it occurred no later than the item's own
    deadline and, if the item closed, no later than its closing ("" : no extension).
    """

    name: str
    version: int
    team: str
    opens: str
    closes: str
    clock: Clock
    timescale: float
    warn_working_hours: float
    source: str = ""
    effective_from: date | None = None
    extended_by: str = ""
    extended_timescale: float | None = None


class Versions:
    """Every version of one rule, oldest first, and which is in force when.

    ``name``, ``team``, ``opens`` and ``closes`` are the same in every version; the
    clock, timescale and warning are the latest version's (``latest``).
    """

    __slots__ = ("closes", "latest", "name", "opens", "single", "starts", "team", "versions")

    def __init__(self, versions: Sequence[Rule], tz: str = "Europe/London") -> None:
        if not versions:
            raise RuleError("a rule needs at least one version")
        zone = ZoneInfo(tz)
        first = versions[0]
        self.versions = tuple(versions)
        self.name, self.team, self.opens, self.closes = (
            first.name, first.team, first.opens, first.closes)
        self.latest = versions[-1]
        #: POSIX seconds from which each version is in force (-inf: since always)
        self.starts = [-math.inf if r.effective_from is None else
                       datetime.combine(r.effective_from, time(0), zone).timestamp()
                       for r in versions]
        #: the hot path's answer when a rule has one version in force since always
        self.single = first if len(versions) == 1 and first.effective_from is None else None

    @property
    def clock(self) -> Clock:
        return self.latest.clock

    @property
    def timescale(self) -> float:
        return self.latest.timescale

    @property
    def warn_working_hours(self) -> float:
        return self.latest.warn_working_hours

    def at(self, clock_start: float) -> Rule | None:
        """The version in force at a clock start (POSIX s); None before the first one's date."""
        if self.single is not None:
            return self.single
        i = bisect_right(self.starts, clock_start) - 1
        return self.versions[i] if i >= 0 else None

    def __repr__(self) -> str:
        return f"Versions({self.name!r}, {[r.version for r in self.versions]})"


def versioned(rules: Mapping[str, Rule | Versions], tz: str = "Europe/London"
              ) -> dict[str, Versions]:
    """Rules as ``Versions`` (a bare ``Rule`` is a rule of one version)."""
    return {name: r if isinstance(r, Versions) else Versions([r], tz)
            for name, r in rules.items()}


def _effective(name: str, value: Any) -> date | None:
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise RuleError(f"rule {name}: effective_from must be a date (2027-04-01), got {value!r}")


def _rule(entry: Mapping[str, Any]) -> Rule:
    name = entry.get("name", "?")
    known = {f.name for f in fields(Rule)}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise RuleError(f"rule {name}: unknown keys {unknown}")
    try:
        rule = Rule(**{**entry, "effective_from": _effective(name, entry.get("effective_from"))})
    except TypeError as exc:
        raise RuleError(f"rule {name}: bad rule entry: {exc}") from None
    if rule.clock not in _CLOCKS:
        raise RuleError(f"rule {name}: clock must be one of {_CLOCKS}")
    if rule.timescale <= 0 or rule.version < 1:
        raise RuleError(f"rule {name}: timescale and version must be positive")
    _check_extension(rule)
    return rule


def _check_extension(rule: Rule) -> None:
    """Both extension fields or neither, and an extension never shortens the timescale.

    (That the extending event is on the item's case record is checked with the other
    endpoints, ``stream.state.timeliness.watched_rules``.)
    """
    if bool(rule.extended_by) != (rule.extended_timescale is not None):
        raise RuleError(f"rule {rule.name}: extended_by and extended_timescale go together")
    if rule.extended_timescale is not None and rule.extended_timescale < rule.timescale:
        raise RuleError(f"rule {rule.name}: extended_timescale {rule.extended_timescale:g} "
                        f"is below the timescale {rule.timescale:g}")


def _check_next(prev: Rule, rule: Rule) -> None:
    """A later version of the same rule, as the file must list it."""
    name = rule.name
    if rule.version <= prev.version:
        raise RuleError(f"rule {name}: version {rule.version} after version {prev.version}: "
                        "versions must increase down the file")
    if rule.effective_from is None:
        raise RuleError(f"rule {name}: version {rule.version} needs effective_from "
                        "(only the first version may be in force since always)")
    if prev.effective_from is not None and rule.effective_from <= prev.effective_from:
        raise RuleError(f"rule {name}: version {rule.version} effective_from "
                        f"{rule.effective_from} is not after version {prev.version}'s "
                        f"{prev.effective_from}")
    for key in _SHARED:
        if getattr(rule, key) != getattr(prev, key):
            raise RuleError(f"rule {name}: version {rule.version} changes {key}; every "
                            "version must have the same team, opens and closes (they define "
                            "the item and label its series): give the new one another name")


def load_rules(path: Path, tz: str = "Europe/London") -> Mapping[str, Versions]:
    """Read every ``[[rule]]`` of a rules file: the versions of each rule, keyed by name.

    Versions of one rule are listed oldest first; dates are local to ``tz``.
    """
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    by_name: dict[str, list[Rule]] = {}
    for entry in raw.get("rule", []):
        if not isinstance(entry, dict):
            raise RuleError("bad rule entry: not a table")
        rule = _rule(entry)
        listed = by_name.setdefault(rule.name, [])
        if listed:
            _check_next(listed[-1], rule)
        listed.append(rule)
    return {name: Versions(rules, tz) for name, rules in by_name.items()}
