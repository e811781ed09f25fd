"""Least-privilege Kafka ACLs: one principal per role, derived from the topic catalogue.

Roles: the **admin** creates topics and ACLs; the **worker** reads the source topics and
writes its changelogs (``{app_id}-`` topics) and the dead-letter topic under its consumer
group; each **upstream system** writes only its own family's topic; the **operator** reads
the dead-letter topic and may re-send to the source topics (dead-letter replay); the
**retention** role applies the retention schedule (``python -m stream retention``: it reads
every topic, deletes records by offset, rewrites and reconfigures the changelogs). Nobody
else may do anything: the broker runs with ``allow.everyone.if.no.acl.found=false``.

Kafka implies Describe from Read and Write (and DescribeConfigs from AlterConfigs), so
those are not listed where the stronger right is.

``plan`` is the rule (a plain function, printed by ``python -m stream acls`` and tabled in
docs/operations.md); ``apply`` creates the bindings through Kafka's CreateAcls request.
aiokafka 0.14's admin client has no ``create_acls`` method, but its protocol module has
the request (the version is negotiated per connection), so no Java tool is needed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped,unused-ignore]
from aiokafka.errors import for_code  # type: ignore[import-untyped,unused-ignore]
from aiokafka.protocol.admin import (  # type: ignore[import-untyped,unused-ignore]
    CreateAclsRequest,
)

from stream.contract.topics import DEADLETTER, FEEDBACK_KEYS, TopicSpec, event_families

#: the upstream systems and the event family each one writes (the contacts topic carries
#: the case system's events and the mailbox's ``email.resolved``: docs/security.md)
PRODUCERS: dict[str, str] = {
    "case-system": "contacts", "mailbox": "contacts", "telephony": "calls",
    "mash": "map_enquiries", "audit": "audits", "feedback": "feedback",
}
ROLES = ("admin", "worker", "operator", "retention", *PRODUCERS)
CLUSTER = "kafka-cluster"

# Kafka's wire codes (org.apache.kafka.common.acl / resource)
_RESOURCE = {"topic": 2, "group": 3, "cluster": 4, "transactional-id": 5}
_PATTERN = {"literal": 3, "prefixed": 4}
_OPERATION = {"Read": 3, "Write": 4, "Create": 5, "Delete": 6, "Alter": 7, "Describe": 8,
              "DescribeConfigs": 10, "AlterConfigs": 11}
_ALLOW, _ANY_HOST = 3, "*"


@dataclass(frozen=True)
class Acl:
    """Operations one principal is allowed on one resource pattern (from any host)."""

    role: str
    principal: str
    resource: str  # topic, group, cluster, transactional-id
    pattern: str  # literal, prefixed
    name: str
    operations: tuple[str, ...]


def default_principals() -> dict[str, str]:
    """``User:cspa-ROLE`` for every role (SCRAM user names ``cspa-ROLE``)."""
    return {role: f"User:cspa-{role}" for role in ROLES}


def plan(topics: Mapping[str, TopicSpec], app_id: str, principals: Mapping[str, str],
         exactly_once: bool = False) -> list[Acl]:
    """Every ACL of every role, in a fixed order (roles as in ``ROLES``)."""
    sources = [s.name for s in event_families(topics).values()]
    dead = topics[DEADLETTER].name
    keys = topics[FEEDBACK_KEYS].name
    every = [*sources, dead]
    out: list[Acl] = []

    def allow(role: str, resource: str, pattern: str, name: str, *ops: str) -> None:
        out.append(Acl(role, principals[role], resource, pattern, name, ops))

    allow("admin", "cluster", "literal", CLUSTER, "Alter", "Describe")  # manage ACLs
    # the app id's own topics (changelogs, the repartition topic "{app_id}-children-
    # repartition", Faust's leader topic) are granted by prefix, never by name
    for name in [*every, keys]:
        allow("admin", "topic", "literal", name, "Create", "Describe", "AlterConfigs")
    allow("admin", "topic", "prefixed", f"{app_id}-", "Create", "Describe", "AlterConfigs")
    for name in sources:
        allow("worker", "topic", "literal", name, "Read", "DescribeConfigs")
    allow("worker", "topic", "literal", dead, "Write")
    allow("worker", "topic", "prefixed", f"{app_id}-", "Read", "Write", "DescribeConfigs")
    allow("worker", "group", "literal", app_id, "Read")
    # default.replication.factor, for the start-time replication check
    allow("worker", "cluster", "literal", CLUSTER, "DescribeConfigs")
    if exactly_once:  # Faust's transactional ids: {group_id}-{group}-{partition}
        allow("worker", "transactional-id", "prefixed", f"{app_id}-", "Write")
    # deadletter replay: reads the dead letters, re-sends to the source topics and
    # records what it replayed on the dead-letter topic, in one transaction
    allow("operator", "topic", "literal", dead, "Read", "Write")
    for name in sources:
        allow("operator", "topic", "literal", name, "Write")
    allow("operator", "transactional-id", "literal", f"{app_id}-deadletter-replay", "Write")
    # retention: DeleteRecords on every topic it cuts, its changelogs copied forward and
    # their cleanup policy set, and whether the worker group has members (it refuses then)
    for name in every:  # (the repartition topic's folded hops: under the prefix)
        allow("retention", "topic", "literal", name, "Read", "Delete")
    allow("retention", "topic", "prefixed", f"{app_id}-", "Read", "Write", "Delete",
          "AlterConfigs")
    allow("retention", "group", "literal", app_id, "Describe")
    for system, family in PRODUCERS.items():
        allow(system, "topic", "literal", topics[family].name, "Write")
    # the feedback system writes each quote's key and its tombstone; the report reads
    # the keys (as the admin role here: no role of its own) to print approved quotes
    allow("feedback", "topic", "literal", keys, "Write")
    allow("admin", "topic", "literal", keys, "Read")
    return out


def table(acls: list[Acl]) -> str:
    """The ACLs as a Markdown table (printed by ``acls``, and in docs/operations.md)."""
    rows = ["| role | principal | resource | pattern | name | operations |",
            "|---|---|---|---|---|---|"]
    rows += [f"| {a.role} | `{a.principal}` | {a.resource} | {a.pattern} | `{a.name}` | "
             f"{', '.join(a.operations)} |" for a in acls]
    return "\n".join(rows) + "\n"


def bindings(acls: list[Acl]) -> Iterator[tuple[int, str, int, str, str, int, int]]:
    """Kafka's ACL bindings (one per operation) as CreateAcls creation fields."""
    for a in acls:
        for op in a.operations:
            yield (_RESOURCE[a.resource], a.name, _PATTERN[a.pattern], a.principal,
                   _ANY_HOST, _OPERATION[op], _ALLOW)


async def apply(bootstrap: str, acls: list[Acl], **client_kwargs: Any) -> int:
    """Create every binding (existing ones are kept: CreateAcls is idempotent); return how
    many were sent. Raises the broker's error, e.g. ``ClusterAuthorizationFailedError``
    for a principal that may not manage ACLs."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_kwargs)
    await admin.start()
    sent = 0
    try:
        for binding in bindings(acls):
            response = await admin._send_request(CreateAclsRequest(*binding))
            for code, message in response.creation_responses:
                if code != 0:
                    raise for_code(code)(f"create ACL {binding}: {message}")
            sent += 1
    finally:
        await admin.close()
    return sent
