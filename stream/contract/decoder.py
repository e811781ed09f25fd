"""Bytes from Kafka -> a validated event, or a rejection with a reason.

This is the edge: every check happens here, once. A rejection carries a reason
from the closed set ``REASONS`` and a detail naming only contract field paths
and error kinds, never a value from the payload (it may describe a child), so
both are safe to log, count and put on the dead-letter topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from pydantic import TypeAdapter, ValidationError

from stream.contract.events import FAMILIES, SCHEMA_VERSION, Event, event_type_of, family_types
from stream.contract.taxonomy import Taxonomy

REASONS = (
    "empty_payload", "payload_too_large", "invalid_utf8", "invalid_json", "not_an_object",
    "unsupported_schema_version", "unknown_event_type", "missing_field", "unexpected_field",
    "wrong_type", "unknown_category", "naive_timestamp", "timestamp_out_of_range",
    "invalid_value", "key_mismatch", "wrong_partition", "internal_error",
    # the worker's own repartition topic: a contact's hop older than its child's window
    # (12 months + CSPA_CHILD_WINDOW_GRACE_DAYS before the child's latest event)
    "child_window_passed",
)

# pydantic error kind -> our reason; anything not listed is "invalid_value".
_KIND_REASONS = {
    "json_invalid": "invalid_json",
    "json_type": "invalid_json",
    "model_type": "not_an_object",
    "model_attributes_type": "not_an_object",
    "missing": "missing_field",
    "union_tag_not_found": "missing_field",
    "extra_forbidden": "unexpected_field",
    "union_tag_invalid": "unknown_event_type",
    "unknown_category": "unknown_category",
    "timezone_aware": "naive_timestamp",
    "string_type": "wrong_type",
    "float_type": "wrong_type",
    "int_type": "wrong_type",
    "list_type": "wrong_type",
    "datetime_type": "wrong_type",
    "bool_type": "wrong_type",
    "dict_type": "wrong_type",
}


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message was refused. Both fields are safe to log (no payload values)."""

    reason: str
    detail: str


@dataclass(frozen=True)
class Limits:
    """Input bounds; see the matching fields of ``Settings``."""

    max_payload_bytes: int = 65_536
    max_future_skew_seconds: float = 600.0
    earliest: datetime = datetime(2000, 1, 1, tzinfo=UTC)

    @cached_property
    def earliest_ts(self) -> float:
        """``earliest`` as POSIX seconds (asked for every event)."""
        return self.earliest.timestamp()


#: Every event type: the tag pydantic puts first in a union error's location.
_TAGS = frozenset(event_type_of(model) for family in FAMILIES for model in family_types(family))


def _field_path(loc: tuple[int | str, ...]) -> str:
    # A path is the field's within the event (``recorded_at``, ``progressions.0.at``),
    # as docs/contract.md shows it: the union's tag (the event type) is dropped. The
    # path only ever holds contract names and list indices.
    if loc and loc[0] in _TAGS:
        loc = loc[1:]
    return ".".join(str(part) for part in loc) or "(body)"


def _classify(exc: ValidationError) -> Rejection:
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    first = errors[0]
    kind = first["type"]
    reason = _KIND_REASONS.get(kind, "invalid_value")
    loc = tuple(first["loc"])
    if not loc and kind in ("dict_type", "model_type"):
        reason = "not_an_object"
    if loc and loc[-1] == "schema_version" and kind == "literal_error":
        reason = "unsupported_schema_version"
    parts = []
    for err in errors[:5]:
        # An unexpected field's *name* comes from the payload: never echo it.
        path = "(extra field)" if err["type"] == "extra_forbidden" else _field_path(
            tuple(err["loc"]))
        parts.append(f"{path}: {err['type']}")
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return Rejection(reason, "; ".join(parts) + more)


class Decoder:
    """Validates the messages of one event family."""

    def __init__(self, family: str, taxonomy: Taxonomy, limits: Limits = Limits()) -> None:
        self.family = family
        self._adapter: TypeAdapter[Any] = TypeAdapter(FAMILIES[family])
        self._context = {"taxonomy": taxonomy}
        self._limits = limits

    def decode(self, key: bytes | None, value: bytes | None, now: float) -> Event | Rejection:
        """Validate one Kafka message. ``now`` is POSIX seconds (for the future bound)."""
        if not value:
            return Rejection("empty_payload", "message has no value")
        if len(value) > self._limits.max_payload_bytes:
            return Rejection("payload_too_large",
                             f"{len(value)} bytes > {self._limits.max_payload_bytes}")
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Rejection("invalid_utf8", f"byte offset {exc.start}")
        try:
            event: Event = self._adapter.validate_json(value, strict=True, context=self._context)
        except ValidationError as exc:
            return self._version_first(value, _classify(exc))
        return self._check_event(event, key, now)

    def _version_first(self, value: bytes, rejection: Rejection) -> Rejection:
        # A newer producer's event fails on many fields at once; the useful
        # reason is the version, so look for it before reporting field errors.
        if rejection.reason in ("invalid_json", "not_an_object", "unsupported_schema_version"):
            return rejection
        try:
            import orjson

            version = orjson.loads(value).get("schema_version")
        except Exception:  # noqa: BLE001 - only a hint; the original rejection stands
            return rejection
        if isinstance(version, int) and version > SCHEMA_VERSION:
            return Rejection("unsupported_schema_version",
                             f"schema_version {version} > supported {SCHEMA_VERSION}")
        return rejection

    def _check_event(self, event: Event, key: bytes | None, now: float) -> Event | Rejection:
        if key is None or key.decode("utf-8", "replace") != event.key:
            return Rejection("key_mismatch", "message key differs from the event's case key")
        return out_of_range(event, self._limits, now) or event


def out_of_range(event: Event, limits: Limits, now: float) -> Rejection | None:
    """Why an event's times are out of bounds, or None (shared with the producer API).

    A ``recorded_at`` in the future would outrank every later correction of its
    slot, so it is bounded like ``occurred_at`` (it is never before it).
    """
    ts = event.timestamp
    if ts < limits.earliest_ts:
        return Rejection("timestamp_out_of_range", "occurred_at before the earliest year")
    if ts > now + limits.max_future_skew_seconds:
        return Rejection("timestamp_out_of_range", "occurred_at in the future")
    if event.recorded_at is None:
        return None
    recorded = event.recorded_timestamp
    if recorded is not None and recorded > now + limits.max_future_skew_seconds:
        return Rejection("timestamp_out_of_range", "recorded_at in the future")
    return None
