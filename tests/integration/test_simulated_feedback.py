"""The simulator's feedback through the real CLI and a real broker: what ``make run`` and
``make year`` do (``stream.upstream.simulator.run``), at a reduced size. The report's
section 6 counts the feedback generated and prints the approved quotes the producer sealed
(each under its own key on the key topic), except the withdrawn one, whose key the
simulator tombstoned. Expected figures are counted here from ``generate``'s events."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from stream.contract.events import FeedbackQuoteApproved, FeedbackReceived, FeedbackWithdrawn
from stream.contract.taxonomy import load_taxonomy
from stream.contract.topics import load_topics
from stream.report.quotes import read_topic
from stream.settings import Settings
from stream.upstream.feedback import quote_for
from tests.integration.harness import consumed, wait_for
from tests.integration.reporting import pipeline, run_cli

pytestmark = pytest.mark.integration

LONDON = ZoneInfo("Europe/London")
START, DAYS, SEED, SCALE = date(2019, 6, 1), 92, 2, 0.3  # seed 2: a quote kept, one withdrawn
MONTHS = ("2019-06", "2019-07", "2019-08")


def _expected() -> tuple[Counter[str], list[str], int]:
    from stream.upstream.simulator import generate

    taxonomy = load_taxonomy()
    events = [e for e in generate(START, DAYS, seed=SEED, scale=SCALE, taxonomy=taxonomy)
              if e.event_type.startswith("feedback.")]  # type: ignore[attr-defined]
    by_from = Counter(e.from_whom for e in events if isinstance(e, FeedbackReceived))
    withdrawn = {e.feedback_key for e in events if isinstance(e, FeedbackWithdrawn)}
    notes = [f"\u201c{quote_for(e.feedback_key, e.attribution)}\u201d "
             f"({taxonomy.label('quote_attribution', e.attribution)} "
             f"{e.occurred_at.astimezone(LONDON).year})."
             for e in events if isinstance(e, FeedbackQuoteApproved)
             and e.consent_to_publish and e.feedback_key not in withdrawn]
    return by_from, notes, len(withdrawn)


def test_simulated_feedback_reaches_section_6_with_its_quotes(tmp_path: Path) -> None:
    by_from, notes, withdrawn = _expected()
    assert notes and withdrawn  # the seed gives both cases
    with pipeline(tmp_path) as pipe:
        bootstrap = pipe.broker.bootstrap
        done = run_cli(["simulate", "--start", START.isoformat(), "--days", str(DAYS),
                        "--seed", str(SEED), "--scale", str(SCALE)], timeout=300,
                       CSPA_BROKER=bootstrap)
        assert done.returncode == 0, done.stderr[-2000:]
        match = re.search(r"sent (\d+) events", done.stdout)
        assert match, done.stdout
        wait_for(lambda: consumed(pipe.worker) >= int(match.group(1)), 240, "all consumed")
        pipe.settled()
        doc = pipe.report_json(f"{MONTHS[0]}..{MONTHS[-1]}", CSPA_BROKER=bootstrap)
        section = next(s for s in doc["sections"] if s["key"] == "feedback")
        assert section["notes"] == notes
        rows = {r["key"]: r["values"][-1] for r in section["tables"][0]["rows"]}
        assert rows["total"] == sum(by_from.values())
        assert {k: rows[k] for k in by_from} == dict(by_from)
        assert rows["feedback_withdrawn"] == withdrawn
        text = pipe.report(f"{MONTHS[0]}..{MONTHS[-1]}", "text", CSPA_BROKER=bootstrap)
        assert all(note in text.splitlines() for note in notes)  # what make year prints
        # what the topic holds is sealed: no quote in clear
        raw = asyncio.run(read_topic(Settings(broker=bootstrap), load_topics()["feedback"], 30))
        texts = [n.split("\u201d")[0].lstrip("\u201c").encode() for n in notes]
        assert not any(t in (v or b"") for t in texts for _, v in raw)
