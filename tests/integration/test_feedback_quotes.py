"""Section 6 end to end on a real broker: a quote approved is printed; withdrawn, it is
gone from the report and cannot be opened from the source topic's raw bytes, while the
counts stay (crypto-shredding, stream/contract/quotes.py)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from stream.contract.quotes import unseal
from stream.contract.topics import FEEDBACK_KEYS, load_topics
from stream.report.quotes import latest_keys, read_topic
from stream.settings import Settings
from stream.upstream.producer import EventProducer
from tests import factories as f
from tests.integration.harness import consumed, wait_for
from tests.integration.reporting import Pipeline, pipeline

pytestmark = pytest.mark.integration

LONDON = ZoneInfo("Europe/London")
FK = f.key("feedback-1")
OTHER = f.key("feedback-2")
QUOTE = "The guidance you offered was great CANARY-sixA-91x"
KEPT = "It feels more of an integrated service CANARY-keep-22q"


@pytest.fixture(scope="module")
def pipe(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with pipeline(tmp_path_factory.mktemp("feedback")) as p:
        yield p


def _send(pipe: Pipeline, coro_of, n: int) -> None:  # type: ignore[no-untyped-def]
    before = consumed(pipe.worker)

    async def go() -> None:
        async with EventProducer(Settings(broker=pipe.broker.bootstrap)) as producer:
            await coro_of(producer)
            await producer.flush()

    asyncio.run(go())
    wait_for(lambda: consumed(pipe.worker) >= before + n, 120, f"{n} feedback events")
    pipe.settled()


def _section6(pipe: Pipeline) -> dict:  # type: ignore[type-arg]
    doc = pipe.report_json("2019-09..2019-10", CSPA_BROKER=pipe.broker.bootstrap)
    return next(s for s in doc["sections"] if s["key"] == "feedback")


def _counts(section: dict) -> dict[str, int]:  # type: ignore[type-arg]
    rows = section["tables"][0]["rows"]
    return {r["key"]: r["values"][-1] for r in rows}


def test_a_quote_is_printed_once_approved_and_unreadable_everywhere_once_withdrawn(
        pipe: Pipeline) -> None:
    at = datetime(2019, 9, 12, 10, 0, tzinfo=LONDON)

    async def approve(producer: EventProducer) -> None:
        for case, text, who in ((FK, QUOTE, "parent_feedback"),
                                (OTHER, KEPT, "police_colleagues")):
            await producer.send(producer.validator.build("feedback", f.feedback(
                case, at, from_whom="parent_carer" if case == FK else "partner_agency",
                agency=None if case == FK else "police")))
            day = 20 if case == FK else 21  # the report prints quotes oldest first
            approval = f.quote_approved(case, at.replace(day=day), "", attribution=who)
            del approval["sealed_quote"]
            await producer.approve_quote(approval, text)

    _send(pipe, approve, 4)
    section = _section6(pipe)
    assert section["notes"] == [f"\u201c{QUOTE}\u201d (Parent Feedback 2019).",
                                f"\u201c{KEPT}\u201d (Police Colleagues 2019)."]
    before = _counts(section)
    assert (before["total"], before["feedback_quotes_approved"], before["parent_carer"],
            before["partner_agency"], before["feedback_withdrawn"]) == (2, 2, 1, 1, 0)

    async def withdraw(producer: EventProducer) -> None:
        await producer.withdraw_quote(f.withdrawn(FK, datetime(2019, 10, 2, 9, tzinfo=LONDON)))

    _send(pipe, withdraw, 1)
    after = _section6(pipe)
    assert after["notes"] == [f"\u201c{KEPT}\u201d (Police Colleagues 2019)."]
    counts = _counts(after)
    assert (counts["total"], counts["feedback_quotes_approved"],
            counts["feedback_withdrawn"]) == (2, 2, 1)  # counts stay

    # the source topic still holds the sealed quote; with what the key topic now holds
    # it opens for the kept quote only, and nothing on the topic is the quote in clear
    settings, topics = Settings(broker=pipe.broker.bootstrap), load_topics()
    raw = asyncio.run(read_topic(settings, topics["feedback"], 30))
    keys = latest_keys(asyncio.run(read_topic(settings, topics[FEEDBACK_KEYS], 30)))
    assert FK not in keys and OTHER in keys
    sealed = {orjson.loads(v)["feedback_key"]: orjson.loads(v)["sealed_quote"]
              for _, v in raw if v and b"sealed_quote" in v}
    assert unseal(sealed[FK], keys.get(FK), FK) is None
    assert unseal(sealed[OTHER], keys.get(OTHER), OTHER) == KEPT
    assert not any(b"CANARY" in (v or b"") for _, v in raw)
    # and the worker's own state never held it: its /cells has counts only
    assert b"CANARY" not in pipe.worker.get("/cells")


def test_the_report_without_the_broker_prints_the_counts_and_says_quotes_are_left_out(
        pipe: Pipeline, tmp_path: Path) -> None:
    from tests.integration.reporting import run_cli

    done = run_cli(["report", "--months", "2019-09", "--workers", pipe.worker.url,
                    "--format", "json", "--timeout", "3"], CSPA_BROKER="127.0.0.1:1")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "quotes left out" in done.stderr and "CANARY" not in done.stderr + done.stdout
