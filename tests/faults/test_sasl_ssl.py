"""The worker against a broker's SASL_SSL listener (TLS, then SCRAM-SHA-512): exact figures
over an encrypted, authenticated connection; a client that does not trust the broker's CA
is refused, and so is a plaintext client on the TLS port.

The CA and the broker's certificate are made at run time (``tests.faults.tls``)."""

from __future__ import annotations

import asyncio
import ssl
from datetime import date, timedelta

import pytest

from stream.cli import ensure_topics
from stream.dev.broker import wait_ready
from stream.settings import Settings
from tests.faults.conftest import counted, produce_tracked, read_deadletter, wait_caught_up
from tests.faults.tls import make_broker_tls, make_ca
from tests.groundtruth import expected, generate
from tests.integration.harness import WorkerProcess, free_port, make_broker, total
from tests.integration.test_pipeline import assert_figures_match

pytestmark = [pytest.mark.integration, pytest.mark.faults]

USER, PASSWORD = "cspa-worker", "s3cret-scram-Tl5"


@pytest.fixture
def tls_broker(tmp_path):
    tls = make_broker_tls(tmp_path / "tls")
    port = free_port()
    for broker in make_broker(tmp_path, sasl_scram=True, scram_user=USER,
                              scram_password=PASSWORD, ssl_port=port, ssl_keystore=tls.keystore):
        yield broker, f"127.0.0.1:{port}", tls


def test_worker_over_sasl_ssl(tls_broker, tmp_path, caplog):
    _, bootstrap, tls = tls_broker
    settings = Settings(broker=bootstrap, security_protocol="SASL_SSL",
                        sasl_mechanism="SCRAM-SHA-512", sasl_username=USER,
                        sasl_password=PASSWORD, ssl_cafile=tls.cafile)
    auth = settings.kafka_client_kwargs()
    assert isinstance(auth["ssl_context"], ssl.SSLContext)
    ensure_topics(settings)  # over TLS: the right CA and password are let in
    asyncio.run(wait_ready(bootstrap, 10, **auth))

    # A CA the client trusts that did not sign the broker's certificate: no connection.
    other_ca, _ = make_ca(tmp_path / "other", "someone-else")
    untrusted = dict(auth, ssl_context=ssl.create_default_context(cafile=str(other_ca)))
    caplog.clear()
    with pytest.raises(TimeoutError):
        asyncio.run(wait_ready(bootstrap, 3, **untrusted))
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
    # Plaintext on the TLS port, with the right password or none at all: the broker
    # closes the connection (its TLS handshake fails).
    plain = {k: v for k, v in auth.items() if k != "ssl_context"}
    for kwargs in (dict(plain, security_protocol="SASL_PLAINTEXT"), {}):
        caplog.clear()
        with pytest.raises(TimeoutError):
            asyncio.run(wait_ready(bootstrap, 3, **kwargs))
        assert "closed" in caplog.text and "CERTIFICATE" not in caplog.text

    ds = generate(seed=513, start=date.today() - timedelta(days=90), days=80, contacts=300,
                  calls=300, enquiries=60, audits=20, bad=4)
    worker = WorkerProcess(bootstrap, tmp_path / "w1", env={
        "CSPA_SECURITY_PROTOCOL": "SASL_SSL", "CSPA_SASL_MECHANISM": "SCRAM-SHA-512",
        "CSPA_SASL_USERNAME": USER, "CSPA_SASL_PASSWORD": PASSWORD,
        "CSPA_SSL_CAFILE": str(tls.cafile)})
    try:
        worker.start()
        produce_tracked(bootstrap, ds.messages, **auth)
        wait_caught_up(worker, timeout=120)
        samples = worker.samples()
        assert counted(samples, expected(ds)) == (0, 0)
        assert_figures_match(samples, expected(ds))
        assert total(samples, "cspa_events_rejected_total") == ds.bad
        dead = read_deadletter(bootstrap, ds.bad, **auth)  # the worker's producer, over TLS
        assert len({(d["partition"], d["offset"]) for d in dead}) == ds.bad
    finally:
        worker.stop()
