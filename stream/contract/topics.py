"""The topic catalogue (``topics/topics.toml``): names, partitions, retention."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from stream.settings import ROOT

DEFAULT_TOPICS = ROOT / "topics" / "topics.toml"
DEADLETTER = "deadletter"
#: the compacted topic of the quotes' keys (``stream.contract.quotes``): no events
FEEDBACK_KEYS = "feedback_keys"
#: the worker's own repartition topic: contacts re-keyed by child (``stream.worker.rekey``)
CHILDREN = "children"


@dataclass(frozen=True)
class TopicSpec:
    """One topic of the contract."""

    family: str
    name: str
    key: str
    partitions: int
    retention_ms: int
    event_types: tuple[str, ...]
    #: "delete" for event topics; "compact" for the key topic (latest key per quote)
    cleanup_policy: str = "delete"
    #: written and read by the worker only (the repartition topic): no upstream producer
    internal: bool = False

    def kafka_config(self) -> dict[str, str]:
        """Topic-level Kafka configuration used when the topic is created.

        A compacted topic rolls and compacts within the hour and keeps a tombstone an
        hour: a withdrawn quote's key leaves the broker's disks within about two hours.
        """
        config = {"retention.ms": str(self.retention_ms), "cleanup.policy": self.cleanup_policy}
        if self.cleanup_policy == "compact":
            config |= {"segment.ms": "3600000", "max.compaction.lag.ms": "3600000",
                       "delete.retention.ms": "3600000"}
        return config


def load_topics(path: Path = DEFAULT_TOPICS, app_id: str | None = None
                ) -> Mapping[str, TopicSpec]:
    """Read the catalogue, keyed by family (``contacts``, ``calls``... ``deadletter``).

    An internal topic (the worker's repartition topic) belongs to one app id, as its
    changelogs do: its name is a template on ``{app_id}``. With ``app_id`` it is named for
    that app id; without, it is left out (the contract's topics only), so no caller can
    create, grant or check it under another app id's name.
    """
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    return {family: TopicSpec(family, _name(entry["topic"], app_id), entry["key"],
                              int(entry["partitions"]), int(entry["retention_ms"]),
                              tuple(entry["event_types"]),
                              str(entry.get("cleanup_policy", "delete")),
                              bool(entry.get("internal", False)))
            for family, entry in raw.items()
            if app_id is not None or not entry.get("internal", False)}


def repartition_topic(app_id: str, path: Path = DEFAULT_TOPICS) -> str:
    """The name of the repartition topic of the workers of ``app_id``."""
    return load_topics(path, app_id)[CHILDREN].name


def is_internal(name: str, path: Path = DEFAULT_TOPICS) -> bool:
    """Whether ``name`` is an internal topic of some app id (a repartition topic): what
    the workers write there are their own hops, never events an upstream system sent."""
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    for entry in raw.values():
        if entry.get("internal", False):
            prefix, _, suffix = str(entry["topic"]).partition("{app_id}")
            if (name.startswith(prefix) and name.endswith(suffix)
                    and len(name) > len(prefix) + len(suffix)):
                return True
    return False


def _name(template: str, app_id: str | None) -> str:
    return template.format(app_id=app_id) if "{app_id}" in template else template


def event_families(topics: Mapping[str, TopicSpec]) -> dict[str, TopicSpec]:
    """The topics that carry events (all but the dead-letter and the key topic)."""
    return {f: spec for f, spec in topics.items() if f != DEADLETTER and spec.event_types}


def folded(topics: Mapping[str, TopicSpec]) -> dict[str, TopicSpec]:
    """Every topic the worker folds into a records table, each with its changelog and
    progress markers: the event topics, then its own repartition topic."""
    out = event_families(topics)
    if CHILDREN in topics:
        out[CHILDREN] = topics[CHILDREN]
    return out
