"""The closed sets behind every category field, loaded from configuration.

The taxonomy is data (``topics/taxonomy.toml``) because councils rename levels
and add categories; the event models validate against whatever it lists, and
metric labels only ever take values from it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import MappingProxyType

from stream.settings import DEFAULT_TAXONOMY

#: Category sets every taxonomy must define (the contract's category fields).
REQUIRED_SETS = (
    "source_system", "channel", "team", "source_code", "source_group", "contact_outcome",
    "pathway", "destination", "map_outcome", "level3_service", "agency", "call_queue", "grade",
    "qa_theme", "sampler_role",
    "feedback_from", "feedback_kind", "quote_attribution", "approver_role",
)

#: The ``pathway`` a completed contact is counted under when the case system recorded
#: none (the completion table's "Not Yet Recorded"): every taxonomy must list it.
UNRECORDED_PATHWAY = "not_yet_recorded"


class TaxonomyError(ValueError):
    """The taxonomy file is missing a set or is inconsistent."""


@dataclass(frozen=True)
class Taxonomy:
    """Closed category sets: code -> label, plus optional ``valid_from`` months."""

    labels: Mapping[str, Mapping[str, str]]
    valid_from: Mapping[str, Mapping[str, date]] = field(default_factory=dict)
    #: CIN referral-source code -> report source group.
    source_groups: Mapping[str, str] = field(default_factory=dict)

    def codes(self, category: str) -> frozenset[str]:
        """All codes of one category set."""
        return frozenset(self.labels[category])

    def ordered(self, category: str) -> tuple[str, ...]:
        """Codes in the order the configuration lists them (report row order)."""
        return tuple(self.labels[category])

    def label(self, category: str, code: str) -> str:
        return self.labels[category][code]

    def exists_in(self, category: str, code: str, month_start: date) -> bool:
        """False when the category had not been introduced by that month (null, not 0)."""
        since = self.valid_from.get(category, {}).get(code)
        return since is None or month_start >= since

    def group_of(self, source_code: str) -> str:
        """The report's source group of a CIN referral-source code."""
        return self.source_groups[source_code]


def _parse_set(name: str, raw: object) -> tuple[dict[str, str], dict[str, date]]:
    if not isinstance(raw, dict) or not raw:
        raise TaxonomyError(f"taxonomy set '{name}' is missing or empty")
    labels: dict[str, str] = {}
    since: dict[str, date] = {}
    for code, value in raw.items():
        if isinstance(value, str):
            labels[code] = value
        elif isinstance(value, dict) and isinstance(value.get("label"), str):
            labels[code] = value["label"]
            if "valid_from" in value:
                since[code] = date.fromisoformat(str(value["valid_from"]))
        else:
            raise TaxonomyError(f"taxonomy set '{name}': entry '{code}' needs a label")
    return labels, since


def load_taxonomy(path: Path = DEFAULT_TAXONOMY) -> Taxonomy:
    """Read and check a taxonomy file."""
    return parse_taxonomy(path.read_text(encoding="utf-8"))


def parse_taxonomy(text: str) -> Taxonomy:
    """Check a taxonomy given as TOML text (a worker serves the file it read)."""
    raw = tomllib.loads(text)
    labels: dict[str, Mapping[str, str]] = {}
    valid_from: dict[str, Mapping[str, date]] = {}
    for name in REQUIRED_SETS:
        set_labels, since = _parse_set(name, raw.get(name))
        labels[name] = MappingProxyType(set_labels)
        valid_from[name] = MappingProxyType(since)
    if UNRECORDED_PATHWAY not in labels["pathway"]:
        raise TaxonomyError(f"taxonomy set 'pathway' must list {UNRECORDED_PATHWAY!r}: "
                            "completions without a recorded outcome count under it")
    groups = dict(labels["source_code"])
    unknown = sorted(set(groups.values()) - set(labels["source_group"]))
    if unknown:
        raise TaxonomyError(f"source codes map to undefined source groups: {unknown}")
    # Source-code "labels" are their groups; give them readable labels instead.
    labels["source_code"] = MappingProxyType({c: f"CIN {c}" for c in groups})
    return Taxonomy(MappingProxyType(labels), MappingProxyType(valid_from),
                    MappingProxyType(groups))
