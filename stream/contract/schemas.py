"""JSON Schemas of the contract, generated from the pydantic models.

One schema per topic (``topics/schemas/<topic>.schema.json``): a ``oneOf`` over
the topic's event types. Every category field (marked ``x-category``) gets the
``enum`` of its codes from the taxonomy, so the published schema is the whole
contract for a non-Python producer. A unit test fails when the committed files
drift from what this module generates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from stream.contract.events import FAMILIES
from stream.contract.taxonomy import Taxonomy, load_taxonomy
from stream.contract.topics import event_families, load_topics
from stream.settings import ROOT, Settings

SCHEMA_DIR = ROOT / "topics" / "schemas"


def _inject_enums(node: Any, taxonomy: Taxonomy) -> None:
    if isinstance(node, dict):
        category = node.get("x-category")
        if isinstance(category, str):
            node["enum"] = list(taxonomy.ordered(category))
        for value in node.values():
            _inject_enums(value, taxonomy)
    elif isinstance(node, list):
        for value in node:
            _inject_enums(value, taxonomy)


def topic_schema(family: str, taxonomy: Taxonomy) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one topic's messages."""
    spec = event_families(load_topics())[family]
    schema = TypeAdapter(FAMILIES[family]).json_schema(mode="validation")
    _inject_enums(schema, taxonomy)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:cspa:topic:{spec.name}",
        "title": f"Events on {spec.name}",
        "description": (f"Message value of topic {spec.name}. Kafka key: {spec.key}. "
                        "Kafka timestamp: occurred_at."),
        **schema,
    }


def render(family: str, taxonomy: Taxonomy) -> str:
    return json.dumps(topic_schema(family, taxonomy), indent=2, sort_keys=True) + "\n"


def write_schemas(settings: Settings) -> list[Path]:
    """Regenerate every topic's schema file; returns the paths written."""
    taxonomy = load_taxonomy(settings.taxonomy_path)
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    paths = []
    for family, spec in event_families(load_topics()).items():
        path = SCHEMA_DIR / f"{spec.name}.schema.json"
        path.write_text(render(family, taxonomy))
        paths.append(path)
    return paths
