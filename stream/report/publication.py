"""Reproducible publication: "data as at", the snapshot of a publication, what changed since.

Every rendering states its ``DataAsAt``: when the workers were asked (UTC) and, per
source partition, the next offset their figures reflect (every event before it is
counted, none after). ``report --publish`` keeps a ``Snapshot`` of what it published
(the figures exactly as the JSON report prints them, its months, definitions, running
totals' first month and data as at) in ``CSPA_PUBLISHED_DIR``, one JSON file per
publication named by its time. ``report --since-published FILE`` recomputes the same
report (same months, definitions and first month) from the workers now and lists every
published figure whose printed value has changed (``changes``).

The events behind a change: the events appended since the snapshot to the source topics
that feed the figure's section, summed over their partitions (offset now - offset then).
A figure moves only through events on those topics (a correction, a late event, a
re-delivery), so this bounds what moved it; it counts every event on the topics, those
that moved other figures (or none, a duplicate) too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

#: section of the report -> the topic families whose events feed it
SECTION_FAMILIES: dict[str, tuple[str, ...]] = {
    "rfs": ("contacts", "calls"),
    "map": ("map_enquiries",),
    "info_advice": ("map_enquiries",),
    "commentary": ("contacts", "map_enquiries"),
    "audits": ("audits",),
    "since": ("contacts", "map_enquiries"),
}
Figures = dict[str, Any]  # "section/table/row/column[/count]" -> value as printed


@dataclass(frozen=True)
class DataAsAt:
    """When the figures were read, and the next offset of every source partition."""

    time: datetime  # UTC
    offsets: Mapping[str, Mapping[int, int]]  # topic -> partition -> next offset

    def stamp(self) -> str:
        """``2026-12-03T10:15:02Z``: the time, to the second, in UTC."""
        return self.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def line(self) -> str:
        """One line for every rendering: the time and each partition's next offset."""
        parts = "; ".join(f"{topic} " + " ".join(f"[{p}] {o}" for p, o in sorted(ps.items()))
                          for topic, ps in sorted(self.offsets.items()))
        return (f"Data as at {self.stamp()}: the events before these offsets "
                f"(topic [partition] next offset): {parts or 'none'}")

    def to_json(self) -> dict[str, Any]:
        return {"time": self.stamp(),
                "offsets": {t: {str(p): o for p, o in sorted(ps.items())}
                            for t, ps in sorted(self.offsets.items())}}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> DataAsAt:
        time = datetime.fromisoformat(str(doc["time"]).replace("Z", "+00:00"))
        return cls(time, {str(t): {int(p): int(o) for p, o in ps.items()}
                          for t, ps in doc["offsets"].items()})

    def events_since(self, earlier: DataAsAt, topics: tuple[str, ...]) -> int:
        """Events appended to ``topics`` between ``earlier`` and this (never negative)."""
        return sum(max(0, offset - earlier.offsets.get(topic, {}).get(partition, 0))
                   for topic in topics for partition, offset in self.offsets.get(topic,
                                                                                  {}).items())


def figures_of(doc: Mapping[str, Any]) -> Figures:
    """The JSON report's figures (and running totals) as "section/table/row/column"."""
    out: Figures = {}
    for section in doc["sections"]:
        for table in section["tables"]:
            columns = [c["key"] for c in table["columns"]]
            for row in table["rows"]:
                base = f"{section['key']}/{table['key']}/{row['key']}"
                for i, col in enumerate(columns):
                    out[f"{base}/{col}"] = row["values"][i]
                    if "counts" in row:
                        out[f"{base}/{col}/count"] = row["counts"][i]
    since = doc.get("since")
    if since:
        span = f"{since['first']}..{since['last']}"
        for fig in since["figures"]:
            for name in ("percent", "within", "judged"):
                out[f"since/{fig['key']}/{name}/{span}"] = fig[name]
    return out


@dataclass(frozen=True)
class Snapshot:
    """What one publication published."""

    months: tuple[str, ...]
    definitions: Mapping[str, Any]  # the report's definitions (as its JSON prints them)
    since: str | None  # first month of the running totals, if any
    as_at: DataAsAt
    figures: Figures

    def to_json(self) -> dict[str, Any]:
        return {"published_at": self.as_at.stamp(), "months": list(self.months),
                "definitions": dict(self.definitions), "since": self.since,
                "data_as_at": self.as_at.to_json(), "figures": self.figures}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Snapshot:
        return cls(tuple(doc["months"]), doc["definitions"], doc.get("since"),
                   DataAsAt.from_json(doc["data_as_at"]), dict(doc["figures"]))


def save(snapshot: Snapshot, directory: Path) -> Path:
    """Write ``snapshot`` as ``<directory>/<time>.json`` (never over an earlier one)."""
    directory.mkdir(parents=True, exist_ok=True)
    name = snapshot.as_at.time.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = directory / f"{name}.json"
    with path.open("xb") as fh:  # "x": two publications never share a file
        fh.write(orjson.dumps(snapshot.to_json(), option=orjson.OPT_INDENT_2))
    return path


def load(path: Path) -> Snapshot:
    """A snapshot written by ``save``; ValueError when the file is not one."""
    try:
        return Snapshot.from_json(orjson.loads(path.read_bytes()))
    except (KeyError, TypeError, AttributeError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a published-report snapshot "
                         f"({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class Change:
    """One published figure whose printed value is not what was published."""

    figure: str
    old: Any  # None: absent then (or an average of nothing)
    new: Any
    events: int  # events on the figure's topics since the snapshot


def changes(snapshot: Snapshot, now: Figures, as_at: DataAsAt,
            topics: Mapping[str, str]) -> list[Change]:
    """Every figure published in ``snapshot`` (or printed now) whose value differs.

    ``topics``: family -> topic name (the catalogue).
    """
    out: list[Change] = []
    for figure in sorted(snapshot.figures.keys() | now.keys()):
        old, new = snapshot.figures.get(figure), now.get(figure)
        if old != new:
            families = SECTION_FAMILIES.get(figure.split("/")[0], tuple(topics))
            names = tuple(topics[f] for f in families if f in topics)
            out.append(Change(figure, old, new, as_at.events_since(snapshot.as_at, names)))
    return out


def changes_text(path: Path, snapshot: Snapshot, as_at: DataAsAt,
                 found: list[Change]) -> str:
    """The list for people: one line per changed figure."""
    lines = [f"Published {snapshot.as_at.stamp()} ({path.name}), months "
             f"{snapshot.months[0]}..{snapshot.months[-1]}.",
             f"Then: {snapshot.as_at.line()}", f"Now:  {as_at.line()}"]
    if not found:
        return "\n".join([*lines, "No published figure has changed.", ""])
    lines.append(f"{len(found)} published figure(s) changed (old -> new, events on the "
                 "figure's topics since):")
    width = max(len(c.figure) for c in found)
    lines += [f"  {c.figure:<{width}}  {_shown(c.old)} -> {_shown(c.new)}  ({c.events} "
              "events)" for c in found]
    return "\n".join([*lines, ""])


def changes_json(path: Path, snapshot: Snapshot, as_at: DataAsAt, found: list[Change]) -> str:
    doc = {"snapshot": path.name, "published_at": snapshot.as_at.stamp(),
           "months": list(snapshot.months), "data_as_at_then": snapshot.as_at.to_json(),
           "data_as_at_now": as_at.to_json(),
           "changes": [{"figure": c.figure, "old": c.old, "new": c.new, "events": c.events}
                       for c in found]}
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n"


def _shown(value: Any) -> str:
    return "(none)" if value is None else str(value)
