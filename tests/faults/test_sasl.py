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
from tests.faults.scram import exact_worker, make_scram_broker, scram_env, settings_of
from tests.groundtruth import generate

pytestmark = pytest.mark.integration

PASSWORD = "s3cret-scram-Pa55"
ENV = scram_env("SASL_PLAINTEXT", PASSWORD)


@pytest.fixture
def scram_broker(tmp_path):
    yield from make_scram_broker(tmp_path, PASSWORD)


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
    settings = settings_of(bootstrap, ENV)
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
    with exact_worker(bootstrap, tmp_path / "w1", ENV, ds) as worker:
        for text in (worker.log_path.read_text(), worker.get("/metrics").decode(),
                     worker.get("/metrics/faust").decode()):
            assert PASSWORD not in text
