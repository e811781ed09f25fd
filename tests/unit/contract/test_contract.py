"""The published contract: schemas in sync, examples valid, settings isolated from Faust."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import orjson
import pytest

from stream.contract.decoder import Decoder
from stream.contract.events import FAMILIES, family_types
from stream.contract.schemas import SCHEMA_DIR, render
from stream.contract.topics import event_families, load_topics
from stream.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
FAMILY_OF_TOPIC = {s.name: f for f, s in event_families(load_topics()).items()}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_committed_schema_matches_the_models(family, taxonomy):
    spec = load_topics()[family]
    committed = (SCHEMA_DIR / f"{spec.name}.schema.json").read_text()
    assert committed == render(family, taxonomy), "run `make schemas` and commit the result"


def test_schema_enums_come_from_the_taxonomy(taxonomy):
    schema = json.loads((SCHEMA_DIR / "cspa.contacts.v1.schema.json").read_text())
    received = schema["$defs"]["ContactReceived"]["properties"]
    assert received["source_code"]["enum"] == list(taxonomy.ordered("source_code"))
    assert "Jane" not in json.dumps(schema)


def test_topic_catalogue_lists_every_model():
    for family, spec in event_families(load_topics()).items():
        modelled = {m.model_fields["event_type"].annotation.__args__[0]
                    for m in family_types(family)}
        assert modelled == set(spec.event_types), family


@pytest.mark.parametrize("path", sorted((ROOT / "topics" / "examples").glob("*.jsonl")),
                         ids=lambda p: p.name)
def test_examples_are_valid_events(path, taxonomy):
    topic = path.name.removesuffix(".jsonl")
    decoder = Decoder(FAMILY_OF_TOPIC[topic], taxonomy)
    lines = path.read_bytes().splitlines()
    assert lines
    for line in lines:
        event = decoder.decode(_key(line), line, 2e9)
        assert hasattr(event, "event_type"), (line, event)


def _key(line: bytes) -> bytes:
    body = orjson.loads(line)
    for name in ("contact_key", "enquiry_key", "call_key", "audit_key", "review_key",
                 "sample_key", "advisor_key", "feedback_key"):
        if name in body:
            return body[name].encode()
    raise AssertionError("no key")


def test_examples_cover_every_event_type():
    seen = set()
    for path in (ROOT / "topics" / "examples").glob("*.jsonl"):
        seen |= {orjson.loads(line)["event_type"] for line in path.read_bytes().splitlines()}
    catalogue = tomllib.loads((ROOT / "topics" / "topics.toml").read_text())
    wanted = {t for f, spec in catalogue.items() if f != "deadletter"
              for t in spec["event_types"]}
    assert wanted <= seen


def test_faust_environment_variables_cannot_override_settings(monkeypatch):
    from stream.worker.app import create_app

    monkeypatch.setenv("BROKER_URL", "kafka://elsewhere:1")
    monkeypatch.setenv("WEB_PORT", "1")
    monkeypatch.setenv("F_WEB_BIND", "0.0.0.0")
    monkeypatch.setenv("STORE", "rocksdb://")
    worker = create_app(Settings(broker="127.0.0.1:39092", web_port=16066))
    conf = worker.app.conf
    assert [str(u) for u in conf.broker] == ["kafka://127.0.0.1:39092"]
    assert conf.web_port == 16066
    assert conf.web_bind == "127.0.0.1"
    assert str(conf.store) == "local:"  # the setting's default, not STORE
    assert conf.web_tables_enabled is False


def test_settings_come_from_cspa_variables_only(monkeypatch):
    monkeypatch.setenv("CSPA_SERVICE_LEVEL_SECONDS", "30")
    monkeypatch.setenv("SERVICE_LEVEL_SECONDS", "99")
    assert Settings().service_level_seconds == 30
    monkeypatch.setenv("CSPA_NOT_A_SETTING", "1")
    Settings()  # unknown CSPA_ variables are not an error for the env source
    with pytest.raises(ValueError):
        Settings(office_start="18:00", office_end="09:00")


def test_event_topics_keep_backfilled_events():
    # Kafka applies retention to the record timestamp, which is the event time:
    # a 2019 backfill under a finite retention would be deleted on arrival.
    for spec in event_families(load_topics()).values():
        assert spec.retention_ms == -1, spec.name


def test_event_time_is_occurred_at_and_never_part_of_the_event(taxonomy):
    # The cached POSIX time must be occurred_at's, and must not leak into the
    # event's dump, its equality or its JSON (it is derived, not contract).
    path = ROOT / "topics" / "examples" / "cspa.contacts.v1.jsonl"
    line = path.read_bytes().splitlines()[0]
    decoder = Decoder("contacts", taxonomy)
    event = decoder.decode(_key(line), line, 2e9)
    twin = decoder.decode(_key(line), line, 2e9)
    assert event.timestamp == event.occurred_at.timestamp()
    assert event.timestamp is event.timestamp  # worked out once
    assert "timestamp" not in event.model_dump() and "timestamp" not in event.model_dump_json()
    assert event == twin and set(orjson.loads(event.model_dump_json())) == set(
        type(event).model_fields)
