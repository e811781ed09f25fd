"""The fingerprint of what judged the derived state (cells and open work).

Derived state is a fold of the case records under the rules, the taxonomy, the
calendar and the fold-time settings. A checkpoint of it is only valid under the
same inputs: with another fingerprint the worker refolds from its records.
Settings applied only when figures are read are not inputs.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from stream.settings import Settings


def fold_inputs(settings: Settings) -> dict[str, Any]:
    """Every input of the fold, as plain JSON values (files by their content)."""
    return {
        "rules": settings.rules_path.read_text(encoding="utf-8"),
        "taxonomy": settings.taxonomy_path.read_text(encoding="utf-8"),
        "timezone": settings.timezone,
        "office_hours": [settings.office_start.isoformat(), settings.office_end.isoformat()],
        "roll_after_hours": settings.roll_after_hours,
    }


def fingerprint(inputs: dict[str, Any], state_format: int) -> str:
    """A short stable digest (16 hex digits) of the fold's inputs and the state format."""
    blob = json.dumps({"inputs": inputs, "format": state_format}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
