"""The start-time check of the topics' replication: the worker refuses to run on topics
that keep fewer copies than configured.

The event topics are kept forever and hold the only copy of the history (the figures are
derived from them), so a topic with one replica loses it with one disk. Topics are
created with the configured replication (``stream.cli.ensure_topics``), but a topic
created earlier, by hand or by another tool keeps what it was given: this check finds it.

``refusal`` is the rule (a plain function); ``describe`` reads what the cluster holds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import (  # type: ignore[import-untyped,unused-ignore]
    ConfigResource,
    ConfigResourceType,
)
from aiokafka.errors import KafkaError  # type: ignore[import-untyped,unused-ignore]

log = logging.getLogger("cspa.worker")


@dataclass(frozen=True)
class TopicCopies:
    """How many copies a topic keeps, as the cluster reports it."""

    name: str
    #: replicas of its least replicated partition (0: the topic does not exist)
    replicas: int
    #: its effective ``min.insync.replicas``; None: not read
    min_insync: int | None = None


@dataclass(frozen=True)
class Wanted:
    """What the settings ask for; None: nothing to compare with."""

    #: replicas every topic must have: ``CSPA_REPLICATION_FACTOR``, or with -1 the
    #: cluster's ``default.replication.factor`` when the worker may read it
    replicas: int | None
    #: ``CSPA_MIN_INSYNC_REPLICAS``
    min_insync: int | None
    #: where ``replicas`` came from, for the refusal line
    source: str = "CSPA_REPLICATION_FACTOR"


def refusal(topics: Iterable[TopicCopies], wanted: Wanted) -> str | None:
    """One line saying why the worker must not start on these topics; None if it may.

    The first topic at fault is named (topics sorted by name), with how many others are.
    """
    faults = [line for topic in sorted(topics, key=lambda t: t.name)
              if (line := _fault(topic, wanted)) is not None]
    if not faults:
        return None
    more = f" (and {len(faults) - 1} more topics)" if len(faults) > 1 else ""
    return f"refusing to start: {faults[0]}{more}"


def _fault(topic: TopicCopies, wanted: Wanted) -> str | None:
    """What is wrong with one topic, if anything."""
    name, replicas, isr = topic.name, topic.replicas, topic.min_insync
    if replicas == 0:
        return f"topic {name} does not exist"
    if wanted.replicas is not None and replicas < wanted.replicas:
        return (f"topic {name} has {replicas} replicas, {wanted.source} is "
                f"{wanted.replicas}")
    if wanted.min_insync is not None and isr is not None and isr < wanted.min_insync:
        return (f"topic {name} has min.insync.replicas={isr}, CSPA_MIN_INSYNC_REPLICAS is "
                f"{wanted.min_insync}")
    if isr is not None and isr > replicas:
        return (f"topic {name} has min.insync.replicas={isr} but {replicas} replicas: "
                "no write with acks=all can succeed")
    return None


async def describe(bootstrap: str, names: list[str], with_configs: bool,
                   **client_kwargs: Any) -> tuple[list[TopicCopies], int | None]:
    """Each topic's copies, and the cluster's ``default.replication.factor`` (None if the
    worker may not read the brokers' configuration).

    ``with_configs``: also read each topic's ``min.insync.replicas``.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_kwargs)
    await admin.start()
    try:
        found = {t["topic"]: t for t in await admin.describe_topics(names)
                 if t["error_code"] == 0 and t["partitions"]}
        isr = await _min_insync(admin, list(found)) if with_configs and found else {}
        topics = [TopicCopies(n, min((len(p["replicas"]) for p in found[n]["partitions"]),
                                     default=0) if n in found else 0, isr.get(n))
                  for n in names]
        return topics, await _default_replication(admin)
    finally:
        await admin.close()


async def _min_insync(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    """Each topic's effective ``min.insync.replicas`` (its own, or the broker's default)."""
    resources = [ConfigResource(ConfigResourceType.TOPIC, n, {"min.insync.replicas": None})
                 for n in names]
    out: dict[str, int] = {}
    for response in await admin.describe_configs(resources):
        for _, _, _, name, entries in response.resources:
            value = next((e[1] for e in entries if e[0] == "min.insync.replicas"), None)
            if value is not None:
                out[name] = int(value)
    return out


async def _default_replication(admin: AIOKafkaAdminClient) -> int | None:
    """The ``default.replication.factor`` of a broker of the cluster, if readable."""
    brokers = (await admin.describe_cluster())["brokers"]
    if not brokers:
        return None
    node = str(brokers[0]["node_id"])
    resource = ConfigResource(ConfigResourceType.BROKER, node,
                              {"default.replication.factor": None})
    try:
        responses = await admin.describe_configs([resource])
    except KafkaError as exc:  # e.g. no DescribeConfigs right on the cluster
        log.warning("default.replication.factor not readable (%s): replicas not checked",
                    type(exc).__name__)
        return None
    for error, _, _, _, entries in responses[0].resources:
        if error == 0:
            return next((int(e[1]) for e in entries
                         if e[0] == "default.replication.factor"), None)
    log.warning("default.replication.factor not readable: replicas not checked")
    return None


def wanted(replication_factor: int, min_insync: int | None,
           cluster_default: int | None) -> Wanted:
    """What to compare with: the setting, or with -1 the cluster's default."""
    if replication_factor > 0:
        return Wanted(replication_factor, min_insync)
    return Wanted(cluster_default, min_insync, "the cluster's default.replication.factor")
