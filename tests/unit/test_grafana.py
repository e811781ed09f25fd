"""Dashboards, Prometheus, Alertmanager, Grafana provisioning and the compose stack.

They must agree with the code that generates them, with promtool, with the metrics the
worker really exports, and with each other (ports, paths, service names, versions).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `grafana` is a folder of the repository, not an installed package
    sys.path.insert(0, str(ROOT))

from grafana.dashboards_src import build  # noqa: E402
from stream.dev import broker as devbroker  # noqa: E402
from tests.tools import require  # noqa: E402

GRAFANA = ROOT / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
PROMETHEUS = GRAFANA / "prometheus"
COMPOSE = ROOT / "docker-compose.yml"

# Values standing in for template variables when a query is checked with promtool.
SAMPLES = {"month": "(2019-08|2019-09)", "rule": "contact_decision"}
GLOBALS = {"${__to:date:YYYY-MM}": "2019-08", "$__rate_interval": "5m",
           "${__rate_interval}": "5m", "$__range": "1h", "${__range}": "1h",
           "$__interval": "1m", "${__interval}": "1m"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "inf", "nan", "Inf", "NaN", "atan2"}
# Series Prometheus itself makes: scrape health and alert state.
BUILTIN = {"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds",
           "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
           "scrape_series_added"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def need(command: str) -> str:
    return require(command)


def load_yaml(path: Path) -> object:
    """YAML via PyYAML, or via the Python that runs Debian's docker-compose (which has it)."""
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        compose = Path(need("docker-compose"))
        python = compose.read_text().splitlines()[0].removeprefix("#!").split()[0]
        out = subprocess.run(
            [python, "-c", "import json, sys, yaml; "
             "json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)", str(path)],
            check=True, capture_output=True, text=True)
        return json.loads(out.stdout)
    return yaml.safe_load(path.read_text())


def dashboards() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def panels(board: dict) -> Iterator[dict]:
    """Every panel that shows data (rows skipped; panels of collapsed rows included)."""
    for panel in board.get("panels", []):
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def substituted(expr: str, board: dict) -> str:
    """The query as Grafana would send it, with sample values for the template variables."""
    for name, value in GLOBALS.items():
        expr = expr.replace(name, value)
    for var in board.get("templating", {}).get("list", []):
        name = var["name"]
        value = var["current"]["value"] if var["type"] == "custom" else SAMPLES.get(name)
        assert value is not None, f"add a sample value for ${name} to SAMPLES"
        expr = expr.replace(f"${{{name}}}", str(value)).replace(f"${name}", str(value))
    leftover = re.findall(r"\$(?!\d)\{?\w+", expr)  # "$1" in label_replace is PromQL's own
    assert not leftover, f"unknown template variables {leftover} in {expr}"
    return expr


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(where, raw expression, substituted expression) of every panel target."""
    out = []
    for file, board in dashboards().items():
        for panel in panels(board):
            for target in panel["targets"]:
                where = f"{file} panel {panel['id']} ({panel['title']}) {target['refId']}"
                out.append((where, target["expr"], substituted(target["expr"], board)))
    return out


def rule_files() -> list[Path]:
    return sorted((PROMETHEUS / "rules").glob("*.yml"))


def rules() -> list[dict]:
    return [rule for path in rule_files() for group in load_yaml(path)["groups"]
            for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (strings, matchers and clauses removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"(?<![\w:])\d[\w.]*", " ", text)  # numbers and durations (offset 5m)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][\w:]*", text):
        if match.group(0) in KEYWORDS or text[match.end():].lstrip().startswith("("):
            continue  # a keyword, or a function / aggregation
        names.add(match.group(0))
    return names


REGISTRY_SCRIPT = """
import json
from faust.sensors.prometheus import FaustMetrics
from prometheus_client import CollectorRegistry
from stream.worker.app import create_app
from stream.settings import Settings

suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"],
            "summary": ["_sum", "_count"], "info": ["_info"]}
faust = CollectorRegistry()
FaustMetrics.create(faust, "faust")  # the worker calls it with name_prefix="faust"
names = []
for registry in (create_app(Settings()).registry, faust):
    for family in registry.collect():
        names += [family.name + s for s in suffixes.get(family.type, [""])]
print(json.dumps(sorted(names)))
"""


@pytest.fixture(scope="module")
def exported() -> set[str]:
    """Metric names the worker exports: ``cspa_*`` string literals in stream/*.py, plus every
    family of the worker's real registry (names composed in code, process_*) and Faust's."""
    names = set(BUILTIN)
    for path in (ROOT / "stream").rglob("*.py"):
        for name in re.findall(r"""["'](cspa_\w+)["']""", path.read_text()):
            names |= {name, *(name + s for s in HISTOGRAM_SUFFIXES)}
    # A child process: building the app touches process-wide prometheus_client settings.
    out = subprocess.run([sys.executable, "-c", REGISTRY_SCRIPT], cwd=ROOT, check=True,
                         capture_output=True, text=True, timeout=120)
    return names | set(json.loads(out.stdout))


# (a) ----------------------------------------------------------------------------------


def test_committed_dashboards_are_what_the_code_generates() -> None:
    generated = build.generate()
    committed = {p.name: p.read_text() for p in DASHBOARDS.glob("*.json")}
    regenerate = "run python -m grafana.dashboards_src.build"
    assert sorted(committed) == sorted(generated), regenerate
    for name, text in generated.items():
        assert committed[name] == text, f"{name} drifted: {regenerate}"


# (b) ----------------------------------------------------------------------------------


def test_every_panel_is_described_and_queries_the_prometheus_datasource() -> None:
    boards = dashboards()
    assert len(boards) == 4
    for file, board in boards.items():
        seen = list(panels(board))
        assert seen, file
        for panel in seen:
            where = f"{file}: {panel['title']!r}"
            assert panel.get("description", "").strip(), f"{where} has no description"
            assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, where
            assert panel["targets"], f"{where} has no query"
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "prometheus", where
                assert target["expr"].strip(), where
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), f"{file}: duplicate panel ids"
        for var in board.get("templating", {}).get("list", []):
            if var["type"] == "query":
                assert var["datasource"]["uid"] == "prometheus", f"{file}: ${var['name']}"


# (c) ----------------------------------------------------------------------------------


def test_every_panel_query_parses_with_promtool(tmp_path: Path) -> None:
    promtool = need("promtool")
    recording = [{"record": f"dashboard:query_{i}", "expr": expr}
                 for i, (_, _, expr) in enumerate(dashboard_queries())]
    assert len(recording) > 50
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboards", "rules": recording}]},
                               indent=1))  # JSON is YAML
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True,
                            text=True)
    if result.returncode != 0:
        index = {f"dashboard:query_{i}": where for i, (where, _, _) in
                 enumerate(dashboard_queries())}
        pytest.fail(result.stdout + result.stderr + "\n" + json.dumps(index, indent=1))


# (d) ----------------------------------------------------------------------------------


def _unknown(names: set[str], known: set[str]) -> set[str]:
    return {n for n in names if n not in known}


def test_dashboards_query_only_metrics_the_worker_exports(exported: set[str]) -> None:
    known = exported | {r["record"] for r in rules() if "record" in r}
    missing = {}
    for where, _, expr in dashboard_queries():
        if unknown := _unknown(metric_names(expr), known):
            missing[where] = sorted(unknown)
    for file, board in dashboards().items():
        for var in board.get("templating", {}).get("list", []):
            if var["type"] == "query":
                metric = re.match(r"label_values\((\w+)\s*,", var["query"])
                assert metric, var["query"]
                if metric.group(1) not in known:
                    missing[f"{file} ${var['name']}"] = [metric.group(1)]
    assert not missing, json.dumps(missing, indent=1)


def test_alert_and_recording_rules_use_only_exported_metrics(exported: set[str]) -> None:
    assert rule_files(), "no rule files in grafana/prometheus/rules"
    known = exported | {r["record"] for r in rules() if "record" in r}
    missing = {r.get("alert") or r["record"]: sorted(_unknown(metric_names(r["expr"]), known))
               for r in rules() if _unknown(metric_names(r["expr"]), known)}
    assert not missing, json.dumps(missing, indent=1)


def test_metric_name_extraction() -> None:
    expr = ('histogram_quantile(0.99, sum by (le, topic) (rate(cspa_event_latency_seconds_bucket'
            '{job="x"}[5m]))) / on() group_left() (vector(1e-9) and cspa:calls_offered:sum)'
            ' - max_over_time(sum(x_y)[15m:1m] offset 15m)'
            ' or label_replace(up, "le", "$1", "le", "([0-9]+)")')
    assert metric_names(expr) == {"cspa_event_latency_seconds_bucket", "cspa:calls_offered:sum",
                                  "x_y", "up"}


# (e) ----------------------------------------------------------------------------------


def test_compose_file_is_valid() -> None:
    compose = need("docker-compose")
    result = subprocess.run([compose, "-f", str(COMPOSE), "config", "--quiet"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_prometheus_config_is_valid() -> None:
    promtool = need("promtool")
    result = subprocess.run([promtool, "check", "config", str(PROMETHEUS / "prometheus.yml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# (f) ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_yaml(COMPOSE)["services"]  # type: ignore[index]


def _ports(service: dict) -> list[tuple[str, str, str]]:
    """(host ip, host port, container port) of each published port."""
    out = []
    for spec in service.get("ports", []):
        ip, host, container = str(spec).split("/")[0].split(":")
        out.append((ip, host, container))
    return out


def _mounts(service: dict) -> dict[str, str]:
    """Container path -> host path (relative to the repository) of each bind mount."""
    out = {}
    for spec in service.get("volumes", []):
        source, target = str(spec).split(":")[:2]
        if source.startswith("."):
            out[target] = str((ROOT / source).resolve().relative_to(ROOT))
    return out


def test_every_published_port_is_on_loopback(compose: dict) -> None:
    for name, service in compose.items():
        for ip, _, _ in _ports(service):
            assert ip == "127.0.0.1", f"{name} publishes on {ip}"


def test_prometheus_scrapes_the_worker_where_it_listens(compose: dict) -> None:
    worker = compose["worker"]
    port = str(worker["environment"].get("CSPA_WEB_PORT", 6066))
    assert worker["environment"]["CSPA_WEB_HOST"] == "0.0.0.0"
    assert port in {str(p) for p in worker.get("expose", [])}
    live = str(compose["worker"]["environment"]["CSPA_LIVE_PORT"])
    assert f"localhost:{live}/live" in " ".join(worker["healthcheck"]["test"])
    assert f"worker:{port}/ready" in " ".join(compose["simulator"]["command"])
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}  # type: ignore[index]
    paths = {"cspa-worker": "/metrics", "cspa-faust": "/metrics/faust"}
    for job_name, path in paths.items():
        job = jobs[job_name]
        assert job["metrics_path"] == path
        targets = [t for sc in job.get("static_configs", []) for t in sc["targets"]]
        targets += [f"{n}:{sd['port']}" for sd in job.get("dns_sd_configs", [])
                    for n in sd["names"]]
        assert targets == [f"worker:{port}"], f"{job_name} scrapes {targets}"
    alertmanagers = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    host, am_port = alertmanagers[0].split(":")
    assert host in compose and ("127.0.0.1", am_port, am_port) in _ports(compose[host])


def test_rule_files_glob_matches_the_rules_and_the_mount(compose: dict) -> None:
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    for pattern in config["rule_files"]:  # type: ignore[index]
        assert sorted(PROMETHEUS.glob(pattern)) == rule_files() != [], pattern
    prometheus = compose["prometheus"]
    assert _mounts(prometheus)["/etc/prometheus"] == "grafana/prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]


def test_grafana_provisioning_matches_the_compose_mounts(compose: dict) -> None:
    grafana = compose["grafana"]
    mounts = _mounts(grafana)
    assert mounts["/etc/grafana/provisioning"] == "grafana/provisioning"
    provider = load_yaml(GRAFANA / "provisioning" / "dashboards" / "cspa.yml")
    path = provider["providers"][0]["options"]["path"]  # type: ignore[index]
    assert mounts[path] == "grafana/dashboards"
    datasource = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    source = datasource["datasources"][0]  # type: ignore[index]
    assert source["uid"] == "prometheus" and source["type"] == "prometheus"
    url = urlparse(source["url"])
    assert url.hostname in compose
    assert ("127.0.0.1", str(url.port), str(url.port)) in _ports(compose[url.hostname])
    version = grafana["image"].split(":")[1]
    assert version.startswith(build.SDK_PIN.split("!")[1].rsplit(".", 1)[0] + "."), version


def test_kafka_matches_the_tested_broker_and_the_services(compose: dict) -> None:
    kafka = compose["kafka"]
    assert kafka["image"] == f"apache/kafka:{devbroker.KAFKA_VERSION}"
    advertised = kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"].split(",")
    for name in ("topics", "worker", "simulator"):
        broker = compose[name]["environment"]["CSPA_BROKER"]
        assert any(a.endswith("//" + broker) for a in advertised), name
    assert compose["worker"]["depends_on"]["topics"]["condition"] == \
        "service_completed_successfully"
    for key, value in kafka["environment"].items():
        if key.endswith(("REPLICATION_FACTOR", "MIN_ISR")):
            assert str(value) == "1", key


def test_alertmanager_routes_to_a_receiver_and_contacts_no_outside_address(compose: dict) -> None:
    config = load_yaml(GRAFANA / "alertmanager" / "alertmanager.yml")
    receivers = {r["name"]: r for r in config["receivers"]}  # type: ignore[index]
    assert config["route"]["receiver"] in receivers  # type: ignore[index]
    for receiver in receivers.values():
        for hook in receiver.get("webhook_configs", []):
            host = urlparse(hook["url"]).hostname or ""
            assert host.endswith(".invalid") or host in compose, hook["url"]
    assert _mounts(compose["alertmanager"])["/etc/alertmanager"] == "grafana/alertmanager"
