"""The worker against a broker that demands SASL/SCRAM-SHA-512: exact figures over an
authenticated connection, and the broker refuses anyone without the credentials."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from stream.cli import ensure_topics
from stream.dev.broker import wait_ready
from stream.settings import Settings
from tests.faults.conftest import counted, produce_tracked, read_deadletter, wait_caught_up
from tests.groundtruth import expected, generate
from tests.integration.harness import WorkerProcess, make_broker, total
from tests.integration.test_pipeline import assert_figures_match

pytestmark = pytest.mark.integration

USER, PASSWORD = "cspa-worker", "s3cret-scram-Pa55"


@pytest.fixture
def scram_broker(tmp_path):
    yield from make_broker(tmp_path, sasl_scram=True, scram_user=USER, scram_password=PASSWORD)


async def _anonymous_producer(bootstrap: str, **kw) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=3000, **kw)
    try:
        await asyncio.wait_for(producer.start(), 15)
        await asyncio.wait_for(producer.send_and_wait("cspa.contacts.v1", b"x", key=b"y"), 10)
    finally:
        await producer.stop()


def test_worker_over_sasl_scram(scram_broker, tmp_path):
    bootstrap = scram_broker.bootstrap
    auth = scram_broker.config.client_kwargs()
    settings = Settings(broker=bootstrap, security_protocol="SASL_PLAINTEXT",
                        sasl_mechanism="SCRAM-SHA-512", sasl_username=USER,
                        sasl_password=PASSWORD)
    assert settings.kafka_client_kwargs() == auth
    ensure_topics(settings)

    # No credentials, or the wrong password: no metadata, no produce.
    with pytest.raises(TimeoutError):
        asyncio.run(wait_ready(bootstrap, 3))
    with pytest.raises(TimeoutError):
        asyncio.run(wait_ready(bootstrap, 3, **dict(auth, sasl_plain_password="wrong")))
    with pytest.raises((KafkaError, TimeoutError)):
        asyncio.run(_anonymous_producer(bootstrap))
    assert "during SASL handshake" in scram_broker.log_file.read_text()

    ds = generate(seed=512, start=date.today() - timedelta(days=90), days=80, contacts=600,
                  calls=600, enquiries=120, audits=40, bad=5)
    worker = WorkerProcess(bootstrap, tmp_path / "w1", env={
        "CSPA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "CSPA_SASL_MECHANISM": "SCRAM-SHA-512",
        "CSPA_SASL_USERNAME": USER, "CSPA_SASL_PASSWORD": PASSWORD})
    try:
        worker.start()
        produce_tracked(bootstrap, ds.messages, **auth)
        wait_caught_up(worker, timeout=120)
        samples = worker.samples()
        assert counted(samples, expected(ds)) == (0, 0)
        assert_figures_match(samples, expected(ds))
        assert total(samples, "cspa_events_rejected_total") == ds.bad
        dead = read_deadletter(bootstrap, ds.bad, **auth)  # the worker's producer too
        assert len({(d["partition"], d["offset"]) for d in dead}) == ds.bad
        for text in (worker.log_path.read_text(), worker.get("/metrics").decode(),
                     worker.get("/metrics/faust").decode()):
            assert PASSWORD not in text
    finally:
        worker.stop()
