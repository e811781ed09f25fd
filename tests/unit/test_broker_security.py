"""The local broker's security settings: the SASL_SSL listener and the authorizer."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.dev.broker import BrokerConfig


def test_tls_listener_beside_the_scram_one(tmp_path: Path) -> None:
    cfg = BrokerConfig(tmp_path, port=1, controller_port=2, sasl_scram=True, ssl_port=3,
                       ssl_keystore=tmp_path / "ks.pem")
    props = cfg.properties()
    assert props["listeners"] == ("SASL_PLAINTEXT://127.0.0.1:1,SASL_SSL://127.0.0.1:3,"
                                  "CONTROLLER://127.0.0.1:2")
    assert "SASL_SSL:SASL_SSL" in props["listener.security.protocol.map"].split(",")
    assert props["ssl.keystore.type"] == "PEM"
    assert props["ssl.keystore.location"] == str((tmp_path / "ks.pem").resolve())
    assert "ScramLoginModule" in props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    assert "authorizer.class.name" not in props


def test_tls_needs_scram_and_a_keystore(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ssl_port needs"):
        BrokerConfig(tmp_path, sasl_scram=True, ssl_port=3).properties()
    with pytest.raises(ValueError, match="ssl_port needs"):
        BrokerConfig(tmp_path, ssl_port=3, ssl_keystore=tmp_path / "ks.pem").properties()


def test_authorizer_denies_by_default(tmp_path: Path) -> None:
    props = BrokerConfig(tmp_path, sasl_scram=True, scram_user="boss",
                         authorizer=True).properties()
    assert props["authorizer.class.name"] == \
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"].split(";") == ["User:boss", "User:ANONYMOUS"]
