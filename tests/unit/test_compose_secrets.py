"""The compose stack's secrets (issue 26.3, 26.6): every secret is a Docker secret made by
tools/compose_secrets.py, the worker is protected by a web configuration the tool writes,
and Prometheus and the report's clients hold passwords that configuration accepts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import bcrypt
import pytest
import yaml  # type: ignore[import-untyped]
from cryptography import x509

from stream.worker.webauth import load

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
PROMETHEUS = yaml.safe_load((ROOT / "grafana" / "prometheus" / "prometheus.yml").read_text())
RUN = "/run/secrets/"


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    spec = importlib.util.spec_from_file_location("compose_secrets",
                                                  ROOT / "tools" / "compose_secrets.py")
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path_factory.mktemp("secrets")
    tool.make(out)
    return out


def _secret(service: str, path: str) -> str:
    """The secret mounted at ``path`` in ``service`` (it must be mounted there)."""
    assert path.startswith(RUN), path
    name = path.removeprefix(RUN)
    assert name in COMPOSE["services"][service].get("secrets", []), (service, name)
    return name


def test_the_tool_makes_every_file_compose_reads(made):
    files = {spec["file"] for spec in COMPOSE["secrets"].values()}
    assert all(f.startswith("./secrets/") for f in files)
    assert {f.removeprefix("./secrets/") for f in files} == {p.name for p in made.iterdir()}
    assert "/secrets/" in (ROOT / ".gitignore").read_text().splitlines()


def test_worker_protected_and_prometheus_holds_a_password_it_accepts(made, tmp_path):
    worker = COMPOSE["services"]["worker"]
    config_name = _secret("worker", worker["environment"]["CSPA_WEB_CONFIG_FILE"])
    # The config names its certificate files as mounted: read them from the made ones.
    text = (made / Path(COMPOSE["secrets"][config_name]["file"]).name).read_text()
    for name, spec in COMPOSE["secrets"].items():
        if RUN + name in text:
            _secret("worker", RUN + name)
            text = text.replace(RUN + name, str(made / Path(spec["file"]).name))
    (tmp_path / "web.yml").write_text(text)
    config = load(tmp_path / "web.yml")
    assert config.cert_file is not None  # TLS
    for job in PROMETHEUS["scrape_configs"]:
        if job["job_name"] == "prometheus":
            continue
        assert job["scheme"] == "https"
        auth, tls = job["basic_auth"], job["tls_config"]
        password = made / Path(COMPOSE["secrets"][_secret(
            "prometheus", auth["password_file"])]["file"]).name
        assert bcrypt.checkpw(password.read_bytes().strip(), config.users[auth["username"]])
        ca = made / Path(COMPOSE["secrets"][_secret("prometheus", tls["ca_file"])]["file"]).name
        # The worker's certificate is the CA's, for the name Prometheus checks.
        assert config.cert_file is not None
        cert = x509.load_pem_x509_certificate(config.cert_file.read_bytes())
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.read_bytes()))
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert tls["server_name"] in names.get_values_for_type(x509.DNSName)
    client = COMPOSE["services"]["simulator"]["environment"]
    password = made / Path(COMPOSE["secrets"][_secret(
        "simulator", client["CSPA_WEB_PASSWORD_FILE"])]["file"]).name
    assert bcrypt.checkpw(password.read_bytes().strip(),
                          config.users[client["CSPA_WEB_USERNAME"]])
    _secret("simulator", client["CSPA_WEB_CAFILE"])


def test_no_secret_value_in_the_compose_environment():
    for name, service in COMPOSE["services"].items():
        for key in service.get("environment", {}) or {}:
            if "PASSWORD" in key:
                assert key.endswith("_FILE") or key.endswith("__FILE"), (name, key)
