"""A worker given CSPA_WEB_CONFIG_FILE (issue 26.3): a real Prometheus scrapes it over TLS
with basic auth; every route the app registers (enumerated from the app, Faust's own
included) answers 401 without credentials or with a wrong password; a client that does not
trust the worker's CA, or speaks plain HTTP, gets nothing; ``due`` passes the credentials
from the settings; /live, on its own port, stays open for probes.

The CA and the worker's certificate are made at run time (``tests.faults.tls``)."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import bcrypt
import pytest
from pydantic import SecretStr

from stream.cli import ensure_topics
from stream.dev.broker import LocalBroker
from stream.report.webclient import WebClient
from stream.settings import Settings
from tests.faults.tls import make_ca, make_server_cert
from tests.integration.harness import ROOT, WorkerProcess, registered_paths, wait_for
from tests.integration.prometheus import PrometheusProcess, have_prometheus

pytestmark = pytest.mark.integration

PASSWORDS = {"prometheus": "scrape-Zq4-passphrase", "report": "report-Hd7-passphrase"}


def status(url: str, context: ssl.SSLContext, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def tls(tmp_path: Path) -> dict[str, Path]:
    """CA, the worker's certificate and key, and its web configuration."""
    ca, ca_key = make_ca(tmp_path / "tls")
    cert, key = make_server_cert(tmp_path / "tls", ca_key, "worker")
    users = {u: bcrypt.hashpw(p.encode(), bcrypt.gensalt(10)).decode()
             for u, p in PASSWORDS.items()}
    config = tmp_path / "tls" / "web.yml"
    config.write_text(json.dumps({"tls_server_config": {"cert_file": cert.name,
                                                        "key_file": key.name},
                                  "basic_auth_users": users}))
    password = tmp_path / "tls" / "prometheus-password"
    password.write_text(PASSWORDS["prometheus"])
    report_password = tmp_path / "tls" / "report-password"
    report_password.write_text(PASSWORDS["report"] + "\n")
    return {"ca": ca, "config": config, "prometheus_password": password,
            "report_password": report_password}


def test_protected_worker_scraped_over_tls_and_closed_to_everyone_else(
        broker: LocalBroker, tmp_path: Path, tls: dict[str, Path]) -> None:
    ensure_topics(Settings(broker=broker.bootstrap))
    client = WebClient("report", SecretStr(PASSWORDS["report"]), tls["ca"])
    worker = WorkerProcess(broker.bootstrap, tmp_path / "w",
                           env={"CSPA_WEB_CONFIG_FILE": str(tls["config"])}, client=client)
    try:
        worker.start()
        assert worker.url.startswith("https://")
        paths = registered_paths(Settings(web_config_file=tls["config"]))
        assert {"/metrics", "/metrics/pipeline", "/metrics/faust", "/cells", "/figures", "/due",
                "/ready", "/health"} <= set(paths)
        trusted = ssl.create_default_context(cafile=str(tls["ca"]))
        wrong = {"Authorization": WebClient("report", SecretStr("wrong")).headers()[
            "Authorization"]}
        for path in paths:
            assert status(worker.url + path, trusted, {}) == 401, path
            assert status(worker.url + path, trusted, wrong) == 401, path
            assert status(worker.url + path, trusted, client.headers()) in (200, 503), path
        with urllib.request.urlopen(worker.live_url, timeout=5) as resp:  # probes: open
            assert resp.status == 200

        # A client trusting another CA fails the handshake; plain HTTP gets no answer.
        other_ca, _ = make_ca(tmp_path / "other", "someone-else")
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            WebClient("report", SecretStr(PASSWORDS["report"]), other_ca).get(
                worker.url + "/ready", 10)
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            WebClient("report", SecretStr(PASSWORDS["report"])).get(
                worker.url.replace("https:", "http:") + "/ready", 10)

        # due reads the credentials from the settings (a password file), or is refused.
        env = {**os.environ, "CSPA_WORKERS": worker.url, "CSPA_WEB_USERNAME": "report",
               "CSPA_WEB_PASSWORD_FILE": str(tls["report_password"]),
               "CSPA_WEB_CAFILE": str(tls["ca"])}
        due = subprocess.run([sys.executable, "-m", "stream", "due", "--json"], env=env,
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert due.returncode == 0 and json.loads(due.stdout)["complete"], due.stderr
        env.pop("CSPA_WEB_PASSWORD_FILE")
        due = subprocess.run([sys.executable, "-m", "stream", "due"], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
        assert due.returncode == 2 and "Unauthorized" in due.stderr, due.stderr

        if not have_prometheus():
            pytest.fail("prometheus and promtool are needed (tools/install-tools.sh)")
        scrape = {"scheme": "https",
                  "basic_auth": {"username": "prometheus",
                                 "password_file": str(tls["prometheus_password"])},
                  "tls_config": {"ca_file": str(tls["ca"])}}
        with PrometheusProcess(tmp_path / "prom", [worker.port], scrape=scrape) as prom:
            targets = prom.wait_for_targets(timeout=60)
            assert {t["scrapeUrl"].split(":")[0] for t in targets} == {"https"}
            assert prom.wait_for_sample('cspa_worker_ready{job="cspa-worker"}')
            assert prom.wait_for_sample('up{job="cspa-faust"} == 1')
        # The same Prometheus with a wrong password: every target down, 401.
        tls["prometheus_password"].write_text("not-the-password")
        with PrometheusProcess(tmp_path / "prom-wrong", [worker.port], scrape=scrape) as prom:
            down = wait_for(lambda: [t for t in prom.targets() if t["lastError"]], 30,
                            "a failed scrape")
            assert all("401" in t["lastError"] for t in down), down
    finally:
        worker.stop()
