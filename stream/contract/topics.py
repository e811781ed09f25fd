"""The topic catalogue (``topics/topics.toml``): names, partitions, retention."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from stream.settings import ROOT

DEFAULT_TOPICS = ROOT / "topics" / "topics.toml"
DEADLETTER = "deadletter"


@dataclass(frozen=True)
class TopicSpec:
    """One topic of the contract."""

    family: str
    name: str
    key: str
    partitions: int
    retention_ms: int
    event_types: tuple[str, ...]

    def kafka_config(self) -> dict[str, str]:
        """Topic-level Kafka configuration used when the topic is created."""
        return {"retention.ms": str(self.retention_ms), "cleanup.policy": "delete"}


def load_topics(path: Path = DEFAULT_TOPICS) -> Mapping[str, TopicSpec]:
    """Read the catalogue, keyed by family (``contacts``, ``calls``... ``deadletter``)."""
    with path.open("rb") as fh:
        raw = tomllib.load(fh)
    return {family: TopicSpec(family, entry["topic"], entry["key"], int(entry["partitions"]),
                              int(entry["retention_ms"]), tuple(entry["event_types"]))
            for family, entry in raw.items()}


def event_families(topics: Mapping[str, TopicSpec]) -> dict[str, TopicSpec]:
    """The topics that carry events (everything but the dead-letter topic)."""
    return {f: spec for f, spec in topics.items() if f != DEADLETTER}
