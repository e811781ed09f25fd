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
from tests.faults.scram import exact_worker, make_scram_broker, scram_env, settings_of
from tests.faults.tls import make_broker_tls, make_ca
from tests.groundtruth import generate
from tests.integration.harness import free_port

pytestmark = [pytest.mark.integration, pytest.mark.faults]

PASSWORD = "s3cret-scram-Tl5"


@pytest.fixture
def tls_broker(tmp_path):
    tls = make_broker_tls(tmp_path / "tls")
    port = free_port()
    for _ in make_scram_broker(tmp_path, PASSWORD, ssl_port=port, ssl_keystore=tls.keystore):
        yield f"127.0.0.1:{port}", tls


def test_worker_over_sasl_ssl(tls_broker, tmp_path, caplog):
    bootstrap, tls = tls_broker
    env = scram_env("SASL_SSL", PASSWORD, cafile=tls.cafile)
    settings = settings_of(bootstrap, env)
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
    with exact_worker(bootstrap, tmp_path / "w1", env, ds):
        pass  # the run's checks are the test: over TLS, the producers' too
