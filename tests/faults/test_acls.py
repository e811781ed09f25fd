"""Least privilege on a broker running KRaft's StandardAuthorizer (deny when no ACL
matches), with the ACLs ``python -m stream acls --apply`` creates: one SCRAM principal
per role. The worker, which may not create topics, refuses to start before the admin has
created them, then folds exactly; each upstream system writes its own family's topic and
no other (the telephony system cannot write contact decisions); a producer reads nothing;
the operator reads the dead letters."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, TopicAuthorizationFailedError

from stream.cli import ensure_topics, worker_topics
from stream.settings import Settings
from tests.faults.conftest import (
    PARTITIONS,
    counted,
    produce_tracked,
    read_deadletter,
    wait_caught_up,
)
from tests.groundtruth import TOPICS, expected, generate
from tests.integration.harness import ROOT, WorkerProcess, make_broker, total
from tests.integration.test_pipeline import assert_figures_match

pytestmark = [pytest.mark.integration, pytest.mark.faults]

ADMIN = "cspa-admin"
#: SCRAM users of the roles (name -> password), the principals ``acls`` names by default
USERS = {f"cspa-{role}": f"pw-{role}-9x" for role in
         ("worker", "operator", "case-system", "mailbox", "telephony", "mash", "audit")}
#: who writes each source topic in this test (written down here, not read from the code)
WRITER = {TOPICS["contacts"]: "cspa-case-system", TOPICS["calls"]: "cspa-telephony",
          TOPICS["map_enquiries"]: "cspa-mash", TOPICS["audits"]: "cspa-audit"}


@pytest.fixture
def acl_broker(tmp_path):
    yield from make_broker(tmp_path, sasl_scram=True, scram_user=ADMIN,
                           scram_password="pw-admin-9x", scram_users=USERS, authorizer=True)


def _env(user: str, password: str) -> dict[str, str]:
    return {"CSPA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "CSPA_SASL_MECHANISM": "SCRAM-SHA-512",
            "CSPA_SASL_USERNAME": user, "CSPA_SASL_PASSWORD": password}


def _auth(user: str) -> dict[str, Any]:
    password = USERS.get(user, "pw-admin-9x")
    return {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": user, "sasl_plain_password": password}


def _cli(bootstrap: str, user: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CSPA_BROKER": bootstrap, **_env(user, "pw-admin-9x")}
    return subprocess.run([sys.executable, "-m", "stream", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


async def _write(bootstrap: str, topic: str, **kw: Any) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=5000, **kw)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"{}", key=b"k")
    finally:
        await producer.stop()


async def _read(bootstrap: str, topic: str, seconds: float, **kw: Any) -> int | str:
    """Records of ``topic`` read from the start within ``seconds``, or the name of the
    authorisation error: raised by a fetch (a topic the principal may describe) or
    reported in the metadata (one it may not even describe, where nothing is raised)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                request_timeout_ms=5000, **kw)
    await consumer.start()
    got = 0
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS.get(topic, 1))])
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            got += sum(len(records) for records in batch.values())
        if topic in consumer._client.cluster.unauthorized_topics:
            return f"{TopicAuthorizationFailedError.__name__} (metadata), {got} records"
    except KafkaError as exc:
        return type(exc).__name__
    finally:
        await consumer.stop()
    return got


def test_least_privilege(acl_broker, tmp_path):
    bootstrap = acl_broker.bootstrap
    admin = Settings(broker=bootstrap, security_protocol="SASL_PLAINTEXT",
                     sasl_username=ADMIN, sasl_password="pw-admin-9x")
    worker_env = _env("cspa-worker", USERS["cspa-worker"]) | {"CSPA_CREATE_TOPICS": "false"}

    # Before the admin has created the topics the worker refuses to start, naming one.
    env = {**os.environ, "CSPA_BROKER": bootstrap, **worker_env}
    refused = subprocess.run([sys.executable, "-m", "stream", "worker"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120, check=False)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert "does not exist" in refused.stderr and TOPICS["contacts"] in refused.stderr

    ensure_topics(admin)
    applied = _cli(bootstrap, ADMIN, "acls", "--apply")
    assert applied.returncode == 0, applied.stderr
    assert "applied" in applied.stdout
    # A principal that may not manage ACLs cannot grant itself any.
    sneaky = subprocess.run([sys.executable, "-m", "stream", "acls", "--apply"], cwd=ROOT,
                            env={**env, **_env("cspa-telephony", USERS["cspa-telephony"])},
                            capture_output=True, text=True, timeout=120, check=False)
    assert sneaky.returncode == 1 and "Authorization" in sneaky.stderr, sneaky.stderr
    # The worker has no Create right.
    worker_settings = Settings(broker=bootstrap, security_protocol="SASL_PLAINTEXT",
                               sasl_username="cspa-worker", sasl_password=USERS["cspa-worker"])
    with pytest.raises(TopicAuthorizationFailedError):
        ensure_topics(worker_settings)

    # The telephony system cannot write contact decisions (or anything but calls).
    for topic in (TOPICS["contacts"], TOPICS["deadletter"], TOPICS["audits"]):
        with pytest.raises(TopicAuthorizationFailedError):
            asyncio.run(_write(bootstrap, topic, **_auth("cspa-telephony")))

    ds = generate(seed=514, start=date.today() - timedelta(days=90), days=80, contacts=300,
                  calls=300, enquiries=60, audits=20, bad=4)
    worker = WorkerProcess(bootstrap, tmp_path / "w1", env=worker_env)
    try:
        worker.start()
        for topic, writer in WRITER.items():  # each system its own topic
            produce_tracked(bootstrap, [m for m in ds.messages if m.topic == topic],
                            **_auth(writer))
        wait_caught_up(worker, timeout=120)
        samples = worker.samples()
        assert counted(samples, expected(ds)) == (0, 0)
        assert_figures_match(samples, expected(ds))
        assert total(samples, "cspa_events_rejected_total") == ds.bad
        # The worker wrote the dead letters; the operator reads them.
        dead = read_deadletter(bootstrap, ds.bad, **_auth("cspa-operator"))
        assert len({(d["partition"], d["offset"]) for d in dead}) == ds.bad
    finally:
        worker.stop()

    # A producer principal reads no topic, not even its own; the worker reads its sources.
    assert asyncio.run(_read(bootstrap, TOPICS["contacts"], 3, **_auth("cspa-worker"))) > 0
    for topic in worker_topics(admin):
        got = asyncio.run(_read(bootstrap, topic, 2, **_auth("cspa-telephony")))
        assert got in ("TopicAuthorizationFailedError",
                       "TopicAuthorizationFailedError (metadata), 0 records"), (topic, got)
    calls = asyncio.run(_read(bootstrap, TOPICS["calls"], 2, **_auth("cspa-telephony")))
    assert calls == "TopicAuthorizationFailedError"  # its own topic: it may describe it
