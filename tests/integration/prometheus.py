"""A real Prometheus (Debian's /usr/bin/prometheus) scraping test workers.

The configuration is generated into a temporary directory: the repository's
``grafana/prometheus/prometheus.yml`` (Docker DNS discovery, 15 s intervals) is left alone,
but the rule files are the repository's own ``grafana/prometheus/rules/*.yml``, used as they
are. Targets are the test's worker ports, with the job names and metrics paths of the real
configuration (``cspa-worker`` -> ``/metrics``, ``cspa-faust`` -> ``/metrics/faust``).

    with PrometheusProcess(tmp_path / "prom", [worker.port]) as prom:
        prom.wait_for_targets()
        prom.query("sum(cspa_open_items)")
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.integration.harness import free_port, stop_group, wait_for
from tests.tools import missing_message

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "grafana" / "prometheus" / "rules"
PROMETHEUS = os.environ.get("CSPA_PROMETHEUS", "/usr/bin/prometheus")
PROMTOOL = os.environ.get("CSPA_PROMTOOL", "/usr/bin/promtool")
#: the jobs of grafana/prometheus/prometheus.yml and the path each scrapes
JOBS = {"cspa-worker": "/metrics", "cspa-faust": "/metrics/faust"}


def rule_files() -> list[Path]:
    files = sorted(RULES.glob("*.yml"))
    assert files, f"no rule files in {RULES}"
    return files


def quick_rules(dest: Path, stall_seconds: int) -> list[Path]:
    """The repository's rule files, rewritten so every alert can fire within a test.

    Only what a test cannot wait for or set changes; each alert's expression is
    otherwise the repository's own:

    * every ``for:`` becomes 0s (the waits are checked by promtool,
      ``grafana/prometheus/tests``);
    * CspaPipelineStalled's 15 minutes without processing become ``stall_seconds``.

    Office hours need no change: the worker exports ``cspa_working_time`` from its own
    clock, which a test sets with ``CSPA_CLOCK_FILE``.
    """
    import yaml

    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for path in rule_files():
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    rule["for"] = "0s"
                if rule.get("alert") == "CspaPipelineStalled":
                    assert "> 900" in rule["expr"], rule["expr"]
                    rule["expr"] = rule["expr"].replace("> 900", f"> {stall_seconds}")
        target = dest / path.name
        target.write_text(yaml.safe_dump(doc, sort_keys=False))
        out.append(target)
    return out


def config(ports: Iterable[int], interval: str = "1s",
           rules: Sequence[Path] | None = None,
           scrape: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The Prometheus configuration (JSON is YAML) for workers on ``ports``; ``scrape``:
    more keys of every worker job (``scheme``, ``basic_auth``, ``tls_config``...)."""
    targets = [f"127.0.0.1:{p}" for p in ports]
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval,
                   "scrape_timeout": interval},
        "rule_files": [str(p) for p in (rules if rules is not None else rule_files())],
        "scrape_configs": [{"job_name": job, "metrics_path": path,
                            "static_configs": [{"targets": targets}], **(scrape or {})}
                           for job, path in JOBS.items()],
    }


class PrometheusError(AssertionError):
    pass


class PrometheusProcess:
    """``prometheus`` as a child process on a free loopback port, its TSDB in ``workdir``."""

    def __init__(self, workdir: Path, ports: Sequence[int], interval: str = "1s",
                 extra_args: Sequence[str] = (), rules: Sequence[Path] | None = None,
                 scrape: Mapping[str, Any] | None = None) -> None:
        if not Path(PROMETHEUS).exists():
            raise PrometheusError(f"{PROMETHEUS} is missing. {missing_message('prometheus')}")
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.config_path = workdir / "prometheus.yml"
        self.data_dir = workdir / "data"
        self.log_path = workdir / "prometheus.log"
        self.config_path.write_text(json.dumps(config(ports, interval, rules, scrape),
                                                indent=1))
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def check_config(self) -> None:
        """``promtool check config`` on the generated file (it also checks the rule files)."""
        result = subprocess.run([PROMTOOL, "check", "config", str(self.config_path)],
                                capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise PrometheusError(result.stdout + result.stderr)

    def start(self, timeout: float = 60) -> PrometheusProcess:
        self.check_config()
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.config_path}",
             f"--storage.tsdb.path={self.data_dir}",
             f"--web.listen-address=127.0.0.1:{self.port}",
             "--storage.tsdb.retention.time=1d", "--log.level=warn", *self.extra_args],
            cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self.ready, timeout, "prometheus ready")
        return self

    def ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise PrometheusError(f"prometheus exited: {self.log_tail()}")
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as resp:
                return resp.status == 200
        except (OSError, urllib.error.HTTPError):
            return False

    def stop(self, timeout: float = 20) -> None:
        stop_group(self.proc, timeout=timeout)
        self.proc = None

    def __enter__(self) -> PrometheusProcess:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # --- HTTP API ----------------------------------------------------------------------
    def api(self, path: str, **params: str) -> Any:
        """``data`` of a /api/v1 answer; PrometheusError on an error status."""
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:  # 400/422 carry the error as JSON
            body = json.loads(exc.read() or b"{}")
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: "
                                  f"{body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query: the result list (vector samples, or one entry for a scalar)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self.api("query", **params)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def value(self, expr: str) -> float | None:
        """The single value of a query (None: no sample); fails on several samples."""
        result = self.query(expr)
        if not result:
            return None
        assert len(result) == 1, f"{expr}: {len(result)} samples"
        return float(result[0]["value"][1])

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing) as /api/v1/alerts lists them."""
        alerts: list[dict[str, Any]] = self.api("alerts")["alerts"]
        return alerts

    def alert(self, name: str, **labels: str) -> dict[str, Any] | None:
        """The active alert ``name`` whose labels include ``labels`` (None: not active)."""
        for a in self.alerts():
            if a["labels"].get("alertname") == name and labels.items() <= a["labels"].items():
                return a
        return None

    def rules(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every rule of every group (/api/v1/rules), with its group's name and file."""
        params = {"type": kind} if kind else {}
        out = []
        for group in self.api("rules", **params)["groups"]:
            for rule in group["rules"]:
                out.append({**rule, "group": group["name"], "file": group["file"]})
        return out

    def targets(self) -> list[dict[str, Any]]:
        targets: list[dict[str, Any]] = self.api("targets")["activeTargets"]
        return targets

    def wait_for_targets(self, timeout: float = 30) -> list[dict[str, Any]]:
        """Wait until every configured target has been scraped successfully."""
        def all_up() -> list[dict[str, Any]] | None:
            targets = self.targets()
            return targets if targets and all(t["health"] == "up" for t in targets) else None
        return wait_for(all_up, timeout, "every scrape target up")

    def wait_for_sample(self, expr: str, timeout: float = 30) -> list[dict[str, Any]]:
        return wait_for(lambda: self.query(expr), timeout, f"a sample of {expr}")


def backfill(data_dir: Path, lines: Iterable[str], workdir: Path) -> None:
    """Write OpenMetrics ``lines`` (``name{labels} value timestamp``) into a TSDB block.

    Run before the server starts: history the server then reads as if it had scraped it
    (``promtool tsdb create-blocks-from openmetrics``; overlapping blocks are merged).
    """
    source = workdir / "backfill.om"
    source.write_text("".join(line + "\n" for line in lines) + "# EOF\n")
    data_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics",
                             str(source), str(data_dir)], capture_output=True, text=True,
                            timeout=120)
    if result.returncode != 0:
        raise PrometheusError(result.stdout + result.stderr)


def have_prometheus() -> bool:
    return Path(PROMETHEUS).exists() and shutil.which(PROMTOOL) is not None


__all__ = ["JOBS", "PrometheusError", "PrometheusProcess", "backfill", "config",
           "have_prometheus", "quick_rules", "rule_files"]
