"""Reproducible publication, end to end: a correction after ``report --publish`` shows up
in ``report --since-published`` with its old and new values and the event behind it.

Known events (tests/reportgen) go through a real broker into a real worker; the report is
published (a snapshot kept in ``CSPA_PUBLISHED_DIR``); a decision is then re-recorded
(``recorded_at`` days later, another outcome: docs/contract.md "Corrections"). The
figures listed as changed must be exactly those whose published value differs between
the expectations computed by hand from the events before and after the correction.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests import reportgen as rg
from tests.integration.reporting import Pipeline, pipeline

pytestmark = pytest.mark.integration

MONTHS = "2019-07..2019-11"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pipeline, rg.Dataset]]:
    data = rg.generate(seed=27, contacts=400, emails=60, calls=120, enquiries=80, audits=30)
    with pipeline(tmp_path_factory.mktemp("publication")) as p:
        p.send(data.messages)
        yield p, data


def _published(doc: dict[str, Any], facts: rg.Facts,
               sections: dict[str, str]) -> dict[str, rg.Fig]:
    """The figures ``doc`` published, as "section/table/row/column[/count]": every value
    the independent expectation (counts of 1-5 hidden), except those secondary
    suppression hid as well (their protection is the disclosure property test's)."""
    hidden = rg.published(rg.expected_report(facts, rg.MONTHS))
    got = rg.flatten(doc)
    secondary = {k for k, f in hidden.items() if f.value != "*" and got.get(k) == "*"}
    expected = {k: replace(f, value="*") if k in secondary else f for k, f in hidden.items()}
    assert rg.compare(doc, expected) == []
    return {"/".join((sections[key[0]], *key)): fig for key, fig in expected.items()}


def _correction(data: rg.Dataset) -> tuple[dict[str, Any], str]:
    """A September decision, decided once, re-recorded three days later as another
    outcome decided that month (so valid then); and the new outcome."""
    decided = [e for e in data.events() if e["event_type"] == "contact.decided"]
    ids: dict[str, int] = {}
    for e in decided:
        ids[e["contact_key"]] = ids.get(e["contact_key"], 0) + 1
    september = [e for e in decided
                 if rg.month_of(datetime.fromisoformat(e["occurred_at"])) == "2019-09"]
    counts: dict[str, int] = {}
    for e in september:
        counts[e["outcome"]] = counts.get(e["outcome"], 0) + 1
    common = sorted(counts, key=lambda o: -counts[o])
    old = next(e for e in september if ids[e["contact_key"]] == 1 and e["outcome"] == common[0])
    fixed = dict(old, event_id=old["event_id"] + "-fix", outcome=common[1])
    at = datetime.fromisoformat(old["occurred_at"])
    fixed["recorded_at"] = (at + timedelta(days=3)).isoformat()
    return fixed, common[1]


def test_a_correction_after_publication_is_listed(
        loaded: tuple[Pipeline, rg.Dataset], tmp_path: Path) -> None:
    p, data = loaded
    folder = tmp_path / "published"
    doc = p.report_json(MONTHS, "--publish", CSPA_PUBLISHED_DIR=str(folder))
    [kept] = list(folder.iterdir())
    snapshot = orjson.loads(kept.read_bytes())
    assert snapshot["data_as_at"] == doc["data_as_at"]
    assert snapshot["months"] == list(rg.MONTHS)
    sections = {t["key"]: s["key"] for s in doc["sections"] for t in s["tables"]}
    before = _published(doc, rg.facts_of(data), sections)
    flat = {"/".join((sections[k[0]], *k)): v for k, v in rg.flatten(doc).items()}
    assert snapshot["figures"] == flat  # exactly what was published

    unchanged = p.report_json(MONTHS, "--since-published", str(kept))
    assert unchanged["changes"] == []

    fixed, _ = _correction(data)
    p.send([rg.Builder.message(fixed)])
    # what a publication now would print (its own secondary suppression pattern)
    later = p.report_json(MONTHS, "--publish", CSPA_PUBLISHED_DIR=str(tmp_path / "later"))
    after = _published(later, rg.facts_of([*data.events(), fixed]), sections)
    want = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert len(want) >= 2  # the old outcome's count down, the new one's up (at least)

    found = p.report_json(MONTHS, "--since-published", str(kept))
    assert {c["figure"] for c in found["changes"]} == want
    for c in found["changes"]:
        assert not rg.mismatch(c["old"], before[c["figure"]]), c
        assert not rg.mismatch(c["new"], after[c["figure"]]), c
    # one event since, on the contacts topic that feeds the RFS section
    assert {c["events"] for c in found["changes"]} == {1}
    then, now = found["data_as_at_then"]["offsets"], found["data_as_at_now"]["offsets"]
    moved = sum(o - then[t][q] for t, ps in now.items() for q, o in ps.items())
    assert moved == 1
    text = p.report(MONTHS, "text", "--since-published", str(kept))
    assert f"{len(want)} published figure(s) changed" in text
