"""'A bug must not stop the stream': the internal_error handlers of the agent's fold
(stream/worker/agents.py) and of the figures' recount (stream/worker/processor.py)."""

from __future__ import annotations

import logging

import pytest
from faust.types import TP

from stream.state import progress, records
from stream.worker.batches import Batch
from tests.factories import key, received
from tests.unit.worker.test_agents import T0, TOPIC, _agent, _record


def _received_count(state, partition: int) -> int:
    cells = state.parts[(TOPIC, partition)].cells
    return sum(c.count for (f, _), c in cells.items() if f == "contacts_received")


@pytest.mark.asyncio
async def test_a_fold_that_raises_dead_letters_that_event_and_the_rest_go_on(taxonomy, ctx):
    agent, state, metrics = _agent(taxonomy, ctx)
    a, b, c = key("a"), key("b"), key("c")
    fold = agent.processor.fold

    def buggy(k, *args):
        if k == b.encode():
            raise KeyError(f"the event data {b}")  # a message that could quote the event
        return fold(k, *args)

    agent.processor.fold = buggy
    await agent.handle(Batch(TP(TOPIC, 1), 1, [_record(5, a, received(a, T0)),
                                               _record(6, b, received(b, T0)),
                                               _record(7, c, received(c, T0))]))
    [letter] = agent.dlq.sent
    assert (letter["offset"], letter["reason"]) == (6, "internal_error")
    assert b not in str({k: v for k, v in letter.items() if k not in ("key_b64", "value_b64")})
    assert metrics.rejected.labels(TOPIC, "internal_error")._value.get() == 1
    # The events either side were folded, and the marker moved past all three.
    [(pending, owners, frontier)] = agent.writer.writes
    assert set(pending) == {records.table_key("contact", a), records.table_key("contact", c)}
    assert owners[progress.marker_key(1)] == 1 and frontier == {1: 8}
    assert _received_count(state, 1) == 2


@pytest.mark.asyncio
async def test_a_recount_that_raises_is_logged_without_the_key_and_counted(
        taxonomy, ctx, caplog):
    agent, state, metrics = _agent(taxonomy, ctx)
    a, b = key("a"), key("b")
    recount = agent.processor._recount
    broken = records.table_key("contact", a)

    def buggy(partition, tkey, old, new):
        if tkey == broken:
            raise ValueError(tkey)
        return recount(partition, tkey, old, new)

    agent.processor._recount = buggy
    with caplog.at_level(logging.ERROR):
        await agent.handle(Batch(TP(TOPIC, 3), 1, [_record(0, a, received(a, T0)),
                                                   _record(1, b, received(b, T0))]))
    assert metrics.rejected.labels(TOPIC, "internal_error")._value.get() == 1
    assert "figures not recounted" in caplog.text and "error=ValueError" in caplog.text
    assert a not in caplog.text
    assert _received_count(state, 3) == 1  # b counted; the stream went on
    [(pending, _, frontier)] = agent.writer.writes
    assert broken in pending and frontier == {3: 2}  # the record itself is kept
