"""The Prometheus rules under grafana/prometheus, tested like code.

* ``promtool check rules`` and ``promtool test rules`` pass (their output is shown when not);
* every alert has a severity, a team, and summary / description / runbook annotations, and
  a promtool case where it fires and one where it does not;
* every metric an expression reads is exported by the worker (declared in stream/worker/
  or by a figure family in stream/state/), recorded by a recording rule, or Prometheus'
  own (``up``);
* the texts agree with config/rules.toml and the recorded thresholds.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stream.state.rules import load_rules
from stream.state.timeliness import watched_rules
from tests.tools import require

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "grafana" / "prometheus"
RULE_FILES = sorted((PROM / "rules").glob("*.yml"))
TEST_FILES = sorted((PROM / "tests").glob("*.test.yml"))
#: where metric names are declared: the worker's exposition, and the figure families
SOURCES = sorted((ROOT / "stream" / "worker").glob("*.py")) + sorted(
    (ROOT / "stream" / "state").glob("*.py"))
FACTS = ROOT / "stream" / "state" / "facts.py"  # the live windows
PROMETHEUS_OWN = {"up"}
_KEYWORDS = {"and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left",
             "group_right", "offset", "inf", "nan"}


def _promtool(*args: str, cwd: Path) -> None:
    tool = require("promtool")
    done = subprocess.run([tool, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.fail(f"promtool {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")


def test_promtool_check_rules() -> None:
    assert RULE_FILES
    _promtool("check", "rules", *(str(p.relative_to(ROOT)) for p in RULE_FILES), cwd=ROOT)


def test_promtool_unit_tests() -> None:
    assert TEST_FILES
    _promtool("test", "rules", *(str(p.relative_to(PROM)) for p in TEST_FILES), cwd=PROM)


# -- a YAML reader for the subset these files use ---------------------------------------
# PyYAML is not a dependency of the project. The files here use block mappings and
# sequences, ``|`` literal blocks, quoted and plain scalars, ``[]`` and comments; this
# reads exactly that (all scalars as strings) and is checked against PyYAML when present.


def load_yaml(text: str) -> Any:
    lines = text.splitlines()
    pos = 0

    def indent(ln: str) -> int:
        return len(ln) - len(ln.lstrip(" "))

    def skip() -> None:  # blank and comment lines
        nonlocal pos
        while pos < len(lines) and lines[pos].strip()[:1] in ("", "#"):
            pos += 1

    def scalar(raw: str) -> Any:
        raw = raw.strip()
        if raw.startswith("'"):
            return re.match(r"'((?:[^']|'')*)'", raw).group(1).replace("''", "'")
        if raw.startswith('"'):
            return re.match(r'"([^"]*)"', raw).group(1)
        raw = re.sub(r"\s+#.*$", "", raw)
        return [] if raw == "[]" else raw

    def is_item(ln: str) -> bool:
        return ln.lstrip().startswith("- ")

    def block(level: int) -> Any:
        nonlocal pos
        if is_item(lines[pos]):
            items: list[Any] = []
            while pos < len(lines) and indent(lines[pos]) == level and is_item(lines[pos]):
                content = lines[pos].lstrip()[2:]
                if re.match(r"[\w.-]+:(\s|$)", content):  # "- key: ..." opens a mapping
                    lines[pos] = " " * (level + 2) + content
                    items.append(block(level + 2))
                else:
                    items.append(scalar(content))
                    pos += 1
                skip()
            return items
        mapping: dict[str, Any] = {}
        while pos < len(lines) and indent(lines[pos]) == level and not is_item(lines[pos]):
            key, _, rest = lines[pos].strip().partition(":")
            rest = rest.strip()
            pos += 1
            if rest == "|":  # literal block: the more indented lines, newline kept at the end
                body = []
                while pos < len(lines) and (not lines[pos].strip() or indent(lines[pos]) > level):
                    body.append(lines[pos])
                    pos += 1
                cut = min(indent(b) for b in body if b.strip())
                mapping[key] = "\n".join(b[cut:] for b in body).rstrip("\n") + "\n"
            elif rest and not rest.startswith("#"):
                mapping[key] = scalar(rest)
            else:
                skip()
                mapping[key] = block(indent(lines[pos]))
            skip()
        return mapping

    skip()
    return block(0)


def test_yaml_reader_agrees_with_pyyaml() -> None:
    yaml = pytest.importorskip("yaml")
    for path in RULE_FILES + TEST_FILES:
        text = path.read_text()
        assert load_yaml(text) == yaml.load(text, Loader=yaml.BaseLoader), path.name


# -- structure ----------------------------------------------------------------------------


def _rules() -> list[dict]:
    found = []
    for path in RULE_FILES:
        for group in load_yaml(path.read_text())["groups"]:
            found += [{**rule, "file": path.name} for rule in group["rules"]]
    return found


ALERTS = [r for r in _rules() if "alert" in r]
RECORDED = {r["record"] for r in _rules() if "record" in r}


def test_every_alert_is_labelled_and_explained() -> None:
    assert len({a["alert"] for a in ALERTS}) == len(ALERTS), "alert names must be unique"
    for alert in ALERTS:
        name, labels, notes = alert["alert"], alert.get("labels", {}), alert.get("annotations", {})
        # Watchdog alone has severity none (kube-prometheus): it is proof of life, not news.
        assert labels.get("severity") in (("none",) if name == "Watchdog"
                                          else ("warning", "critical")), name
        assert "team" in labels or re.search(r"by \([^)]*\bteam\b", alert["expr"]), name
        for key in ("summary", "description", "runbook", "runbook_url", "dashboard_uid",
                    "panel_title"):
            assert notes.get(key, "").strip(), f"{name} has no {key}"
        assert "\n" not in notes["runbook"], f"{name}: the runbook is one line"
        assert "for" in alert, f"{name}: say how long it must hold, even 0m"


def _test_cases() -> tuple[set[str], set[str]]:
    fires, quiet = set(), set()
    for path in TEST_FILES:
        for case in load_yaml(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    return fires, quiet


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    fires, quiet = _test_cases()
    names = {a["alert"] for a in ALERTS}
    assert names - fires == set(), "alerts never shown firing"
    # Watchdog is never quiet: that is its whole point.
    assert names - {"Watchdog"} - quiet == set(), "alerts never shown staying quiet"
    loaded = {Path(f).name for p in TEST_FILES for f in load_yaml(p.read_text())["rule_files"]}
    assert loaded == {p.name for p in RULE_FILES}, "every rule file is loaded by some test"


# -- metric names -------------------------------------------------------------------------


def metric_names(expr: str) -> set[str]:
    """Series names an expression selects (not functions, keywords, labels or numbers)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\boffset\s+\w+", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][\w:]*)(\s*\()?", text):
        if not m.group(2) and m.group(1).lower() not in _KEYWORDS:
            names.add(m.group(1))
    return names


def test_metric_names_parser() -> None:
    expr = ('sum by (rule, team) (cspa_open_items{rule="a", state="x"}) - '
            'max_over_time(sum(cspa_breaches offset 5m)[15m:1m]) > 0 and on () up == 1e3 '
            'unless time() - vector(0.8) < bool 2')
    assert metric_names(expr) == {"cspa_open_items", "cspa_breaches", "up"}


def declared(name: str) -> bool:
    """Whether the worker's metric sources declare ``name``.

    A name counts when it is quoted in one of the ``SOURCES``, or built by an f-string
    such as ``f"cspa_calls_{n}"`` from a part that is itself quoted in one of them
    ("offered", in stream/state/calls.py). Histogram series (_bucket, _sum, _count)
    count by their base.
    """
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    texts = [path.read_text() for path in SOURCES]
    quoted = set().union(*(re.findall(r'"([a-z0-9_]+)"', text) for text in texts))
    if name in quoted or base in quoted:
        return True
    for text in texts:
        for prefix, suffix in re.findall(r'f"(cspa_[a-z0-9_]*)\{\w+\}([a-z0-9_]*)"', text):
            for n in (name, base):
                if n.startswith(prefix) and n.endswith(suffix) \
                        and n[len(prefix):len(n) - len(suffix)] in quoted:
                    return True
    return False


def test_declared() -> None:
    assert declared("cspa_open_items") and declared("cspa_events_rejected_total")
    assert declared("cspa_calls_answered_within_target")  # f"cspa_calls_{n}"
    assert not declared("cspa_calls_answerd") and not declared("cspa_no_such_metric")


def _used() -> set[str]:
    return set().union(*(metric_names(r["expr"]) for r in _rules()))


def test_every_metric_read_is_exported_or_recorded() -> None:
    used = _used()
    recorded = {n for n in used if ":" in n}
    assert recorded - RECORDED == set(), "read but never recorded"
    unknown = {n for n in used - recorded - PROMETHEUS_OWN if not declared(n)}
    assert unknown == set(), "expressions read series the worker does not export"


def test_windows_are_the_workers() -> None:
    m = re.search(r"^WINDOWS = \(([^)]*)\)", FACTS.read_text(), re.M)
    assert m is not None, "stream/state/facts.py no longer defines WINDOWS"
    windows = set(re.findall(r'"([a-z0-9_]+)"', m.group(1)))
    used = {w for r in _rules() for w in re.findall(r'window="([^"]+)"', r["expr"])}
    assert used and used <= windows


# -- agreement with the configuration -----------------------------------------------------


def test_timeliness_texts_follow_config_rules() -> None:
    watched = watched_rules(load_rules(ROOT / "config" / "rules.toml"))
    dedicated: set[str] = set()
    for alert in (a for a in ALERTS if a["file"] == "timeliness.yml"):
        m = re.search(r'rule="([a-z0-9_]+)"', alert["expr"])
        if m is None:  # the catch-all: excludes exactly the rules with their own alerts
            continue
        rule = watched[m.group(1)]
        dedicated.add(rule.name)
        unit = {"working_days": "working day", "working_hours": "working hour",
                "hours": "hour"}[rule.clock]
        summary = alert["annotations"]["summary"]
        assert f"{rule.timescale:g} {unit} timescale" in summary, alert["alert"]
        if alert["alert"].endswith("AtRisk"):
            assert f"less than {rule.warn_working_hours:g} working hours" in summary
        assert alert["labels"]["team"] == rule.team, alert["alert"]
    for alert in (a for a in ALERTS if a["file"] == "partner_responses.yml"):
        rule = watched["partner_response"]  # its own file: alerts by agency, not by rule
        dedicated.add(rule.name)
        assert f"{rule.timescale:g} working hour timescale" in alert["annotations"]["summary"]
        assert alert["labels"]["team"] == rule.team, alert["alert"]
    assert dedicated == set(watched)
    for alert in (a for a in ALERTS if a["alert"].startswith("Timescale")):
        m = re.search(r'rule!~"([^"]+)"', alert["expr"])
        assert m is not None and set(m.group(1).split("|")) == dedicated


def test_call_thresholds_match_the_recorded_targets() -> None:
    consts = {r["record"]: float(re.fullmatch(r"vector\(([\d.]+)\)", r["expr"]).group(1))
              for r in _rules() if r.get("record", "").startswith("cspa:calls_")
              and r["expr"].startswith("vector(")}
    for alert in (a for a in ALERTS if a["file"] == "calls.yml"):
        expr = alert["expr"]
        m = re.search(r":ratio\{[^}]*\}\s*([<>])\s*([\d.]+)", expr)
        assert m is not None, alert["alert"]
        target = ("cspa:calls_service_level_target:ratio" if m.group(1) == "<"
                  else "cspa:calls_abandoned_threshold:ratio")
        assert float(m.group(2)) == consts[target], alert["alert"]
        minimum = re.search(r"offered:sum\{[^}]*\}\s*>=\s*(\d+)", expr)
        assert minimum is not None and float(minimum.group(1)) == consts[
            "cspa:calls_alert_min_offered:count"], alert["alert"]


def test_call_wait_threshold_matches_the_recorded_constant() -> None:
    recorded = {r["record"]: r["expr"] for r in _rules() if "record" in r}
    m = re.fullmatch(r"vector\(([\d.]+)\)", recorded["cspa:calls_waiting_alert_threshold:seconds"])
    alert = next(a for a in ALERTS if a["alert"] == "CallWaitingTooLong")
    literal = re.search(r"cspa_calls_oldest_wait_seconds\)\s*>\s*([\d.]+)", alert["expr"])
    assert m is not None and literal is not None
    assert float(literal.group(1)) == float(m.group(1))
    assert f"{float(m.group(1)):g} seconds" in alert["annotations"]["description"]


# -- where each alert sends its reader ----------------------------------------------------
# Every alert names its runbook section (runbook_url: <base>/docs/runbooks.md#<anchor>,
# the base a placeholder, docs/runbooks.md says what to put there) and the dashboard panel
# to open first (dashboard_uid, panel_title), resolved here against the committed files.

RUNBOOKS = ROOT / "docs" / "runbooks.md"
DASHBOARDS = ROOT / "grafana" / "dashboards"
RUNBOOK_BASE = "https://git.invalid/cspa/-/blob/main/docs/runbooks.md#"


def anchor(heading: str) -> str:
    """The anchor GitHub and GitLab give a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def runbook_anchors(text: str) -> set[str]:
    return {anchor(m.group(1)) for m in re.finditer(r"^#{2,3} (.+)$", text, re.M)}


def panel_titles() -> dict[str, set[str]]:
    """Dashboard uid -> the titles of its panels (rows included, nested panels too)."""
    import json

    def walk(panels: list[dict]) -> Iterator[str]:
        for panel in panels:
            yield panel.get("title", "")
            yield from walk(panel.get("panels", []))

    boards = (json.loads(p.read_text()) for p in DASHBOARDS.glob("*.json"))
    return {board["uid"]: set(walk(board["panels"])) for board in boards}


def unresolved(alerts: list[dict], anchors: set[str],
               titles: dict[str, set[str]]) -> list[str]:
    """What each alert's runbook_url, dashboard_uid and panel_title fail to point at."""
    problems = []
    for alert in alerts:
        name, notes = alert["alert"], alert.get("annotations", {})
        url = notes.get("runbook_url", "")
        if not url.startswith(RUNBOOK_BASE) or url[len(RUNBOOK_BASE):] not in anchors:
            problems.append(f"{name}: no runbook section {url!r}")
        uid = notes.get("dashboard_uid", "")
        if uid not in titles:
            problems.append(f"{name}: no dashboard {uid!r}")
        elif notes.get("panel_title") not in titles[uid]:
            problems.append(f"{name}: no panel {notes.get('panel_title')!r} in {uid}")
    return problems


def test_every_alert_resolves_to_a_runbook_section_dashboard_and_panel() -> None:
    assert unresolved(ALERTS, runbook_anchors(RUNBOOKS.read_text()), panel_titles()) == []


def test_every_runbook_section_is_the_alerts_own() -> None:
    """One section per alert, named after it: the runbook_url is <base>#<alert, lowercased>."""
    for alert in ALERTS:
        assert alert["annotations"]["runbook_url"] == RUNBOOK_BASE + alert["alert"].lower()
    sections = set(re.findall(r"^### (\w+)$", RUNBOOKS.read_text(), re.M))
    assert sections == {a["alert"] for a in ALERTS}, "a runbook section per alert, no more"


def test_a_bad_annotation_is_caught() -> None:
    good = next(a for a in ALERTS if a["alert"] == "CspaWorkerDown")
    anchors, titles = runbook_anchors(RUNBOOKS.read_text()), panel_titles()
    assert unresolved([good], anchors, titles) == []
    bad_anchor = {**good, "annotations": {**good["annotations"],
                                          "runbook_url": RUNBOOK_BASE + "nosuchalert"}}
    bad_board = {**good, "annotations": {**good["annotations"], "dashboard_uid": "cspa-nope"}}
    bad_panel = {**good, "annotations": {**good["annotations"], "panel_title": "Due list"}}
    assert len(unresolved([bad_anchor, bad_board, bad_panel], anchors, titles)) == 3
    assert unresolved([good], runbook_anchors("# Runbooks\n"), titles) != []  # section gone


def test_anchor() -> None:
    assert anchor("CspaWorkerDown") == "cspaworkerdown"
    assert anchor("Where the links point") == "where-the-links-point"


# -- Alertmanager --------------------------------------------------------------------------

ALERTMANAGER = ROOT / "grafana" / "alertmanager" / "alertmanager.yml"


def _routes(route: dict) -> Iterator[dict]:
    yield route
    for child in route.get("routes", []):
        yield from _routes(child)


def _matched(route: dict, labels: dict[str, str]) -> bool:
    for matcher in route.get("matchers", []):
        m = re.fullmatch(r'(\w+)\s*(=~|!=|=)\s*"([^"]*)"', matcher)
        assert m is not None, f"unsupported matcher {matcher!r}"
        key, op, value = m.groups()
        found = labels.get(key, "")
        ok = {"=": found == value, "!=": found != value,
              "=~": re.fullmatch(value, found) is not None}[op]
        if not ok:
            return False
    return True


def receiver_for(config: dict, labels: dict[str, str]) -> str:
    """The receiver Alertmanager picks for ``labels`` (first matching child, no continue)."""
    route = config["route"]
    while True:
        child = next((r for r in route.get("routes", []) if _matched(r, labels)), None)
        if child is None:
            return str(route["receiver"])
        route = {**child, "receiver": child.get("receiver", route["receiver"])}


def _teams(alert: dict) -> set[str]:
    """The teams an alert can carry: its label, or every rule's team for a per-rule alert."""
    if "team" in alert.get("labels", {}):
        return {alert["labels"]["team"]}
    return {r.team for r in load_rules(ROOT / "config" / "rules.toml").values()}


def test_alertmanager_config() -> None:
    """Every route reaches a receiver that notifies someone, and every alert's team its own.

    Alertmanager's own checker is not one of the tools the tests install
    (tests/tools.py), so the file is read here; docs/operations.md has the amtool step.
    """
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load(ALERTMANAGER.read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    for route in _routes(config["route"]):
        assert route.get("receiver", config["route"]["receiver"]) in receivers, route
    for name, receiver in receivers.items():
        targets = [h["url"] for h in receiver.get("webhook_configs", [])] + \
            [e["to"] for e in receiver.get("email_configs", [])]
        assert targets, f"receiver {name} notifies nobody"
    routed = {r["receiver"] for r in config["route"]["routes"]}
    for alert in ALERTS:
        for team in _teams(alert):
            labels = {"alertname": alert["alert"], "team": team,
                      "severity": alert["labels"]["severity"]}
            receiver = receiver_for(config, labels)
            expected = "deadmans-switch" if alert["alert"] == "Watchdog" else team
            assert receiver == expected and receiver in routed, (alert["alert"], team)


def test_receiver_for_follows_the_routes() -> None:
    config = {"route": {"receiver": "default", "routes": [
        {"receiver": "a", "matchers": ['team="rfs"', 'severity=~"warning|critical"']},
        {"receiver": "b", "matchers": ['team!="rfs"']}]}}
    assert receiver_for(config, {"team": "rfs", "severity": "critical"}) == "a"
    assert receiver_for(config, {"team": "rfs", "severity": "none"}) == "default"
    assert receiver_for(config, {"team": "map"}) == "b"
