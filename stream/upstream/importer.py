"""Backfill importer: CSV or JSON Lines exports of upstream systems -> contract events.

A TOML *mapping* per source system (``topics/mappings/*.toml``) says which export
column holds which field, how times are written (formats, time zone), which columns
identify people or cases, and how export values translate to taxonomy codes. Each row
becomes one or more events (``kind = "contacts"``: contact.received and, once decided,
contact.decided; ``kind = "calls"``: call.queued, call.answered or call.abandoned, and
call.ended; ``kind = "early_help"``: early_help.allocated; ``kind = "feedback"``: a
feedback or complaints log's feedback.received, and for a complaint its complaint.extended
and complaint.responded, never a quote: free text is not imported; ``kind = "audits"``:
audit.graded, naming the advisor when known; ``kind = "learning_reviews"`` and
``kind = "dip_samples"``: the two sheets of a QA activity log; ``kind = "advisors"``: a
staff roster's spells, advisor.joined and, once over, advisor.left):

* identifiers (child ids, call ids) become pseudonymous keys, HMAC-SHA256 with a secret
  key, so raw ids never leave the importer and are never logged or quoted;
* event ids derive from the mapping's name and the keyed row identity, so importing the
  same file again yields the same ids and the worker counts nothing twice;
* a mapping may name a "recorded at" (last modified) column: it becomes ``recorded_at``
  and is part of the event ids, so a corrected export's changed rows are new versions
  that replace the old (the later recorded wins) and its unchanged rows are duplicates;
* a bad row is reported (row number and a reason that never quotes a value) in a CSV
  error file and the import goes on; a malformed file (wrong delimiter, missing
  columns, not UTF-8, no row matching the date format) stops with a clear message.

Row numbers are spreadsheet rows: the CSV header is row 1. JSON Lines rows are lines.
"""

from __future__ import annotations

import csv
import hashlib
import re
import sys
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

import orjson
from pydantic import ValidationError

from stream.contract.events import Event
from stream.contract.keys import SecretError, load_secret, pseudonymous_key
from stream.contract.taxonomy import Taxonomy, load_taxonomy
from stream.settings import Settings
from stream.upstream.producer import EventProducer, EventValidator

Row = dict[str, str]
#: Key of a row dict that carries a structural problem instead of fields.
ROW_ERROR = "!error"
#: Fields each kind understands -> the taxonomy set of category fields ("" otherwise).
KINDS: dict[str, dict[str, str]] = {
    "contacts": {"contact_id": "", "child_id": "", "contact_date": "", "source": "source_code",
                 "channel": "channel", "team": "team", "outcome": "contact_outcome",
                 "outcome_date": "", "pathway": "pathway", "recorded_at": ""},
    "calls": {"call_id": "", "queue": "call_queue", "offered": "", "answered": "",
              "abandoned": "", "wait": "", "talk": "", "recorded_at": ""},
    "early_help": {"contact_id": "", "allocated": "", "recorded_at": ""},
    "feedback": {"feedback_id": "", "received": "", "from_whom": "feedback_from",
                 "agency": "agency", "kind": "feedback_kind", "channel": "channel",
                 "recorded_at": "", "responded": "", "extended": ""},
    "audits": {"audit_id": "", "graded": "", "team": "team", "grade": "grade",
               "advisor_id": "", "recorded_at": ""},
    "learning_reviews": {"review_id": "", "held": "", "team": "team", "theme": "qa_theme",
                         "recorded_at": ""},
    "dip_samples": {"sample_id": "", "taken": "", "sampler_role": "sampler_role",
                    "theme": "qa_theme", "cases": "", "recorded_at": ""},
    "advisors": {"advisor_id": "", "team": "team", "joined": "", "left": "",
                 "recorded_at": ""},
}
#: cases one dip sample may look at (the contract's bounds of ``cases_sampled``)
_MAX_CASES = 1000
_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_DATE_CHECK_ROWS = 10
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


class ImportFormatError(ValueError):
    """The file or the mapping cannot be imported at all (the message says why)."""


@dataclass(frozen=True)
class ColumnMapping:
    """A source system's export layout (see ``topics/mappings/README`` in the TOML files)."""

    name: str
    kind: str
    source_system: str
    columns: dict[str, str]
    identifiers: frozenset[str] = frozenset()
    required: tuple[str, ...] = ()
    row_key: tuple[str, ...] = ()
    file_format: str = "csv"
    delimiter: str = ","
    encoding: str = "utf-8"
    time_formats: tuple[str, ...] = ("%Y-%m-%d %H:%M:%S",)
    timezone: str = "Europe/London"
    defaults: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)

    def header(self, name: str) -> str:
        """The export's column name for a field (used in messages instead of values)."""
        return self.columns.get(name, name)


def load_mapping(path: Path) -> ColumnMapping:
    """Read and check a mapping file."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ImportFormatError(f"mapping {path}: {exc}") from exc
    kind = str(raw.get("kind", ""))
    if kind not in KINDS:
        raise ImportFormatError(f"mapping {path}: kind must be one of {sorted(KINDS)}")
    name = str(raw.get("name", ""))
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,40}", name):
        raise ImportFormatError(f"mapping {path}: name must be 1-40 of A-Z a-z 0-9 . _ -")
    columns = {str(k): str(v) for k, v in raw.get("columns", {}).items()}
    file, times = raw.get("file", {}), raw.get("time", {})
    mapping = ColumnMapping(
        name=name, kind=kind, source_system=str(raw.get("source_system", "importer")),
        columns=columns, identifiers=frozenset(raw.get("identifiers", ())),
        required=tuple(raw.get("required", ())), row_key=tuple(raw.get("row_key", ())),
        file_format=str(file.get("format", "csv")), delimiter=str(file.get("delimiter", ",")),
        encoding=str(file.get("encoding", "utf-8")),
        time_formats=tuple(times.get("formats", ColumnMapping.time_formats)),
        timezone=str(times.get("timezone", "Europe/London")),
        defaults={str(k): str(v) for k, v in raw.get("defaults", {}).items()},
        values={str(f): {str(k).strip().casefold(): str(v) for k, v in table.items()}
                for f, table in raw.get("values", {}).items()})
    named = set(columns) | mapping.identifiers | set(mapping.required) | set(mapping.row_key)
    unknown = sorted(named - set(KINDS[kind]))
    if unknown:
        raise ImportFormatError(f"mapping {path}: fields {unknown} are not {kind} fields")
    unmapped = sorted((set(mapping.required) | set(mapping.row_key)) - set(columns))
    if unmapped:
        raise ImportFormatError(f"mapping {path}: fields {unmapped} have no column")
    if mapping.file_format not in ("csv", "jsonl") or len(mapping.delimiter) != 1:
        raise ImportFormatError(f"mapping {path}: [file] needs format csv|jsonl, 1-char delimiter")
    return mapping


# --- reading ----------------------------------------------------------------------------------
def _lines(fh: BinaryIO, path: Path, encoding: str,
           progress: Callable[[int], None] | None) -> Iterator[str]:
    offset = 0
    for number, raw in enumerate(fh, start=1):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            hint = " (it looks like UTF-16)" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
            raise ImportFormatError(
                f"{path.name}: not valid {encoding}{hint}: byte 0x{raw[exc.start]:02x} at byte "
                f"offset {offset + exc.start} (line {number}); re-export the file as {encoding} "
                f"or set [file] encoding in the mapping") from None
        if number == 1:
            text = text.removeprefix("\ufeff")
        offset += len(raw)
        if progress is not None:
            progress(offset)
        yield text


def _check_header(path: Path, header: list[str], mapping: ColumnMapping, first_line: str) -> None:
    missing = [c for c in mapping.columns.values() if c not in header]
    if not missing:
        return
    seen = max(_DELIMITERS, key=first_line.count)
    expected = _DELIMITERS.get(mapping.delimiter, repr(mapping.delimiter))
    hint = ""
    if seen != mapping.delimiter and first_line.count(seen) > first_line.count(mapping.delimiter):
        hint = (f"; the header looks {_DELIMITERS[seen]}-delimited but the mapping expects "
                f"{expected}: set [file] delimiter or re-export")
    names = ", ".join(repr(c) for c in missing)
    raise ImportFormatError(f"{path.name}: missing columns {names} (header has {len(header)} "
                            f"column{'s' if len(header) != 1 else ''}{hint})")


def read_rows(path: Path, mapping: ColumnMapping,
              progress: Callable[[int], None] | None = None) -> Iterator[tuple[int, Row]]:
    """(row number, field -> text) for every data row; the header is checked at once.

    Structural problems of one row come back as ``{ROW_ERROR: reason}``; file-level ones
    raise ImportFormatError (when the header is read, or on a line that is not UTF-8).
    """
    path = Path(path)
    fh = path.open("rb")
    lines = _lines(fh, path, mapping.encoding, progress)
    try:
        first = next(lines, "")
        if mapping.file_format == "csv":
            header = [h.strip() for h in next(csv.reader([first], delimiter=mapping.delimiter),
                                               [])]
            _check_header(path, header, mapping, first)
            rows = _csv_rows(lines, header, mapping)
        else:
            _check_jsonl_head(path, first, mapping)
            rows = _jsonl_rows(lines, first, mapping)
    except BaseException:
        fh.close()
        raise
    return _closing(rows, fh)


def _closing(rows: Iterator[tuple[int, Row]], fh: BinaryIO) -> Iterator[tuple[int, Row]]:
    with fh:
        yield from rows


def _csv_rows(lines: Iterator[str], header: list[str],
              mapping: ColumnMapping) -> Iterator[tuple[int, Row]]:
    where = {f: header.index(c) for f, c in mapping.columns.items()}
    for number, values in enumerate(csv.reader(lines, delimiter=mapping.delimiter), start=2):
        if not values or values == [""]:
            continue
        if len(values) != len(header):
            yield number, {ROW_ERROR: f"row has {len(values)} fields, the header {len(header)}"}
        else:
            yield number, {f: values[i].strip() for f, i in where.items()}


def _check_jsonl_head(path: Path, first: str, mapping: ColumnMapping) -> None:
    try:
        head = orjson.loads(first) if first.strip() else {}
    except orjson.JSONDecodeError:
        head = None
    if not isinstance(head, dict) or (head and not set(mapping.columns.values()) & set(head)):
        raise ImportFormatError(f"{path.name}: line 1 is not a JSON object with the mapped "
                                "members: is the file really JSON Lines ([file] format)?")


def _jsonl_rows(lines: Iterator[str], first: str,
                mapping: ColumnMapping) -> Iterator[tuple[int, Row]]:
    for number, line in enumerate(_chain(first, lines), start=1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            yield number, {ROW_ERROR: "not valid JSON"}
            continue
        if not isinstance(obj, dict):
            yield number, {ROW_ERROR: "not a JSON object"}
            continue
        yield number, {f: "" if obj.get(c) is None else str(obj[c]).strip()
                       for f, c in mapping.columns.items()}


def _chain(first: str, rest: Iterable[str]) -> Iterator[str]:
    yield first
    yield from rest


# --- rows -> events ---------------------------------------------------------------------------
class RowError(ValueError):
    """One row cannot be imported. The reason names columns, never their values."""

    def __init__(self, reason: str, bad_format: str | None = None) -> None:
        super().__init__(reason)
        self.bad_format = bad_format  # the field whose text did not match the time formats


@dataclass(frozen=True)
class RowResult:
    """The events of one row, or why it was rejected."""

    row: int
    events: tuple[Event, ...] = ()
    error: str | None = None


def pseudonymise(key: bytes, kind: str, value: str) -> str:
    """The pseudonymous key of an identifier (``stream.contract.keys``, the one recipe)."""
    return pseudonymous_key(key, kind, value)


def _validation_reason(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['type']}" for e in errors[:3]]
    return "event invalid: " + "; ".join(parts)


class _Converter:
    """Turns the fields of one row into validated events."""

    def __init__(self, mapping: ColumnMapping, key: bytes, taxonomy: Taxonomy,
                 earliest: datetime, latest: datetime) -> None:
        self.m, self.key, self.earliest, self.latest = mapping, key, earliest, latest
        #: the row's "recorded at" (last modified) time, when the mapping names one
        self.recorded: datetime | None = None
        self.validator = EventValidator(taxonomy)
        self.tz = ZoneInfo(mapping.timezone)
        self.codes = {c: {code.casefold(): code for code in taxonomy.labels[c]} | {
            label.casefold(): code for code, label in taxonomy.labels[c].items()}
            for c in set(KINDS[mapping.kind].values()) - {""}}

    def text(self, row: Row, name: str, needed: bool = False) -> str:
        value = row.get(name, "") or self.m.defaults.get(name, "")
        if not value and (needed or name in self.m.required):
            raise RowError(f"{self.m.header(name)}: empty")
        return value

    def when(self, row: Row, name: str, needed: bool = False) -> datetime | None:
        raw = self.text(row, name, needed)
        if not raw:
            return None
        for fmt in self.m.time_formats:
            try:
                parsed = datetime.strptime(raw, fmt)
            except ValueError:
                continue
            # Naive local wall-clock time -> aware (fold 0 for the repeated autumn hour).
            moment = parsed if parsed.tzinfo else parsed.replace(tzinfo=self.tz)
            if not self.earliest <= moment <= self.latest:
                raise RowError(f"{self.m.header(name)}: outside {self.earliest.year} to now")
            return moment
        raise RowError(f"{self.m.header(name)}: not a date/time in the format "
                       f"{' or '.join(self.m.time_formats)}", bad_format=name)

    def code(self, row: Row, name: str, needed: bool = False) -> str | None:
        raw = self.text(row, name, needed)
        if not raw:
            return None
        key = raw.casefold()
        code = self.m.values.get(name, {}).get(key) or self.codes[KINDS[self.m.kind][name]].get(key)
        if code is None:
            raise RowError(f"{self.m.header(name)}: value not in [values.{name}] of the mapping "
                           f"nor a '{KINDS[self.m.kind][name]}' code or label")
        return code

    def seconds(self, row: Row, name: str) -> float | None:
        raw = self.text(row, name)
        if not raw:
            return None
        try:
            parts = [float(p) for p in raw.split(":")]
        except ValueError:
            raise RowError(f"{self.m.header(name)}: not seconds or [h:]mm:ss") from None
        value = float(sum(p * 60 ** i for i, p in enumerate(reversed(parts))))
        if len(parts) > 3 or not 0 <= value <= 86_400:
            raise RowError(f"{self.m.header(name)}: not between 0 and 86400 seconds")
        return value

    def identity(self, row: Row, id_name: str, kind: str) -> str:
        raw_id = row.get(id_name, "")
        if raw_id:  # one key for one case, whichever system exports it
            return pseudonymise(self.key, kind, raw_id)
        if not self.m.row_key:
            raise RowError(f"{self.m.header(id_name)}: empty")
        # No id: the row's own fields, which only this source system's export has.
        parts = "\x1f".join(row.get(f, "") for f in self.m.row_key)
        return pseudonymise(self.key, f"{kind}-row", f"{self.m.source_system}:{parts}")

    def event(self, family: str, case: str, event_type: str, when: datetime,
              **fields: Any) -> Event:
        recorded = self.recorded
        identity = f"{case}:{event_type}"
        if recorded is not None:  # each version of a row is an event of its own
            if recorded < when:
                raise RowError(f"{self.m.header('recorded_at')}: before the time of "
                               f"{event_type}")
            identity += f":{recorded.astimezone(UTC).isoformat()}"
        digest = hashlib.blake2b(identity.encode(), digest_size=12).hexdigest()
        data = {"event_id": f"imp:{self.m.name}:{digest}", "schema_version": 1,
                "occurred_at": when, "recorded_at": recorded,
                "source_system": self.m.source_system, "event_type": event_type, **fields}
        return self.validator.build(family, {k: v for k, v in data.items() if v is not None})

    def row(self, row: Row) -> list[Event]:
        """The events of one row, stamped with its "recorded at" time if the mapping has one."""
        self.recorded = self.when(row, "recorded_at") if "recorded_at" in self.m.columns else None
        return {"contacts": self.contacts, "calls": self.calls, "early_help": self.early_help,
                "feedback": self.feedback, "audits": self.audits,
                "learning_reviews": self.learning_reviews, "dip_samples": self.dip_samples,
                "advisors": self.advisors}[self.m.kind](row)

    def contacts(self, row: Row) -> list[Event]:
        received = self.when(row, "contact_date", needed=True)
        assert received is not None
        key = self.identity(row, "contact_id", "contact")
        child = row.get("child_id", "")
        events = [self.event(
            "contacts", key, "contact.received", received, contact_key=key,
            child_key=pseudonymise(self.key, "child", child) if child else None,
            channel=self.code(row, "channel", True), source_code=self.code(row, "source", True),
            team=self.code(row, "team") or "rfs")]
        outcome, decided = self.code(row, "outcome"), self.when(row, "outcome_date")
        if outcome is None and decided is None:
            return events  # still open when exported
        h = self.m.header
        if outcome is None or decided is None:
            empty, other = ("outcome", "outcome_date") if outcome is None else (
                "outcome_date", "outcome")
            raise RowError(f"{h(empty)}: empty while {h(other)} is set")
        if decided < received:
            raise RowError(f"{h('outcome_date')}: before {h('contact_date')}")
        events.append(self.event("contacts", key, "contact.decided", decided, contact_key=key,
                                 outcome=outcome, pathway=self.code(row, "pathway")))
        return events

    def early_help(self, row: Row) -> list[Event]:
        """An early-help module's allocation of a contact (keyed like the case system's)."""
        allocated = self.when(row, "allocated", needed=True)
        assert allocated is not None
        key = self.identity(row, "contact_id", "contact")
        return [self.event("contacts", key, "early_help.allocated", allocated, contact_key=key)]

    def feedback(self, row: Row) -> list[Event]:
        """A feedback or complaints log's entry: who gave it, the agency of a partner's."""
        received = self.when(row, "received", needed=True)
        assert received is not None
        key = self.identity(row, "feedback_id", "feedback")
        from_whom, agency = self.code(row, "from_whom", True), self.code(row, "agency")
        if (agency is None) == (from_whom == "partner_agency"):
            raise RowError(f"{self.m.header('agency')}: "
                           + ("empty for a partner agency's feedback" if agency is None
                              else "set for feedback not from a partner agency"))
        kind = self.code(row, "kind", True)
        events = [self.event("feedback", key, "feedback.received", received, feedback_key=key,
                             from_whom=from_whom, agency=agency, kind=kind,
                             channel=self.code(row, "channel", True))]
        return events + self.complaint(row, key, received, kind == "complaint")

    def complaint(self, row: Row, key: str, received: datetime, is_complaint: bool) -> list[Event]:
        """A complaint's extension and stage 1 response, when the log has them. An extension
        after the response or the 10-day deadline is kept: the rule counts it for nothing."""
        events = []
        for name, event_type in (("extended", "complaint.extended"),
                                 ("responded", "complaint.responded")):
            when = self.when(row, name)
            if when is None:
                continue
            if not is_complaint:
                raise RowError(f"{self.m.header(name)}: set for feedback that is not a complaint")
            if when < received:
                raise RowError(f"{self.m.header(name)}: before {self.m.header('received')}")
            events.append(self.event("feedback", key, event_type, when, feedback_key=key))
        return events

    def audits(self, row: Row) -> list[Event]:
        """An audit log's graded audit, naming the advisor audited when the log does."""
        graded = self.when(row, "graded", needed=True)
        assert graded is not None
        key = self.identity(row, "audit_id", "audit")
        return [self.event("audits", key, "audit.graded", graded, audit_key=key,
                           team=self.code(row, "team", True), grade=self.code(row, "grade", True),
                           advisor_key=self.advisor(row) or None)]

    def advisor(self, row: Row, needed: bool = False) -> str:
        """The advisor's key from their staff number: the same in the roster and the audit
        log, and in any live producer's events (kind ``advisor``); "" when not given."""
        staff_id = self.text(row, "advisor_id", needed)
        return pseudonymise(self.key, "advisor", staff_id) if staff_id else ""

    def learning_reviews(self, row: Row) -> list[Event]:
        """A QA activity log's learning review: the team that held it, on a theme."""
        held = self.when(row, "held", needed=True)
        assert held is not None
        key = self.identity(row, "review_id", "review")
        return [self.event("audits", key, "learning_review.held", held, review_key=key,
                           team=self.code(row, "team", True),
                           theme=self.code(row, "theme", True))]

    def dip_samples(self, row: Row) -> list[Event]:
        """A QA activity log's dip sample: who took it, the theme, the cases looked at."""
        taken = self.when(row, "taken", needed=True)
        assert taken is not None
        key = self.identity(row, "sample_id", "sample")
        return [self.event("audits", key, "dip_sample.taken", taken, sample_key=key,
                           sampler_role=self.code(row, "sampler_role", True),
                           theme=self.code(row, "theme", True), cases_sampled=self.cases(row))]

    def cases(self, row: Row) -> int:
        raw = self.text(row, "cases", needed=True)
        if not raw.isdigit() or not 1 <= int(raw) <= _MAX_CASES:
            raise RowError(f"{self.m.header('cases')}: not a whole number from 1 to {_MAX_CASES}")
        return int(raw)

    def advisors(self, row: Row) -> list[Event]:
        """A staff roster's spell of an advisor in a team: joined, and left once it ended.

        An advisor has a row per spell (a move is the old team's spell ending and the new
        one's starting). The spell's event ids derive from the advisor, team and join
        date, so spells never share one; the worker's record keeps each team's latest
        join and leave (docs/contract.md).
        """
        joined, left = self.when(row, "joined", needed=True), self.when(row, "left")
        assert joined is not None
        if left is not None and left < joined:
            raise RowError(f"{self.m.header('left')}: before {self.m.header('joined')}")
        key, team = self.advisor(row, needed=True), self.code(row, "team", True)
        spell = f"{key}:{team}:{joined.astimezone(UTC).isoformat()}"
        events = [self.event("audits", spell, "advisor.joined", joined, advisor_key=key,
                             team=team)]
        if left is not None:
            events.append(self.event("audits", spell, "advisor.left", left, advisor_key=key,
                                     team=team))
        return events

    def calls(self, row: Row) -> list[Event]:
        offered = self.when(row, "offered", needed=True)
        assert offered is not None
        key = self.identity(row, "call_id", "call")
        base = {"call_key": key, "queue": self.code(row, "queue", True)}
        answered, abandoned = self.when(row, "answered"), self.when(row, "abandoned")
        h = self.m.header
        if (answered is None) == (abandoned is None):
            raise RowError(f"exactly one of {h('answered')} and {h('abandoned')} must be set")
        end = answered or abandoned
        assert end is not None
        if end < offered:
            raise RowError(f"{h('answered' if answered else 'abandoned')}: before {h('offered')}")
        wait = self.seconds(row, "wait")
        wait = (end - offered).total_seconds() if wait is None else wait
        events = [self.event("calls", key, "call.queued", offered, **base)]
        if answered is None:
            return [*events, self.event("calls", key, "call.abandoned", end, wait_seconds=wait,
                                        **base)]
        events.append(self.event("calls", key, "call.answered", end, wait_seconds=wait, **base))
        talk = self.seconds(row, "talk")
        if talk is not None:
            events.append(self.event("calls", key, "call.ended", end + timedelta(seconds=talk),
                                     handle_seconds=talk, **base))
        return events


def rows_to_events(rows: Iterable[tuple[int, Row]], mapping: ColumnMapping, *, key: bytes,
                   taxonomy: Taxonomy, now: datetime | None = None,
                   earliest: datetime = _EARLIEST,
                   future_skew_seconds: float = 600.0) -> Iterator[RowResult]:
    """The events of each row, or its rejection; raises ImportFormatError when none of the
    first rows' times match the mapping's formats (the formats are wrong, not the rows)."""
    latest = (now or datetime.now(UTC)) + timedelta(seconds=future_skew_seconds)
    conv = _Converter(mapping, key, taxonomy, earliest, latest)
    convert = conv.row
    bad_formats: list[str | None] = []
    for number, row in rows:
        if ROW_ERROR in row:
            yield RowResult(number, error=row[ROW_ERROR])
            continue
        try:
            for name in mapping.required:
                conv.text(row, name)
            events = tuple(convert(row))
        except RowError as exc:
            bad_formats.append(exc.bad_format)
            yield RowResult(number, error=str(exc))
        except ValidationError as exc:
            bad_formats.append(None)
            yield RowResult(number, error=_validation_reason(exc))
        else:
            bad_formats.append(None)
            yield RowResult(number, events)
        if len(bad_formats) == _DATE_CHECK_ROWS and len(set(bad_formats)) == 1 and bad_formats[0]:
            raise ImportFormatError(
                f"none of the first {_DATE_CHECK_ROWS} rows has a {mapping.header(bad_formats[0])}"
                f" in the format {' or '.join(mapping.time_formats)}: check [time] formats in "
                f"the mapping (day/month order, seconds, ISO 'T')")


# --- the import --------------------------------------------------------------------------------
def load_key(key_file: Path | None, settings: Settings | None = None) -> bytes:
    """The HMAC key: a file holding at least 16 bytes (hex digits are decoded)."""
    path = key_file or getattr(settings, "pseudonym_key_file", None)
    if path is None:
        raise ImportFormatError("no pseudonymisation key: pass --key-file FILE (a secret of at "
                                "least 16 bytes, e.g. 64 hex digits; keep it out of the repo)")
    try:
        return load_secret(Path(path))
    except SecretError as exc:
        raise ImportFormatError(str(exc)) from None


class ProgressBar:
    """A one-line progress bar with rate and ETA on stderr, drawn only on a terminal."""

    def __init__(self, total_bytes: int, label: str, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.total, self.label, self.done, self.rows = max(total_bytes, 1), label, 0, 0
        self.started = self.drawn = time.monotonic()

    def update(self, done_bytes: int) -> None:
        self.done = done_bytes
        if self.enabled and time.monotonic() - self.drawn >= 0.2:
            self.draw()

    def draw(self) -> None:
        self.drawn = time.monotonic()
        elapsed = max(self.drawn - self.started, 1e-6)
        share = min(self.done / self.total, 1.0)
        eta = elapsed * (1 - share) / share if share > 0 else 0.0
        bar = "#" * int(share * 30)
        self.stream.write(f"\r{self.label} [{bar:<30}] {share:6.1%} {self.rows:,} rows "
                          f"{self.rows / elapsed:,.0f} rows/s ETA {int(eta) // 60}:"
                          f"{int(eta) % 60:02d} ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.draw()
            self.stream.write("\n")


@dataclass
class ImportSummary:
    """Counts of one import."""

    path: Path
    rows_read: int = 0
    rows_imported: int = 0
    rows_rejected: int = 0
    events_sent: int = 0
    error_path: Path | None = None
    seconds: float = 0.0

    def __str__(self) -> str:
        errors = f" (see {self.error_path})" if self.rows_rejected and self.error_path else ""
        return (f"imported {self.path.name}: {self.rows_read} rows in, {self.rows_imported} "
                f"imported, {self.rows_rejected} rejected{errors}; {self.events_sent} events "
                f"out in {self.seconds:.1f} s")


async def import_file(settings: Settings, path: Path, mapping_path: Path,
                      error_path: Path | None = None,
                      key_file: Path | None = None) -> ImportSummary:
    """Import one export: read, convert, send; bad rows go to the error file (row, reason).

    The error file defaults to ``<file>.errors.csv`` and is removed when it stays empty.
    """
    path, started = Path(path), time.monotonic()
    mapping, key = load_mapping(Path(mapping_path)), load_key(key_file, settings)
    taxonomy = load_taxonomy(settings.taxonomy_path)
    errors_to = Path(error_path) if error_path else path.with_name(path.name + ".errors.csv")
    summary = ImportSummary(path, error_path=errors_to)
    bar = ProgressBar(path.stat().st_size, path.name)
    rows = read_rows(path, mapping, progress=bar.update)  # the header is checked here
    results = rows_to_events(
        rows, mapping, key=key, taxonomy=taxonomy,
        earliest=datetime(settings.earliest_event_year, 1, 1, tzinfo=UTC),
        future_skew_seconds=settings.max_future_skew_seconds)
    async with EventProducer(settings) as producer:
        with errors_to.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["row", "reason"])
            for result in results:
                summary.rows_read += 1
                bar.rows += 1
                if result.error is not None:
                    writer.writerow([result.row, result.error])
                    summary.rows_rejected += 1
                    continue
                for event in result.events:
                    await producer.send(event)
                summary.rows_imported += 1
                summary.events_sent += len(result.events)
        await producer.flush()
    bar.close()
    if not summary.rows_rejected and error_path is None:
        errors_to.unlink(missing_ok=True)
        summary.error_path = None
    summary.seconds = time.monotonic() - started
    print(summary, file=sys.stderr)
    return summary
