"""The least-privilege ACL plan: what each role may do, the wire codes, the CLI, and the
table in docs/operations.md (which must be what ``python -m stream acls`` prints)."""

from __future__ import annotations

import re

import pytest

from stream.cli import main
from stream.contract import acls
from stream.contract.topics import load_topics
from stream.settings import ROOT

TOPICS = load_topics(app_id="cspa")  # with the app's own repartition topic
SOURCES = {"cspa.contacts.v1", "cspa.map-enquiries.v1", "cspa.calls.v1", "cspa.audits.v1",
           "cspa.feedback.v1"}
DEAD = "cspa.deadletter.v1"
KEYS = "cspa.feedback-keys.v1"
REKEY = "cspa-children-repartition"  # the worker's own repartition topic, app id "cspa"


def _plan(**kw: bool) -> list[acls.Acl]:
    return acls.plan(TOPICS, "cspa", acls.default_principals(), **kw)


def _rights(role: str, plan: list[acls.Acl] | None = None) -> set[tuple[str, str, str, str]]:
    """(resource, pattern, name, operation) of one role."""
    return {(a.resource, a.pattern, a.name, op) for a in plan or _plan() if a.role == role
            for op in a.operations}


def test_each_upstream_system_writes_only_its_own_topic_and_reads_nothing():
    own = {"case-system": "cspa.contacts.v1", "mailbox": "cspa.contacts.v1",
           "telephony": "cspa.calls.v1", "mash": "cspa.map-enquiries.v1",
           "audit": "cspa.audits.v1"}
    for system, topic in own.items():
        assert _rights(system) == {("topic", "literal", topic, "Write")}
    # the feedback system also writes each quote's key and its tombstone
    assert _rights("feedback") == {("topic", "literal", "cspa.feedback.v1", "Write"),
                                   ("topic", "literal", KEYS, "Write")}
    own["feedback"] = "cspa.feedback.v1"
    assert {a.name for a in _plan() if a.role in own} == SOURCES | {KEYS}  # every family


def test_the_worker_reads_sources_writes_its_own_topics_and_creates_nothing():
    worker = _rights("worker")
    assert {n for r, _, n, op in worker if r == "topic" and op == "Read"} \
        == SOURCES | {"cspa-"}
    assert {n for r, _, n, op in worker if op == "Write"} == {DEAD, "cspa-"}
    # changelogs, leader topic and the repartition topic: the app id's, by prefix only
    assert ("topic", "prefixed", "cspa-", "Write") in worker
    assert TOPICS["children"].name == REKEY and REKEY.startswith("cspa-")
    assert ("group", "literal", "cspa", "Read") in worker
    assert not {op for *_, op in worker} & {"Create", "Alter", "AlterConfigs"}
    assert not any(r == "transactional-id" for r, *_ in worker)
    eos = _rights("worker", _plan(exactly_once=True))
    assert eos - worker == {("transactional-id", "prefixed", "cspa-", "Write")}


def test_the_operator_reads_only_dead_letters_and_may_replay_to_sources():
    operator = _rights("operator")
    assert {n for _, _, n, op in operator if op == "Read"} == {DEAD}
    # the replay's marker goes to the dead-letter topic in the same transaction
    assert {n for _, _, n, op in operator if op == "Write"} \
        == SOURCES | {DEAD, "cspa-deadletter-replay"}
    assert {(r, n) for r, _, n, _ in operator if r == "transactional-id"} \
        == {("transactional-id", "cspa-deadletter-replay")}


def test_only_the_admin_creates_or_manages_acls():
    plan = _plan()
    creators = {a.role for a in plan if "Create" in a.operations or a.resource == "cluster"
                and "Alter" in a.operations}
    assert creators == {"admin"}
    assert {a.name for a in plan if a.role == "admin" and "Create" in a.operations} \
        == SOURCES | {DEAD, KEYS, "cspa-"}


def test_only_the_feedback_system_writes_quote_keys_and_the_worker_never_reads_them():
    plan = _plan()
    assert {a.role for a in plan if a.name == KEYS and "Write" in a.operations} == {"feedback"}
    assert {a.role for a in plan if a.name == KEYS and "Read" in a.operations} == {"admin"}


def test_bindings_carry_kafkas_wire_codes():
    acl = acls.Acl("worker", "User:w", "topic", "literal", "t", ("Read", "DescribeConfigs"))
    # TOPIC=2, LITERAL=3, READ=3, DESCRIBE_CONFIGS=10, ALLOW=3 (org.apache.kafka.common.acl)
    assert list(acls.bindings([acl])) == [(2, "t", 3, "User:w", "*", 3, 3),
                                          (2, "t", 3, "User:w", "*", 10, 3)]
    group = acls.Acl("worker", "User:w", "group", "prefixed", "g", ("Read",))
    assert list(acls.bindings([group])) == [(3, "g", 4, "User:w", "*", 3, 3)]


def test_cli_prints_the_table_and_takes_principals(capsys):
    assert main(["acls", "--principal", "worker=User:svc-cspa"]) == 0
    out = capsys.readouterr().out
    assert "| worker | `User:svc-cspa` | group | literal | `cspa` | Read |" in out
    assert "User:cspa-worker" not in out
    assert main(["acls", "--principal", "nobody=User:x"]) == 2
    assert "ROLE one of" in capsys.readouterr().err


@pytest.mark.parametrize("doc", ["docs/operations.md"])
def test_the_docs_table_is_what_acls_prints(doc, capsys):
    text = (ROOT / doc).read_text()
    block = re.search(r"<!-- acls:begin -->\n(.*?)<!-- acls:end -->", text, re.S)
    assert block is not None, f"{doc} has no acls block"
    assert main(["acls"]) == 0
    assert block.group(1) == capsys.readouterr().out
