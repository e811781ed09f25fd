"""Private by construction: recognisable pseudonymous keys, valid and rejected, never reach a
metric label, a log line or a dead-letter detail; labels come only from closed sets; /due
names cases by pseudonymous key only; the web server listens on loopback only. Secrets (the
SASL password, the web users' passwords and hashes) given in files reach no log line, no
endpoint's body, no command line and no environment of the worker."""

from __future__ import annotations

import json
import re
import socket
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bcrypt
import orjson
import pytest
from pydantic import SecretStr

from stream.cli import ensure_topics
from stream.contract.decoder import REASONS
from stream.contract.events import FAMILIES, event_type_of, family_types
from stream.contract.quotes import new_key, seal
from stream.contract.topics import load_topics
from stream.report.webclient import WebClient
from stream.settings import Settings
from stream.state.facts import WINDOWS
from stream.state.rules import load_rules
from stream.state.timeliness import STATES
from tests import factories as f
from tests.faults.conftest import produce_tracked, read_deadletter, wait_caught_up
from tests.faults.tls import make_ca, make_server_cert
from tests.groundtruth import TAXONOMY, TOPICS, Message
from tests.integration.harness import (
    WorkerProcess,
    make_broker,
    parse_metrics,
    registered_paths,
    wait_for,
)
from tests.tools import require

pytestmark = pytest.mark.integration

HEX = re.compile(r"^[0-9a-f]{16,64}$")
QUOTE_SEALED = "You were so supportive CANARY-sealed-Jw4 thank you"
QUOTE_IN_CLEAR = "You listened CANARY-clear-Pk8 and helped"
#: the catalogue's topics, the repartition topic named for the tests' app id ("cspa")
TOPIC_NAMES = {s.name for s in load_topics(app_id="cspa").values()}
RULES = load_rules(Settings().rules_path)
#: the contract's event types, and a hop folded into a child's record (stream/worker/rekey.py)
EVENT_TYPES = ({event_type_of(m) for family in FAMILIES for m in family_types(family)}
               | {"child.hop"})
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _set(*names: str) -> set[str]:
    return set().union(*(set(TAXONOMY[n]) for n in names))


#: label name -> its closed set (or a check); an unlisted label name fails the test
LABELS = {
    "topic": TOPIC_NAMES, "reason": set(REASONS), "event_type": EVENT_TYPES,
    "channel": _set("channel"), "source_group": _set("source_group"), "team": _set("team"),
    "outcome": _set("contact_outcome", "map_outcome") | {"answered", "abandoned"},
    "pathway": _set("pathway"), "destination": _set("destination"),
    "within_timescale": {"true", "false", "unknown"}, "agency": _set("agency") | {"none"},
    "from_whom": _set("feedback_from"), "kind": _set("feedback_kind"),
    "attribution": _set("quote_attribution"),
    "service": _set("level3_service"), "queue": _set("call_queue"), "grade": _set("grade"),
    "theme": _set("qa_theme"), "sampler_role": _set("sampler_role"),
    "window": set(WINDOWS), "rule": set(RULES), "state": set(STATES),
    "rule_version": {str(v.version) for r in RULES.values() for v in r.versions},
    "service_level_variant": {"offered", "answered", "offered_less_short_abandons"},
    "period_combination": {"ratio_of_sums", "mean_of_months"},
    "direction": {"back", "forward"},
    "repeat": {"yes", "no"}, "re_referral": {"yes", "no"},
    # cspa_partition_owned/expected: partition numbers of the catalogue's topics
    "partition": {str(p) for s in load_topics(app_id="cspa").values()
                  for p in range(s.partitions)},
}
NUMERIC = {"le", "service_level_seconds", "short_abandon_seconds"}


def _label_ok(name: str, value: str) -> bool:
    if name == "month":
        return bool(MONTH.match(value))
    if name in NUMERIC:
        return value == "+Inf" or re.fullmatch(r"-?\d+(\.\d+)?(e[+-]?\d+)?", value) is not None
    return value in LABELS.get(name, ())


def _other_local_addresses() -> list[str]:
    """Addresses of this machine other than 127.0.0.1 (127.0.0.2 is local on Linux too)."""
    found = {"127.0.0.2"}
    try:
        found.add(socket.gethostbyname(socket.gethostname()))
    except OSError:
        pass
    try:
        out = subprocess.run([require("hostname"), "-I"], capture_output=True, text=True,
                             timeout=5)
        found.update(out.stdout.split())
    except subprocess.SubprocessError:
        pass
    return sorted(a for a in found if a != "127.0.0.1" and ":" not in a)


def test_keys_never_leak_and_labels_are_closed_sets(broker, fresh_worker):
    at = datetime.now(UTC) - timedelta(hours=30)
    names = ["alice-smith", "bob-jones", "carol-white", "dan-brown", "erin-black",
             "frank-green", "grace-hall", "heidi-king"]
    keys = {n: f.key("privacy-" + n) for n in names}
    contacts, calls, maps = TOPICS["contacts"], TOPICS["calls"], TOPICS["map_enquiries"]
    feedback = TOPICS["feedback"]

    def msg(topic, key, event):
        value = event if isinstance(event, bytes) else orjson.dumps(event)
        return Message(topic, key.encode(), value, None)

    a, b, c, d, e, g, h, i = (keys[n] for n in names)
    advisor = keys["ivan-grey"] = f.key("privacy-ivan-grey")
    # a child with two contacts: both hop, keyed by the child, to the repartition topic
    child = keys["judy-child"] = f.key("privacy-judy-child")
    messages = [
        msg(contacts, a, f.received(a, at, "phone", "3A", child=child)),  # open: on /due
        msg(contacts, b, f.received(b, at - timedelta(days=3), child=child)),
        msg(contacts, b, f.decided(b, at, "lado")),  # opens the LADO rule
        msg(calls, c, f.answered(c, at, 15.0)),
        msg(maps, d, f.map_opened(d, at)),
        # an advisor in post, audited: the key is in the records, never in what is served
        msg(TOPICS["audits"], advisor, f.advisor(advisor, at - timedelta(days=40))),
        msg(TOPICS["audits"], a, f.audit(a, at, team="rfs", advisor=advisor)),
        msg(TOPICS["audits"], b, f.review(b, at)),
        msg(TOPICS["audits"], c, f.dip_sample(c, at, 4)),
        # Rejected ones, each carrying recognisable keys somewhere.
        msg(contacts, e, f.received(e, at, "carrier_pigeon")),  # unknown category
        msg(contacts, g, f.received(a, at)),  # key mismatch: body names another case
        msg(contacts, g, {**f.received(g, at), g: h}),  # a key as an extra field's name
        msg(contacts, h, b'{"contact_key": "%s", oops' % h.encode()),  # invalid JSON
        msg(contacts, i, {**f.received(i, at), "child_key": "Heidi King " + i}),  # bad value
        msg(calls, i, {**f.answered(i, at, 5.0), "wait_seconds": i}),  # wrong type
        # Feedback: a quote sealed with its key (kept, as the producer keeps it), and one
        # sent in clear by a faulty producer: neither quote reaches a label, log or detail.
        msg(feedback, a, f.feedback(a, at, kind="complaint")),
        msg(feedback, a, f.quote_approved(a, at, seal(QUOTE_SEALED, new_key(), a))),
        msg(feedback, b, f.quote_approved(b, at, QUOTE_IN_CLEAR)),  # rejected
    ]
    rejected = 7
    worker = fresh_worker()
    produce_tracked(broker.bootstrap, messages)
    wait_caught_up(worker, timeout=120)
    dead = read_deadletter(broker.bootstrap, rejected)
    assert len(dead) == rejected

    metrics = worker.get("/metrics").decode()
    faust_metrics = worker.get("/metrics/faust").decode()
    cells = worker.get("/cells").decode()
    due = wait_for(lambda: worker.get_json("/due?limit=5000")["items"], 30, "/due items")
    log = worker.log_path.read_text(errors="replace")
    assert "rejected topic=cspa.contacts.v1" in log and "reason=unknown_category" in log
    details = [d["detail"] for d in dead]
    texts = {"/metrics": metrics, "/metrics/faust": faust_metrics, "/cells": cells,
             "log": log, "dead-letter details": "\n".join(details),
             "dead-letter reasons": "\n".join(d["reason"] for d in dead)}
    for name, key in keys.items():
        for where, text in texts.items():
            assert key not in text, f"key of {name} in {where}"
            assert name not in text and "Heidi King" not in text, f"{name} in {where}"
    for where, text in texts.items():
        assert "CANARY" not in text, f"a feedback quote in {where}"
    assert any("sealed_quote: string_pattern_mismatch" in d for d in details)

    # The child's two contacts hopped and were folded: one first contact, one repeat.
    repeats = {dict(ls)["repeat"]: v for (m, ls), v in parse_metrics(metrics).items()
               if m == "cspa_child_contacts"}
    assert repeats == {"yes": 1.0, "no": 1.0}, repeats
    # Every label value of the domain metrics is from a closed set.
    for (metric, labels), _ in parse_metrics(metrics).items():
        for label, value in labels:
            assert _label_ok(label, value), (metric, label, value)
    for (metric, labels), _ in parse_metrics(faust_metrics).items():
        for label, value in labels:
            assert value not in keys.values(), (metric, label)

    # /due names cases by pseudonymous key only (team leaders need them); nothing else.
    assert due, "nothing due: the test lost its open items"
    listed = set()
    for item in due:
        assert set(item) == {"rule", "team", "key", "start", "deadline", "state",
                             "working_hours_left"}
        assert HEX.match(item["key"]) and item["key"] in keys.values()
        listed.add(item["key"])
        assert item["rule"] in RULES and item["team"] in LABELS["team"]
        assert item["state"] in STATES and isinstance(item["working_hours_left"], int | float)
        datetime.fromisoformat(item["start"])
        datetime.fromisoformat(item["deadline"])
        for s in f.strings({k: v for k, v in item.items() if k != "key"}):
            assert not any(k in s for k in keys.values())
    assert keys["alice-smith"] in listed and keys["bob-jones"] in listed
    assert listed <= {keys["alice-smith"], keys["bob-jones"], keys["dan-brown"]}
    assert "heidi" not in json.dumps(due).lower()

    # Loopback only by default: the ports (the web server's, /live's) answer on 127.0.0.1
    # and nowhere else.
    others = _other_local_addresses()
    assert others
    for port in (worker.port, worker.live_port):
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        for address in others:
            with pytest.raises(OSError):
                with socket.create_connection((address, port), timeout=5):
                    pass
    print(f"\nrefused on {others}; {len(due)} due items, {len(dead)} dead letters")


SASL_USER, SASL_PASSWORD = "cspa-worker", "sasl-Wm3-secret-from-a-file"
WEB_PASSWORD = "web-Kx9-secret-from-a-file"


def test_secrets_from_files_reach_no_log_endpoint_argv_or_environment(tmp_path: Path):
    for broker in make_broker(tmp_path, sasl_scram=True, scram_user=SASL_USER,
                              scram_password=SASL_PASSWORD):
        _secrets_stay_secret(broker.bootstrap, tmp_path)


def _secrets_stay_secret(bootstrap: str, tmp_path: Path) -> None:
    secrets_dir = tmp_path / "secrets"
    ca, ca_key = make_ca(secrets_dir)
    make_server_cert(secrets_dir, ca_key, "worker")
    web_hash = bcrypt.hashpw(WEB_PASSWORD.encode(), bcrypt.gensalt(10)).decode()
    (secrets_dir / "web.yml").write_text(json.dumps({
        "tls_server_config": {"cert_file": "worker.pem", "key_file": "worker.key"},
        "basic_auth_users": {"report": web_hash}}))
    (secrets_dir / "sasl-password").write_text(SASL_PASSWORD + "\n")
    (secrets_dir / "web-password").write_text(WEB_PASSWORD)
    env = {"CSPA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "CSPA_SASL_USERNAME": SASL_USER,
           "CSPA_SASL_PASSWORD_FILE": str(secrets_dir / "sasl-password"),
           "CSPA_WEB_CONFIG_FILE": str(secrets_dir / "web.yml"),
           # A client's settings too: read by the worker's Settings, used by none of it.
           "CSPA_WEB_USERNAME": "report",
           "CSPA_WEB_PASSWORD_FILE": str(secrets_dir / "web-password"),
           "CSPA_LOG_LEVEL": "DEBUG"}  # the most the worker ever logs
    settings = Settings(broker=bootstrap, **{k.removeprefix("CSPA_").lower(): v
                                             for k, v in env.items()})
    assert settings.sasl_password.get_secret_value() == SASL_PASSWORD
    ensure_topics(settings)
    at = datetime.now(UTC) - timedelta(hours=3)
    key = f.key("privacy-secrets")
    produce_tracked(bootstrap, [Message(TOPICS["contacts"], key.encode(),
                                        orjson.dumps(f.received(key, at)), None),
                                Message(TOPICS["contacts"], key.encode(), b"{oops", None)],
                    **settings.kafka_client_kwargs())
    client = WebClient("report", SecretStr(WEB_PASSWORD), ca)
    worker = WorkerProcess(bootstrap, tmp_path / "w", env=env, client=client)
    try:
        worker.start()
        wait_for(lambda: total_rejected(worker) >= 1, 60, "the bad record rejected")
        bodies = {path: worker.get(path).decode(errors="replace")
                  for path in registered_paths(settings) if path not in ("/ready", "/health")}
        bodies.update({p: json.dumps(worker.get_json(p)) for p in ("/ready", "/health")})
        pid = worker.proc.pid if worker.proc else 0
        proc = {name: Path(f"/proc/{pid}/{name}").read_bytes().decode(errors="replace")
                for name in ("cmdline", "environ")}
    finally:
        worker.stop()
    texts = {"log": worker.log_path.read_text(errors="replace"), **bodies, **proc}
    assert "rejected topic=cspa.contacts.v1" in texts["log"]  # the log has content
    assert "CSPA_SASL_PASSWORD_FILE=" in proc["environ"]  # the file's path, not its content
    for secret in (SASL_PASSWORD, WEB_PASSWORD, web_hash):
        for where, text in texts.items():
            assert secret not in text, f"a secret in {where}"
    print(f"\nno secret in the log ({len(texts['log'])} chars), {len(bodies)} endpoints, "
          "cmdline or environ")


def total_rejected(worker: WorkerProcess) -> float:
    return sum(v for (name, _), v in worker.samples().items()
               if name == "cspa_events_rejected_total")
