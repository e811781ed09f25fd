"""The fingerprint of what judged the derived state (cells and open work).

Derived state is a fold of the case records under the rules, the taxonomy, the
calendar and the fold-time settings. A checkpoint of it is only valid under the
same inputs: with another fingerprint the worker refolds from its records.
Settings applied only when figures are read are not inputs (docs/operations.md,
"State fingerprint", lists both and says why).

The inputs are taken as parsed, not as file text: a comment or a label changed in
a file judges nothing differently and must not cost a national refold.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict
from importlib.metadata import version
from typing import Any

from stream.contract.taxonomy import Taxonomy, load_taxonomy
from stream.settings import Settings
from stream.state.rules import Versions, load_rules

#: Bumped when a release changes how a record is folded (its facts, how an item is
#: judged, the working-day arithmetic): every checkpoint's derived state is refolded.
#: 2: partner requests and responses (issue 29.2) add facts to MAP records and one item
#: per agency asked to open work; receipts keep the contact's ``child_key`` (issue 29.1).
#: 3: cells keep their sums in whole 1e-4 units (``Cell.units``): a worker of fold 2
#: would read such a cell's sum as its class default, 0, so the versions must not share
#: derived state (each refolds the other's from the records).
FOLD_VERSION = 3


def rules_input(rules: Mapping[str, Versions]) -> dict[str, list[dict[str, Any]]]:
    """Every version of every rule as it judges (``source``, a citation, left out; the
    extension fields only where a rule has one)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name, versions in sorted(rules.items()):
        rows = []
        for rule in versions.versions:
            row = asdict(rule)
            row.pop("source")
            if not rule.extended_by:  # a rule without an extension keeps its fingerprint
                del row["extended_by"], row["extended_timescale"]
            row["effective_from"] = (rule.effective_from.isoformat()
                                     if rule.effective_from else None)
            rows.append(row)
        out[name] = rows
    return out


def taxonomy_input(taxonomy: Taxonomy) -> dict[str, Any]:
    """What of the taxonomy the fold reads: source groups and destinations.

    Labels, ``valid_from`` months and the call queues are read when figures are
    (the report's rows, the queues listed at a scrape); the decoder's checks decide
    which events become records, and records are not derived state.
    """
    return {"source_groups": dict(sorted(taxonomy.source_groups.items())),
            "destinations": sorted(taxonomy.ordered("destination"))}


def fold_inputs(settings: Settings) -> dict[str, Any]:
    """Every input of the fold, as plain JSON values."""
    return {
        "rules": rules_input(load_rules(settings.rules_path, settings.timezone)),
        "taxonomy": taxonomy_input(load_taxonomy(settings.taxonomy_path)),
        "timezone": settings.timezone,
        "office_hours": [settings.office_start.isoformat(), settings.office_end.isoformat()],
        "roll_after_hours": settings.roll_after_hours,
        # The bank holidays of England and Wales come from this library: a release
        # adding one (a coronation) moves working days.
        "holidays": version("holidays"),
        # how long a child's entries outlive the 12 months: which late hops still count
        "child_window_grace_days": settings.child_window_grace_days,
        "fold": FOLD_VERSION,
    }


def fingerprint(inputs: dict[str, Any], state_format: int) -> str:
    """A short stable digest (16 hex digits) of the fold's inputs and the state format."""
    blob = json.dumps({"inputs": inputs, "format": state_format}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
