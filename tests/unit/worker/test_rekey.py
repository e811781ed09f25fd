"""The hop (stream/worker/rekey.py): contacts re-keyed by child, counted once whatever is re-sent.

The contacts agent's batches are handled twice over the same records table, as after a
crash between the changelog write and the progress marker: every hop is sent again, and
the children table, fed every copy in any order, counts each contact once.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from types import SimpleNamespace

import orjson
import pytest
from faust.types import TP
from prometheus_client import CollectorRegistry

from stream.contract.decoder import Decoder
from stream.contract.partitioner import partition_of
from stream.state import progress, records
from stream.worker.agents import TopicAgent
from stream.worker.batches import Batch
from stream.worker.metrics import PipelineMetrics
from stream.worker.processor import CellState, FamilyProcessor
from stream.worker.rekey import ChildProcessor, Rekey, hops_of
from tests.conftest import LONDON
from tests.factories import base, key, received
from tests.unit.worker.test_agents import _DeadLetters

CONTACTS, HOPS, PARTS = "t.contacts", "t.children", 6
T0 = datetime(2019, 8, 2, 10, tzinfo=LONDON)


class _Writer:
    """Writes the records to the table (as the changelog would be restored) and keeps
    every hop handed to it."""

    def __init__(self, table):
        self.table = table
        self.hops: list[tuple[int, bytes, bytes]] = []

    async def write(self, pending, owners, frontier, hops=None, turn=None):
        self.turn = turn
        for k, r in pending.items():
            self.table[k] = records.dumps(r)
        self.hops += hops or []
        pending.clear()
        owners.clear()


def _agent(processor, state_table, rekey=None):
    table = SimpleNamespace(data=state_table)
    return TopicAgent(processor, table, progress.Frontier(), _Writer(state_table),
                      _DeadLetters(), processor.metrics, epoch_of=lambda tp: 1, rekey=rekey)


def _msg(offset, k, event):
    return SimpleNamespace(offset=offset, key=k.encode(), value=orjson.dumps(event),
                           timestamp=T0.timestamp() * 1000)


def _counts(state, figure):
    out: Counter[tuple[str, ...]] = Counter()
    for (topic, _), agg in state.parts.items():
        for (f, labels), cell in agg.cells.items():
            if f == figure and topic == HOPS:
                out[labels] += cell.count
    return out


def _contacts(taxonomy, ctx, metrics, state):
    processor = FamilyProcessor(CONTACTS, Decoder("contacts", taxonomy), ctx, state, metrics)
    return _agent(processor, {}, Rekey(PARTS, ctx))


async def _fold_hops(agent, hops):
    by_part: dict[int, list] = {}
    for i, (p, k, v) in enumerate(hops):
        by_part.setdefault(p, []).append(SimpleNamespace(offset=i, key=k, value=v,
                                                         timestamp=None))
    for p, msgs in by_part.items():
        await agent.handle(Batch(TP(HOPS, p), 1, msgs))


@pytest.mark.asyncio
async def test_a_batch_read_again_sends_its_hops_again_and_counts_once(taxonomy, ctx):
    state, metrics = CellState(), PipelineMetrics(CollectorRegistry())
    contacts = _contacts(taxonomy, ctx, metrics, state)
    child = key("child")
    a, b, c = key("a"), key("b"), key("c")
    batch = Batch(TP(CONTACTS, 0), 1, [
        _msg(0, a, received(a, T0, child=child)),
        _msg(1, b, received(b, T0 + timedelta(days=30), source_code="2A", child=child)),
        _msg(2, b, base("contact.progressed", T0 + timedelta(days=31), contact_key=b,
                        destination="childrens_social_care")),
        _msg(3, c, received(c, T0)),  # no child: no hop
    ])
    await contacts.handle(batch)
    first = list(contacts.writer.hops)
    assert contacts.writer.turn is contacts.turn  # the write is sliced in the agents' turns
    assert len(first) == 2 and {p for p, _, _ in first} == {partition_of(child.encode(), PARTS)}
    await contacts.handle(batch)  # the same batch again: every record a duplicate
    assert sorted(contacts.writer.hops[2:]) == sorted(first)  # the same hops, again

    children = ChildProcessor(HOPS, 92.0, ctx, state, metrics, None, PARTS)
    child_agent = _agent(children, {})
    await _fold_hops(child_agent, contacts.writer.hops[::-1] + contacts.writer.hops)
    assert _counts(state, "child_contacts") == Counter({
        ("2019-08", "police", "no"): 1, ("2019-09", "schools", "yes"): 1})
    assert _counts(state, "child_referrals") == Counter({("2019-09", "schools", "no"): 1})
    assert child_agent.dlq.sent == []


@pytest.mark.asyncio
async def test_a_hop_older_than_the_childs_window_is_dead_lettered(taxonomy, ctx):
    state, metrics = CellState(), PipelineMetrics(CollectorRegistry())
    contacts = _contacts(taxonomy, ctx, metrics, state)
    child, a, b = key("child"), key("a"), key("b")
    await contacts.handle(Batch(TP(CONTACTS, 0), 1, [
        _msg(0, a, received(a, T0 + timedelta(days=800), child=child)),
        _msg(1, b, received(b, T0, child=child))]))
    ordered = sorted(contacts.writer.hops, key=lambda h: -orjson.loads(h[2])["t"][0])
    child_agent = _agent(ChildProcessor(HOPS, 92.0, ctx, state, metrics, None, PARTS), {})
    await _fold_hops(child_agent, ordered)  # the later contact first
    [letter] = child_agent.dlq.sent
    assert (letter["reason"], letter["source_topic"]) == ("child_window_passed", HOPS)
    assert metrics.rejected.labels(HOPS, "child_window_passed")._value.get() == 1
    assert sum(_counts(state, "child_contacts").values()) == 1


def test_a_contact_naming_no_child_makes_no_hop(ctx):
    record = {"k": "contact", "p": 0, "rcv": [T0.timestamp(), "e1", "email", "6", "rfs"]}
    assert hops_of(record, "a", ctx) == []
    record["rcv"] = [*record["rcv"], "kid"]
    [(child, value)] = hops_of(record, "a", ctx)
    assert child == "kid" and orjson.loads(value)["t"][2] == "police"


def _corrected(event, recorded):
    return {**event, "event_id": event["event_id"] + "-c", "recorded_at": recorded.isoformat()}


@pytest.mark.asyncio
async def test_a_correction_naming_another_child_moves_the_contact_even_when_read_again(
        taxonomy, ctx):
    state, metrics = CellState(), PipelineMetrics(CollectorRegistry())
    contacts = _contacts(taxonomy, ctx, metrics, state)
    first, second, a, b = key("first"), key("second"), key("a"), key("b")
    wrong = received(a, T0, child=first)
    await contacts.handle(Batch(TP(CONTACTS, 0), 1, [
        _msg(0, a, wrong), _msg(1, b, received(b, T0 + timedelta(days=9), child=first))]))
    fix = Batch(TP(CONTACTS, 0), 1, [
        _msg(2, a, _corrected({**wrong, "child_key": second}, T0 + timedelta(days=20)))])
    await contacts.handle(fix)
    await contacts.handle(fix)  # read again after a crash: the same hop and withdrawal
    sent = contacts.writer.hops
    assert [orjson.loads(v)["t"][2] for _, _, v in sent[2:]].count(None) == 2

    child_agent = _agent(ChildProcessor(HOPS, 92.0, ctx, state, metrics, None, PARTS), {})
    await _fold_hops(child_agent, sent + sent[:2])  # the first hops again, after all
    # "a" is the second child's only contact; "b" is the first child's only one: no repeat
    assert _counts(state, "child_contacts") == Counter({("2019-08", "police", "no"): 2})
    assert child_agent.dlq.sent == []


@pytest.mark.asyncio
async def test_a_settled_contact_corrected_into_the_window_is_not_counted_again(taxonomy, ctx):
    state, metrics = CellState(), PipelineMetrics(CollectorRegistry())
    contacts = _contacts(taxonomy, ctx, metrics, state)
    child, old, new = key("child"), key("old"), key("new")
    first = received(old, T0, child=child)
    await contacts.handle(Batch(TP(CONTACTS, 0), 1, [
        _msg(0, old, first), _msg(1, new, received(new, T0 + timedelta(days=800), child=child))]))
    child_agent = _agent(ChildProcessor(HOPS, 92.0, ctx, state, metrics, None, PARTS), {})
    in_time = sorted(contacts.writer.hops, key=lambda h: orjson.loads(h[2])["t"][0])
    await _fold_hops(child_agent, in_time)  # "old" counted, then settled into the tally
    assert sum(_counts(state, "child_contacts").values()) == 2
    # the case system corrects the old contact's date to inside the child's window
    moved = {**_corrected(first, T0 + timedelta(days=801)),
             "occurred_at": (T0 + timedelta(days=700)).isoformat()}
    await contacts.handle(Batch(TP(CONTACTS, 0), 1, [_msg(2, old, moved)]))
    [hop] = contacts.writer.hops[2:]
    assert orjson.loads(hop[2])["f"] == T0.timestamp()  # the version the child settled
    await _fold_hops(child_agent, [hop])
    assert sum(_counts(state, "child_contacts").values()) == 2  # not 3: once, as settled
    [letter] = child_agent.dlq.sent
    assert letter["reason"] == "child_window_passed"


@pytest.mark.asyncio
async def test_a_settled_contact_corrected_to_another_child_stays_counted_once(taxonomy, ctx):
    # The old child has settled the contact into its tally: a correction recorded more
    # than 52 weeks after it may not move it, or the new child would count it again
    # while the old child's tally keeps it (the withdrawal finds nothing to take back).
    state, metrics = CellState(), PipelineMetrics(CollectorRegistry())
    contacts = _contacts(taxonomy, ctx, metrics, state)
    child, other, old, new = key("child"), key("other"), key("old"), key("new")
    first = received(old, T0, child=child)
    await contacts.handle(Batch(TP(CONTACTS, 0), 1, [
        _msg(0, old, first), _msg(1, new, received(new, T0 + timedelta(days=800), child=child))]))
    child_agent = _agent(ChildProcessor(HOPS, 92.0, ctx, state, metrics, None, PARTS), {})
    await _fold_hops(child_agent, sorted(contacts.writer.hops,
                                         key=lambda h: orjson.loads(h[2])["t"][0]))
    assert sum(_counts(state, "child_contacts").values()) == 2  # "old" settled
    renamed = _corrected({**first, "child_key": other}, T0 + timedelta(days=801))
    await contacts.handle(Batch(TP(CONTACTS, 0), 1, [_msg(2, old, renamed)]))
    [hop] = contacts.writer.hops[2:]  # to the old child only, and no withdrawal
    assert hop[1] == child.encode() and orjson.loads(hop[2])["t"][2] is not None
    await _fold_hops(child_agent, [hop])
    assert sum(_counts(state, "child_contacts").values()) == 2  # not 3
    [letter] = child_agent.dlq.sent
    assert letter["reason"] == "child_window_passed"
    # within 52 weeks of the version it corrects, a correction still moves its contact
    recent = received(key("recent"), T0 + timedelta(days=500), child=child)
    await contacts.handle(Batch(TP(CONTACTS, 0), 1, [
        _msg(3, recent["contact_key"], recent),
        _msg(4, recent["contact_key"],
             _corrected({**recent, "child_key": other}, T0 + timedelta(days=500 + 363)))]))
    assert {k for _, k, _ in contacts.writer.hops[3:]} == {child.encode(), other.encode()}


@pytest.mark.asyncio
async def test_a_large_batchs_hops_are_made_in_slices_and_are_the_same(taxonomy, ctx):
    """A catch-up's contacts batch names thousands of children: its hops are made
    ``CHUNK`` contacts at a time, letting the loop go between chunks (turn.py)."""
    from stream.worker.turn import WHOLE, Turn
    from tests.unit.worker.test_turn import with_turns_beside

    msgs = [_msg(i, key(f"c{i}"), received(key(f"c{i}"), T0, child=key(f"child{i % 90}")))
            for i in range(150)]

    async def made(turn):
        state, metrics = CellState(), PipelineMetrics(CollectorRegistry())
        contacts = _contacts(taxonomy, ctx, metrics, state)
        contacts.apply_now(Batch(TP(CONTACTS, 0), 1, msgs))
        hops, turns = await with_turns_beside(
            contacts.rekey.hops(contacts.pending, contacts.records, turn))
        return hops, turns, contacts.rekey.touched

    whole, sliced = await made(WHOLE), await made(Turn(seconds=0.0))
    assert len(whole[0]) == 150 and sliced[0] == whole[0]  # the same hops, in order
    assert whole[1] == 0 and sliced[1] >= 3  # 150 contacts: 3 chunks of at most 64
    assert whole[2] == set() and sliced[2] == set()  # each batch's contacts forgotten
