"""Versioned timescale rules, loaded from ``config/rules.toml``."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Clock = Literal["working_days", "working_hours", "hours"]
_CLOCKS = ("working_days", "working_hours", "hours")


class RuleError(ValueError):
    """The rules file is malformed."""


@dataclass(frozen=True)
class Rule:
    """One timescale: the clock starts at ``opens`` and stops at ``closes``.

    ``opens``/``closes`` are event types, optionally narrowed by a category code
    after a colon (``contact.progressed:early_help``).
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


def load_rules(path: Path) -> Mapping[str, Rule]:
    """Read every ``[[rule]]`` of a rules file, keyed by name."""
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    rules: dict[str, Rule] = {}
    for entry in raw.get("rule", []):
        try:
            rule = Rule(**entry)
        except TypeError as exc:
            raise RuleError(f"bad rule entry: {exc}") from None
        if rule.clock not in _CLOCKS:
            raise RuleError(f"rule {rule.name}: clock must be one of {_CLOCKS}")
        if rule.timescale <= 0 or rule.version < 1:
            raise RuleError(f"rule {rule.name}: timescale and version must be positive")
        if rule.name in rules:
            raise RuleError(f"rule {rule.name} defined twice")
        rules[rule.name] = rule
    return rules
