"""The local store and its checkpoint: the figures they keep equal a refold of the records."""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import pickletools
import re
import stat
import time
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
from faust.types import TP
from prometheus_client import CollectorRegistry

from stream.contract.decoder import Decoder
from stream.state import archive, progress
from stream.state.calls_waiting import CallsWaiting
from stream.state.timeliness import OpenWork
from stream.worker import localstate
from stream.worker.agents import TopicAgent
from stream.worker.checkpoint import BrokerView, Checkpointer, usable
from stream.worker.localstate import LocalStore
from stream.worker.metrics import PipelineMetrics
from stream.worker.partitioned import partition, split
from stream.worker.processor import CellState, FamilyProcessor
from tests.conftest import LONDON
from tests.factories import decided, key, received

TOPIC = "t.contacts"
NOW = datetime(2026, 11, 26, 12, tzinfo=LONDON).timestamp()
T0 = datetime(2019, 8, 2, 10, tzinfo=LONDON)
KEY = b"0123456789abcdef0123456789abcdef"


class _Changelog(dict):
    """A records table that also keeps every write in order, as its changelog would."""

    def __init__(self):
        super().__init__()
        self.log: list[tuple[str, bytes]] = []

    def __setitem__(self, k, v):
        super().__setitem__(k, v)
        self.log.append((k, v))


def _store() -> LocalStore:
    return LocalStore("local://", SimpleNamespace(), SimpleNamespace(name="records"))


def _changelog(taxonomy, ctx, cases=40) -> list[tuple[int, str, bytes]]:
    """(partition, key, value) as a worker folding these events writes them."""
    proc = FamilyProcessor(TOPIC, Decoder("contacts", taxonomy), ctx, CellState(),
                           PipelineMetrics(CollectorRegistry()))
    table = _Changelog()
    out = []
    for i in range(cases):
        k = key(f"case{i}")
        events = [received(k, T0 + timedelta(hours=5 * i))]
        if i % 3:  # a third stay open: open work and breaches to keep
            events.append(decided(k, T0 + timedelta(hours=7 * i + 2), "level_2_eh"))
        for event in events:
            before = len(table.log)
            proc.process(k.encode(), orjson.dumps(event), i % 2, None, table, now=NOW)
            out += [(i % 2, tk, v) for tk, v in table.log[before:]]
    return out


def _derived(ctx, queues=("rfs",)):
    work = OpenWork(ctx.rules, ctx.calendar)
    work.listeners.append(CallsWaiting(queues, 600))
    return CellState(), work


def _refold(store: LocalStore, ctx, held=frozenset({0, 1})):
    state, work = _derived(ctx)
    state.rebuild(TOPIC, list(store.data.items()), set(held), ctx, work)
    return state, work


def _same(a, b, parts=(0, 1)):
    (state_a, work_a), (state_b, work_b) = a, b
    for p in parts:
        assert state_a.part(TOPIC, p).to_json() == state_b.part(TOPIC, p).to_json()
    owned = [(TOPIC, p) for p in parts]
    assert work_a.states(NOW, owned) == work_b.states(NOW, owned)
    assert work_a.breaches(NOW, owned) == work_b.breaches(NOW, owned)
    assert work_a.due_list(NOW, owned, 100) == work_b.due_list(NOW, owned, 100)


def _follow(store, state, work, ctx):
    store.on_change = lambda p, k, old, new: state.restored(TOPIC, p, k, old, new, ctx, work)


def test_offsets_tombstones_and_the_listener():
    store, seen = _store(), []
    store.on_change = lambda *change: seen.append(change)
    store.put(0, "a", b"1", 4)
    store.put(0, "a", b"1", 5)  # the same value again: no change to tell
    store.put(1, "b", b"2", 2)
    store.put(0, "a", None, 3)  # an older offset does not move the partition's back
    assert store.data == {"b": b"2"} and store.held == {0, 1} and not store._key_partition
    assert store.persisted_offset(TP("c", 0)) == 5 and store.persisted_offset(TP("c", 1)) == 2
    assert store.persisted_offset(TP("c", 7)) is None
    assert seen == [(0, "a", None, b"1"), (1, "b", None, b"2"), (0, "a", b"1", None)]
    store.written(1, 9)
    assert store.offsets == {0: 5, 1: 9}


@pytest.mark.asyncio
async def test_recovery_keeps_active_and_standby_partitions_and_forgets_the_rest():
    # Each record says its partition ("p"), a marker's key does: no key -> partition dict.
    # An erased cases' archive (retention) is placed by its key too, whatever its cells hold.
    store, value = _store(), lambda p: b'{"k":"c","p":%d,"x":[1,"p",{"p":9}]}' % p
    cells = b'{"through":5,"cells":[{"p":0,"k":"x"}]}'
    for p in range(3):
        store.put(p, f"c:{p}", value(p), 10 + p)
        store.put(p, progress.marker_key(p), b"%d" % (10 + p), 20 + p)
        store.put(p, archive.archive_key(p), cells, 30 + p)
    await store.on_recovery_completed({TP("c", 0)}, {TP("c", 2)})
    assert store.data == {"c:0": value(0), "c:2": value(2), progress.marker_key(0): b"10",
                          progress.marker_key(2): b"12", archive.archive_key(0): cells,
                          archive.archive_key(2): cells}
    assert store.offsets == {0: 30, 2: 32} and store.held == {0, 2}
    assert not store._key_partition  # Faust's own dict stays empty


@pytest.mark.asyncio
async def test_a_write_landing_after_its_partition_was_dropped_leaves_no_offset():
    # A marker sent late, after the assignment's recovery dropped its partition, put the
    # offset back with none of the records before it; the next assignment's recovery
    # read the changelog only from there, and every case folded later lost its history
    # (the seek-race test's failure of 2026-12-04).
    store = _store()
    store.put(0, "k0", b'{"k":"c","p":0}', 10)
    await store.on_recovery_completed(set(), set())
    store.written(0, 938)
    assert store.persisted_offset(TP("c", 0)) is None  # read from the start when back
    await store.on_rebalance({TP("c", 0)}, set(), {TP("c", 0)})
    store.written(0, 940)  # assigned again: its writes count
    assert store.persisted_offset(TP("c", 0)) == 940
    await store.on_recovery_completed(set(), set())
    store.put(0, "k0", b'{"k":"c","p":0,"w":1}', 941)  # from its changelog (a standby)
    assert store.offsets == {0: 941}


def test_cells_kept_through_restored_records_equal_a_refold(taxonomy, ctx):
    log = _changelog(taxonomy, ctx)
    half = len(log) // 2
    store = _store()
    for offset, (p, k, v) in enumerate(log[:half]):
        store.put(p, k, v, offset)
    state, work = _refold(store, ctx)  # what a rebuild leaves, then kept in step
    _follow(store, state, work, ctx)
    for offset, (p, k, v) in enumerate(log[half:], start=half):
        store.put(p, k, v, offset)
    assert any(v for _, _, v in log[half:])
    _same((state, work), _refold(store, ctx))


def test_a_checkpoint_and_the_tail_after_it_equal_a_refold(taxonomy, ctx, tmp_path):
    log = _changelog(taxonomy, ctx)
    cut = len(log) * 2 // 3
    store = _store()
    for offset, (p, k, v) in enumerate(log[:cut]):
        store.put(p, k, v, offset)
    state, work = _refold(store, ctx)
    checkpointer = Checkpointer(tmp_path / "cp", "app", "cluster", {TOPIC: store}, {}, {},
                                state, work, PipelineMetrics(CollectorRegistry()), lambda: True,
                                lambda: ())
    localstate.write(checkpointer.path, checkpointer.content(), KEY)
    cp = localstate.load(checkpointer.path, KEY)
    assert cp is not None
    # A fresh worker takes it, then reads the changelog from the offsets it holds.
    again, (state2, work2) = _store(), _derived(ctx)
    Checkpointer(tmp_path / "cp", "app", "cluster", {TOPIC: again}, {}, {}, state2, work2,
                 PipelineMetrics(CollectorRegistry()), lambda: True, lambda: ()).restore(cp)
    _follow(again, state2, work2, ctx)
    resume = {p: again.persisted_offset(TP("c", p)) for p in (0, 1)}
    for offset, (p, k, v) in enumerate(log):
        if offset > resume[p]:
            again.put(p, k, v, offset)
    assert again.data == dict((k, v) for _, k, v in log)
    kept = set(state2.parts)
    state2.rebuild(TOPIC, [], {0, 1}, ctx, work2)  # kept: nothing refolded
    assert set(state2.parts) == kept == {(TOPIC, 0), (TOPIC, 1)}
    _same((state2, work2), _refold(again, ctx))


def test_a_restore_splits_the_checkpoints_dict_and_the_agents_read_the_parts(taxonomy, ctx,
                                                                             tmp_path):
    """A restart holds each record once: the checkpoint's one dict is split into the
    store's dicts by partition and emptied (kept, a national year's would be held twice
    at the peak), and an agent made before the restore reads what it restored."""
    store = _store()
    for offset, (p, k, v) in enumerate(_changelog(taxonomy, ctx)):
        store.put(p, k, v, offset)
    state, work = _refold(store, ctx)
    metrics = PipelineMetrics(CollectorRegistry())
    cp = pickle.loads(pickle.dumps(Checkpointer(
        tmp_path / "cp", "app", "cluster", {TOPIC: store}, {}, {}, state, work, metrics,
        lambda: True, lambda: ()).content()))
    records, partitions, _ = cp["tables"][TOPIC]
    assert records == dict(store.data.items()) and partitions == {0, 1}
    again, (state2, work2) = _store(), _derived(ctx)
    agent = TopicAgent(FamilyProcessor(TOPIC, Decoder("contacts", taxonomy), ctx, state2,
                                       metrics), SimpleNamespace(data=again),
                       progress.Frontier(), None, None, metrics, epoch_of=lambda tp: 1)
    taken = Checkpointer(tmp_path / "cp", "app", "cluster", {TOPIC: again}, {}, {}, state2,
                         work2, metrics, lambda: True, lambda: ()).restore(cp)
    assert taken == len(store.data) > 0 and again.held == {0, 1}
    assert records == {}  # emptied: each record is held once, in its partition's dict
    assert "tables" not in cp and "derived" not in cp and "runs" not in cp
    for p in (0, 1):
        assert agent.records(p) is again.part(p) and again.part(p) == store.part(p)
        assert {partition(k, v) for k, v in again.part(p).items()} == {p}


def test_a_checkpoint_of_a_release_before_the_split_is_split_record_by_record(taxonomy,
                                                                               ctx):
    """An older worker's checkpoint has no runs: each record's partition is read from it.
    Runs that do not add up to the dict are not trusted either. Both give what the runs
    give, and a partition held with no record keeps an empty dict."""
    store = _store()
    for offset, (p, k, v) in enumerate(_changelog(taxonomy, ctx)):
        store.put(p, k, v, offset)
    (flat, held, _), runs = store.export()
    assert [p for p, _ in runs] == list(store.data.parts) and sum(n for _, n in runs) == len(flat)
    by_runs = split(dict(flat), runs)
    assert by_runs == split(dict(flat), None) == split(dict(flat), [(0, 1), *runs])
    assert by_runs == store.data.parts and set(by_runs) == held == {0, 1}
    assert split({}, None, {0, 3}) == {0: {}, 3: {}}


def test_the_store_read_as_one_mapping_finds_each_record_in_its_partition():
    store = _store()
    store.put(0, "c:a", b'{"k":"c","p":0}', 1)
    store.data["c:b"] = b'{"k":"c","p":1,"x":2}'  # Faust's table API: placed by its "p"
    store.data[progress.marker_key(1)] = b"7"  # a marker by its key
    assert store.part(1) == {"c:b": b'{"k":"c","p":1,"x":2}', progress.marker_key(1): b"7"}
    assert store.data["c:a"] == b'{"k":"c","p":0}' and "c:b" in store.data
    assert "c:z" not in store.data and store.data.get("c:z") is None
    assert sorted(store.data) == sorted(store.data.keys()) == ["!offset:1", "c:a", "c:b"]
    assert len(store.data) == len(store.data.items()) == 3
    assert sorted(store.data.values()) == [b"7", b'{"k":"c","p":0}', b'{"k":"c","p":1,"x":2}']
    del store.data["c:a"]
    with pytest.raises(KeyError):
        del store.data["c:a"]
    with pytest.raises(ValueError, match="without a partition"):
        store.data["c:c"] = b"no partition here"
    store.drop([1])  # a rebalance's drop: the partition's dict goes whole
    assert dict(store.data.items()) == {} and store.held == {0}


def test_a_checkpoint_is_used_only_with_the_broker_it_was_taken_against():
    cp = {"app_id": "app", "cluster": "c1", "tables": {TOPIC: ({}, {}, {0: 41, 1: 9})}}
    name = "app-records-t.contacts-changelog"
    changelogs = {TOPIC: name}
    ends = {(name, 0): 42, (name, 1): 10}
    assert usable(cp, "app", changelogs, BrokerView("c1", ends)) is None
    assert usable(cp, "other", changelogs, BrokerView("c1", ends)) == "app_id"
    assert usable(cp, "app", changelogs, BrokerView("c2", ends)) == "cluster"
    # a broker whose changelog ends before the checkpoint's offset: rebuilt from nothing
    short = {**ends, (name, 1): 9}
    assert usable(cp, "app", changelogs, BrokerView("c1", short)).startswith("offsets ")


def test_an_unreadable_or_foreign_checkpoint_file_is_ignored(tmp_path):
    path = tmp_path / "cp"
    assert localstate.load(path, KEY) is None
    path.write_bytes(b"not a pickle")
    assert localstate.load(path, KEY) is None
    localstate.write(path, {"format": localstate.FORMAT + 1}, KEY)
    assert localstate.load(path, KEY) is None


class _Planted:
    """Unpickling this runs code: it creates the file it names."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _refused(caplog, path, key=KEY) -> None:
    caplog.clear()
    with caplog.at_level(logging.WARNING, "cspa.worker"):
        assert localstate.load(path, key) is None
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith("checkpoint refused: "), lines
    assert str(path) not in lines[0]


def test_a_tampered_checkpoint_is_refused_before_anything_is_unpickled(tmp_path, caplog):
    path, marker = tmp_path / "data" / "cp", tmp_path / "ran"
    state = {"format": localstate.FORMAT, "payload": list(range(1000))}
    localstate.write(path, state, KEY)
    assert localstate.load(path, KEY) == state
    signed = path.read_bytes()
    # one byte flipped, anywhere: in the pickle, and in the signature itself
    for at in (len(signed) // 2, len(localstate.MAGIC) + 3, len(signed) - 1):
        path.write_bytes(signed[:at] + bytes([signed[at] ^ 0x01]) + signed[at + 1:])
        _refused(caplog, path)
    # signed with another key
    _refused(caplog, path, key=b"k" * 32)
    path.write_bytes(signed)
    _refused(caplog, path, key=b"k" * 32)
    # unsigned: a plain pickle (a checkpoint of the previous release), code planted in it
    path.write_bytes(pickle.dumps({"format": localstate.FORMAT, "x": _Planted(marker)}))
    _refused(caplog, path)
    # the header copied from a good file in front of a planted pickle
    planted = pickle.dumps(_Planted(marker))
    path.write_bytes(signed[:len(localstate.MAGIC) + 32] + planted)
    _refused(caplog, path)
    assert not marker.exists()
    pickle.loads(planted)  # the plant works: what the refusals kept from running
    assert marker.exists()


def test_the_data_directory_is_private_and_the_checkpoint_owner_only(tmp_path):
    data = tmp_path / "data"
    localstate.write(data / "cp", {"format": localstate.FORMAT}, KEY)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "cp").stat().st_mode) == 0o600
    os.chmod(data, 0o755)  # made before this release, or by hand: tightened
    localstate.claim(data / "cp")
    assert stat.S_IMODE(data.stat().st_mode) == 0o700


def test_a_checkpoint_key_file_must_hold_32_bytes(tmp_path):
    short = tmp_path / "short.key"
    short.write_text("0123456789abcdef\n")
    with pytest.raises(ValueError, match="16 bytes; at least 32"):
        localstate.read_key(short)
    with pytest.raises(ValueError, match="not readable"):
        localstate.read_key(tmp_path / "absent.key")
    made = localstate.new_key(tmp_path / "dev" / "checkpoint.key")
    key = localstate.read_key(made)
    assert len(key) == 64 and stat.S_IMODE(made.stat().st_mode) == 0o600
    assert localstate.read_key(localstate.new_key(made)) == key  # kept, not replaced


def test_only_one_worker_claims_a_data_directory(tmp_path):
    first = localstate.claim(tmp_path / "cp")
    assert first is not None
    assert localstate.claim(tmp_path / "cp") is None


@pytest.mark.asyncio
async def test_a_checkpoint_waits_one_interval_after_partitions_move(taxonomy, ctx, tmp_path):
    # Right after a rebalance the first scrapes merge the moved cells afresh; a
    # checkpoint's pause (seconds with a national year) must not land on top.
    log = _changelog(taxonomy, ctx, cases=4)
    store, owned = _store(), {(TOPIC, 0)}
    state, work = _derived(ctx)
    checkpointer = Checkpointer(tmp_path / "cp", "app", "cluster", {TOPIC: store}, {}, {},
                                state, work, PipelineMetrics(CollectorRegistry()),
                                lambda: True, lambda: owned, key=KEY)
    taken = []
    for offset, (p, k, v) in enumerate(log):
        store.put(p, k, v, offset)
        if offset == 2:
            owned.add((TOPIC, 1))
        taken.append(await checkpointer.take())
    # The first assignment after a start is no move: checkpointed at once.
    assert taken[:4] == [True, True, False, True]
    assert localstate.load(checkpointer.path, KEY) is not None


@pytest.mark.asyncio
@pytest.mark.parametrize("huge_pages", [False, True])
async def test_a_checkpoint_holds_the_state_at_its_fork_while_processing_goes_on(
        taxonomy, ctx, tmp_path, caplog, huge_pages):
    # Processing resumes as soon as the writer is forked: the records and cells that
    # change while the child writes are not in this checkpoint (a restart reads them
    # from the changelog after its offsets), and nothing written is half of each.
    # The same with the heap in 2 MiB pages (stream.worker.hugepages), which a write
    # from either side splits back into small ones: copy-on-write still holds.
    log = _changelog(taxonomy, ctx)
    cut = len(log) // 2
    store = _store()
    for offset, (p, k, v) in enumerate(log[:cut]):
        store.put(p, k, v, offset)
    state, work = _refold(store, ctx)
    _follow(store, state, work, ctx)
    at_fork = dict(store.data), dict(store.offsets), _refold(store, ctx)
    forked, go = tmp_path / "forked", tmp_path / "go"
    checkpointer = Checkpointer(tmp_path / "cp", "app", "cluster", {TOPIC: store}, {}, {},
                                state, work, PipelineMetrics(CollectorRegistry()),
                                lambda: True, lambda: (), key=KEY, huge_pages=huge_pages)
    write = checkpointer._write

    def held_back() -> int:  # in the child: it writes only once the parent has moved on
        forked.touch()
        while not go.exists():
            time.sleep(0.01)
        return write()

    checkpointer._write = held_back  # type: ignore[method-assign]
    taking = asyncio.create_task(checkpointer.take())
    while not forked.exists():
        await asyncio.sleep(0.01)
    for offset, (p, k, v) in enumerate(log[cut:], start=cut):  # processing goes on
        store.put(p, k, v, offset)
    go.touch()
    with caplog.at_level(logging.INFO, "cspa.worker"):
        assert await taking
    huge = re.search(r"huge_mib=(\d+) ", caplog.records[-1].getMessage())
    assert huge is not None and (int(huge[1]) > 0) == huge_pages
    cp = localstate.load(checkpointer.path, KEY)
    assert cp is not None and cp["tables"][TOPIC][0] == at_fork[0] != store.data
    again, (state2, work2) = _store(), _derived(ctx)
    Checkpointer(tmp_path / "cp", "app", "cluster", {TOPIC: again}, {}, {}, state2, work2,
                 PipelineMetrics(CollectorRegistry()), lambda: True, lambda: ()).restore(cp)
    assert again.offsets == at_fork[1] != store.offsets
    _same((state2, work2), at_fork[2])
    _same((state, work), _refold(store, ctx))  # (the live state did move on)


@pytest.mark.asyncio
async def test_a_checkpoint_whose_write_fails_keeps_the_last_one(taxonomy, ctx, tmp_path,
                                                                 caplog):
    log = _changelog(taxonomy, ctx, cases=4)
    store = _store()
    state, work = _derived(ctx)
    metrics = PipelineMetrics(CollectorRegistry())
    checkpointer = Checkpointer(tmp_path / "cp", "app", "cluster", {TOPIC: store}, {}, {},
                                state, work, metrics, lambda: True, lambda: (), key=KEY)
    store.put(*log[0], 0)
    assert await checkpointer.take()
    kept = checkpointer.path.read_bytes()
    store.put(*log[1], 1)
    checkpointer.path.with_suffix(".tmp").mkdir()  # the child cannot open its file
    with caplog.at_level(logging.WARNING, "cspa.worker"):
        assert not await checkpointer.take()
    assert [r.getMessage() for r in caplog.records] == [
        "checkpoint not written: snapshot write failed error=IsADirectoryError"]
    assert checkpointer.path.read_bytes() == kept
    checkpointer.path.with_suffix(".tmp").rmdir()
    assert await checkpointer.take()  # tried again: the state changed since the last one
    assert metrics.checkpoints._value.get() == 2


def test_a_checkpoint_naming_a_class_that_moved_is_not_taken(taxonomy, ctx, tmp_path):
    # A checkpoint written before the modules moved into packages names its classes
    # by their old paths: nothing of it is taken, and the worker restores from Kafka.
    log = _changelog(taxonomy, ctx, cases=4)
    store = _store()
    for offset, (p, k, v) in enumerate(log):
        store.put(p, k, v, offset)
    state, work = _refold(store, ctx)
    checkpointer = Checkpointer(tmp_path / "cp", "app", "cluster", {TOPIC: store}, {}, {},
                                state, work, PipelineMetrics(CollectorRegistry()), lambda: True,
                                lambda: ())
    cp = checkpointer.content()
    cp["derived"] = b"cstream.aggregates\nCell\n."  # the pre-package path of a cell
    again, (state2, work2) = _store(), _derived(ctx)
    taker = Checkpointer(tmp_path / "cp", "app", "cluster", {TOPIC: again}, {}, {}, state2,
                         work2, PipelineMetrics(CollectorRegistry()), lambda: True, lambda: ())
    assert taker.restore(cp) is None
    assert again.data == {} and state2.parts == {}


def _unpickling_fails() -> None:
    raise ValueError("a class that moved")


class _Moved:
    """Pickles, but cannot be unpickled: a derived state whose class has moved."""

    def __reduce__(self):
        return (_unpickling_fails, ())


def test_the_derived_state_is_the_files_tail_read_only_when_wanted(taxonomy, ctx, tmp_path,
                                                                  caplog):
    """A restart never holds the derived state's pickled bytes beside what they unpickle
    to: it is a second pickle after the records, unpickled from the file, and only when
    its fingerprint is the worker's. A file of the older layout (the derived state pickled
    inside) still restores whole; a tail that cannot be read leaves the records."""
    log = _changelog(taxonomy, ctx)
    store = _store()
    for offset, (p, k, v) in enumerate(log):
        store.put(p, k, v, offset)
    state, work = _refold(store, ctx)
    metrics = PipelineMetrics(CollectorRegistry())
    taker = Checkpointer(tmp_path / "cp", "app", "cluster", {TOPIC: store}, {}, {}, state,
                         work, metrics, lambda: True, lambda: (), "fp", key=KEY)
    taker._write()
    with taker.path.open("rb") as f:
        f.seek(localstate._HEADER)
        # the records' head has no memo (its reader would hold every record once more)
        assert not {op.name for op, _, _ in pickletools.genops(f)} & {
            "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT"}
        f.seek(localstate._HEADER)
        head = pickle.load(f)
        assert "derived" not in head and head[localstate.TAIL] == "derived"
        assert head["tables"][TOPIC][0] == store.data
        assert set(pickle.load(f)) == {"cells", "work"}  # the tail, an object, not bytes

    def restored(cp, derived_too=True):
        again, (state2, work2) = _store(), _derived(ctx)
        taken = Checkpointer(tmp_path / "cp", "app", "cluster", {TOPIC: again}, {}, {},
                             state2, work2, metrics, lambda: True, lambda: (),
                             "fp").restore(cp, derived_too)
        return taken, again, (state2, work2)

    asked = []
    skipped = localstate.load(taker.path, KEY, wants=lambda h: asked.append(h) or False)
    assert asked and skipped is not None and asked[0] is skipped
    assert "derived" not in skipped and localstate.TAIL not in skipped
    taken, again, (state2, _) = restored(skipped, derived_too=False)
    assert taken == len(store.data) and again.data == store.data and not state2.parts
    taken, again, derived = restored(localstate.load(taker.path, KEY))
    assert taken == len(store.data) and again.data == store.data
    _same(derived, _refold(store, ctx))
    older = taker.content()  # the layout before tails: bytes inside the one pickle
    older["derived"] = pickle.dumps(older["derived"])
    localstate.write(taker.path, older, KEY)
    taken, again, derived = restored(localstate.load(taker.path, KEY))
    assert taken == len(store.data)
    _same(derived, _refold(store, ctx))
    head = taker.content()
    head.pop("derived")
    localstate.write(taker.path, head, KEY, tail=("derived", _Moved()))
    caplog.clear()
    with caplog.at_level(logging.WARNING, "cspa.worker"):
        cp = localstate.load(taker.path, KEY)
        assert cp is not None and "derived" not in cp and cp["tables"]
        assert restored(cp)[0] is None
    assert [r.getMessage() for r in caplog.records] == [
        "checkpoint part not read part=derived error=ValueError",
        "checkpoint not used reason=derived error=unread"]


def test_a_checkpoint_judged_by_other_rules_gives_its_records_only(taxonomy, ctx, tmp_path):
    # Taken under today's rules; restored under contact_decision at 3 working days, with
    # the out-of-hours roll-over: the records are taken, the derived state refolded.
    from stream.settings import Settings
    from stream.state.facts import fact_context

    rules = tmp_path / "rules.toml"
    text = Settings().rules_path.read_text()
    rules.write_text(text.replace("timescale = 1", "timescale = 3", 1))
    other = fact_context(Settings(rules_path=rules, roll_after_hours=True))
    log = _changelog(taxonomy, ctx)
    store = _store()
    for offset, (p, k, v) in enumerate(log):
        store.put(p, k, v, offset)
    state, work = _refold(store, ctx)
    taker = Checkpointer(tmp_path / "cp", "app", "cluster", {TOPIC: store}, {}, {}, state, work,
                         PipelineMetrics(CollectorRegistry()), lambda: True, lambda: (), "old")
    cp = taker.content()
    assert cp["fingerprint"] == "old"
    again, (state2, work2) = _store(), _derived(other)
    records = Checkpointer(tmp_path / "cp", "app", "cluster", {TOPIC: again}, {}, {}, state2,
                           work2, PipelineMetrics(CollectorRegistry()), lambda: True,
                           lambda: (), "new").restore(cp, derived_too=False)
    assert records == len(store.data) and again.data == store.data
    assert not state2.parts  # nothing derived taken: recovery refolds every partition
    state2.rebuild(TOPIC, list(again.data.items()), {0, 1}, other, work2)
    _same((state2, work2), _refold(store, other))
    owned = [(TOPIC, 0), (TOPIC, 1)]
    assert work2.breaches(NOW, owned) != work.breaches(NOW, owned)  # the change mattered


def test_a_checkpoint_below_a_changelog_start_moved_by_retention_is_refused():
    cp = {"app_id": "app", "cluster": "c1", "tables": {TOPIC: ({}, {}, {0: 41, 1: 9})}}
    name = "app-records-t.contacts-changelog"
    ends = {(name, 0): 80, (name, 1): 10}
    # retention copied partition 0 forward from offset 42 and deleted what came before:
    # even the checkpoint that reflects all of it (41) holds records no longer there
    view = BrokerView("c1", ends, {(name, 0): 42, (name, 1): 0})
    assert usable(cp, "app", {TOPIC: name}, view) == (
        f"erased changelog={name} partition=0 at=41 start=42")
    assert usable(cp, "app", {TOPIC: name}, BrokerView("c1", ends, {(name, 0): 41})) is None


@pytest.mark.asyncio
async def test_a_checkpoint_forks_once_the_next_scrape_has_ended(taxonomy, ctx, tmp_path,
                                                                 caplog):
    # The child must hold the state as it is after the wait for the scrape, not before
    # it: what changed while the checkpoint waited is in the file (stream.worker.scrape_rhythm).
    log = _changelog(taxonomy, ctx, cases=4)
    store = _store()
    state, work = _derived(ctx)

    async def after_scrape() -> float:
        store.put(*log[1], 1)  # folded while the checkpoint waited
        return 0.25

    checkpointer = Checkpointer(tmp_path / "cp", "app", "cluster", {TOPIC: store}, {}, {},
                                state, work, PipelineMetrics(CollectorRegistry()),
                                lambda: True, lambda: (), key=KEY, after_scrape=after_scrape)
    store.put(*log[0], 0)
    with caplog.at_level(logging.INFO, "cspa.worker"):
        assert await checkpointer.take()
    (_, _, offsets), = localstate.load(checkpointer.path, KEY)["tables"].values()
    assert max(offsets.values()) == 1
    assert "scrape_wait=0.25" in caplog.records[-1].getMessage()
