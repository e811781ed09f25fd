"""The worker's web configuration (CSPA_WEB_CONFIG_FILE): the file's format, basic auth
against bcrypt hashes, the refusal to bind beyond loopback unprotected, and every route of
the real app (Faust's own included) answering 401 without credentials."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import bcrypt
import pytest
from aiohttp.test_utils import TestClient, TestServer

from stream.settings import Settings
from stream.worker import webauth
from stream.worker.app import create_app
from stream.worker.webauth import BasicAuth, WebConfigError, load, refusal
from tests.faults.tls import make_ca, make_server_cert

PASSWORD = "correct horse battery staple"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()  # cost 4: a quick test


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def write_config(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc))  # JSON is YAML
    return path


def test_config_reads_tls_relative_to_the_file_and_users(tmp_path):
    ca, ca_key = make_ca(tmp_path)
    make_server_cert(tmp_path, ca_key, "web")
    config = load(write_config(tmp_path / "web.yml", {
        "tls_server_config": {"cert_file": "web.pem", "key_file": "web.key",
                              "client_ca_file": ca.name,
                              "client_auth_type": "RequireAndVerifyClientCert"},
        "basic_auth_users": {"prometheus": HASH}}))
    assert config.cert_file == tmp_path / "web.pem" and config.client_ca_file == ca
    assert config.users == {"prometheus": HASH.encode()}
    context = webauth.server_context(config)
    assert context is not None and context.verify_mode.name == "CERT_REQUIRED"


@pytest.mark.parametrize("doc, says", [
    ({"basic_auth_users": {"u": "plaintext-password"}}, "bcrypt hash"),
    ({"tls_server_config": {"cert_file": "a.pem"}}, "go together"),
    ({"tls_server_config": {"cert": "a.pem"}}, "tls_server_config takes"),
    ({"tls_server_config": {"cert_file": "a", "key_file": "b", "client_auth_type": "Maybe"}},
     "client_auth_type"),
    ({"basic_auth_user": {"u": HASH}}, "expected only"),
    ({}, "protects nothing"),
])
def test_a_bad_config_is_refused_naming_the_key_never_the_value(tmp_path, doc, says):
    path = write_config(tmp_path / "web.yml", doc)
    with pytest.raises(WebConfigError, match=says) as info:
        load(path)
    assert str(path) in str(info.value) and "plaintext-password" not in str(info.value)


def test_basic_auth_checks_user_and_password_and_caches_successes(monkeypatch):
    auth = BasicAuth({"prometheus": HASH.encode()})
    for header in (None, "", "Bearer x", "Basic !!!", basic("prometheus", "wrong"),
                   basic("nobody", PASSWORD), "Basic " + base64.b64encode(b"nocolon").decode()):
        assert not auth.allows(header), header
    checks = []
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda p, h: checks.append(1) or real(p, h))
    assert auth.allows(basic("prometheus", PASSWORD))
    assert auth.allows(basic("prometheus", PASSWORD))
    assert len(checks) == 1  # the second scrape skipped bcrypt
    assert not auth.allows(basic("prometheus", PASSWORD + "x"))  # not a prefix match
    assert PASSWORD.encode() not in repr(vars(auth)).encode()


@pytest.mark.parametrize("host, insecure, refused", [
    ("127.0.0.1", False, False), ("localhost", False, False), ("::1", False, False),
    ("0.0.0.0", False, True), ("10.1.2.3", False, True), ("0.0.0.0", True, False)])
def test_beyond_loopback_without_a_config_only_when_insecure(host, insecure, refused, caplog):
    settings = Settings(web_host=host, web_insecure=insecure)
    why = refusal(settings)
    assert (why is not None) == refused
    if refused:
        assert "CSPA_WEB_INSECURE" in why and "CSPA_WEB_CONFIG_FILE" in why
        with pytest.raises(WebConfigError):
            create_app(settings)
    elif insecure:
        with caplog.at_level(logging.WARNING, "cspa.worker"):
            create_app(settings)
        assert "open without authentication" in caplog.text


def app_routes(settings: Settings) -> tuple[object, list[str]]:
    """The aiohttp app of a worker built from ``settings``, once Faust has added its own
    routes (``init_server``, as at the web server's start), and every route's path."""
    worker = create_app(settings)
    web = worker.app.web
    web.init_server()
    paths = sorted({r.resource.canonical for r in web.web_app.router.routes()
                    if r.resource is not None})
    return web.web_app, paths


@pytest.mark.asyncio
async def test_every_route_answers_401_without_credentials(tmp_path):
    config = write_config(tmp_path / "web.yml", {"basic_auth_users": {"prometheus": HASH}})
    app, paths = app_routes(Settings(web_config_file=config))
    assert {"/metrics", "/metrics/pipeline", "/metrics/faust", "/cells", "/figures", "/due",
            "/ready", "/health"} <= set(paths)
    async with TestClient(TestServer(app)) as client:
        for path in paths:
            for header in ({}, {"Authorization": basic("prometheus", "wrong")}):
                response = await client.get(path, headers=header)
                assert response.status == 401, path
                assert response.headers["WWW-Authenticate"].startswith("Basic ")
        ok = await client.get("/metrics/pipeline",
                              headers={"Authorization": basic("prometheus", PASSWORD)})
        assert ok.status == 200 and "cspa_" in await ok.text()
