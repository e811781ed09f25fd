"""The /metrics page serves kept text: it must equal what generate_latest writes afresh."""

from __future__ import annotations

import gc
import random
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from stream.settings import PeriodCombination, ServiceLevelVariant
from stream.state.aggregates import Aggregates, Merged
from stream.state.calls import OUTCOMES, CallDefinitions
from stream.state.families import FAMILIES
from stream.worker.exposition import Page
from stream.worker.metrics import FiguresCollector, by_figure
from stream.worker.processor import CellState
from tests.conftest import LONDON


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    """``Worker.warm`` freezes what is alive for the collector: not the next test's."""
    yield
    gc.unfreeze()

DEFS = CallDefinitions(20.0, ServiceLevelVariant.OFFERED, 5.0, PeriodCombination.RATIO_OF_SUMS)
#: 23:30 on the last day of a month: the steps below cross an hour, midnight and a month
START = datetime(2026, 10, 31, 23, 30, tzinfo=LONDON)
MONTHLY = {**{c.figure: len(c.labels) for f in FAMILIES for c in f.counts},
           **{d.figure: len(d.labels) for f in FAMILIES for d in f.distributions},
           **{f"calls_{o}": 2 for o in OUTCOMES}}
HOURLY = {**{r.figure: 1 for f in FAMILIES for r in f.recent},
          **{f"calls_{o}_hourly": 2 for o in OUTCOMES}}
TPS = [("t", p) for p in range(4)]


def _fact(rng: random.Random, now: datetime) -> tuple[str, tuple[str, ...], float]:
    if rng.random() < 0.5:
        figure = rng.choice(sorted(MONTHLY))
        month = now - timedelta(days=rng.choice([0, 1, 31, 200, 390, 400]))
        first, rest = month.strftime("%Y-%m"), MONTHLY[figure] - 1
    else:
        figure = rng.choice(sorted(HOURLY))
        first, rest = str(int(now.timestamp() // 3600) - rng.choice([0, 1, 5, 23, 24, 30])), \
            HOURLY[figure] - 1
    labels = (first, *(rng.choice("ab") for _ in range(rest)))
    return figure, labels, float(rng.choice([1, 2.5, 3, 19, 20, 21, 86_400, 2e6]))


def _afresh(collector: FiguresCollector) -> bytes:
    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("months", [0, 13])
@pytest.mark.parametrize("sliced", [False, True])
def test_kept_text_equals_a_fresh_exposition(seed: int, months: int, sliced: bool,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # Cells change, partitions move, the clock crosses hours, midnight and a month
    # (and drops months at the edge of the 13 kept): after every step the page's text
    # equals generate_latest over a collector that keeps nothing. Sliced: merges left
    # half done (a cell per slice), cells changing and partitions moving between slices.
    monkeypatch.setattr("stream.worker.processor.CLOCK_EVERY", 1)
    rng = random.Random(seed)
    state, owned, clock = CellState(), set(TPS), [START]
    kept = FiguresCollector(lambda: (state.current(owned), {"t": len(owned)}), DEFS, months,
                            lambda: clock[0])
    page = Page([kept])
    facts: dict[tuple[str, int], list[tuple[str, tuple[str, ...], float]]] = {}
    for _ in range(30):
        for _ in range(rng.randrange(6)):
            tp = rng.choice(TPS)
            fact = _fact(rng, clock[0])
            state.part(*tp).apply([fact], +1)
            facts.setdefault(tp, []).append(fact)
        if rng.random() < 0.3:  # withdraw one: a cell emptied goes
            tp = rng.choice(TPS)
            if facts.get(tp):
                state.part(*tp).apply([facts[tp].pop(rng.randrange(len(facts[tp])))], -1)
        if rng.random() < 0.2:  # a rebalance
            owned.clear()
            owned.update(tp for tp in TPS if rng.random() < 0.7)
        if rng.random() < 0.4:
            clock[0] += timedelta(minutes=rng.choice([1, 20, 45]))
        if sliced and rng.random() < 0.6:
            state.merge_some(set(owned), 0.0)  # one cell merged, the rest left for later
            continue  # more changes (and moves) before the page is read
        fresh = FiguresCollector(lambda: (state.current(owned), {"t": len(owned)}), DEFS,
                                 months, lambda: clock[0])
        assert page.render() == _afresh(fresh)
        # and the merge itself: the owned partitions' facts summed afresh
        whole = Aggregates()
        for tp in owned:
            whole.apply(facts.get(tp, []), +1)
        assert state.current(owned).to_json() == whole.to_json()
        # and its cells filed by figure as they were put: as one pass over them files them
        served, plain = state.current(owned), Aggregates()
        plain.cells = dict(served.cells)
        assert isinstance(served, Merged)
        assert {f: list(pairs) for f, pairs in by_figure(served).items()} == \
            {f: list(pairs) for f, pairs in by_figure(plain).items()}


def _steady(text: bytes) -> list[bytes]:
    """The lines, but those read off a clock: the process's CPU time, when evaluated."""
    return [line for line in text.splitlines()
            if not line.startswith((b"process_", b"cspa_timeliness_evaluated_timestamp"))]


def test_the_worker_serves_its_whole_registry():
    # /metrics serves the page: the same text as the registry, every part in its order
    from stream.settings import Settings
    from stream.worker.app import create_app

    worker = create_app(Settings())
    worker.state.part("t", 0).apply([("audits", ("2026-10", "ehh", "good"), None)], +1)
    for _ in range(2):  # the second from kept text
        text = worker.page.render()
        assert _steady(text) == _steady(generate_latest(worker.registry))
    assert b'cspa_audits{grade="good",month="2026-10",team="ehh"}' not in text  # not owned
    assert b"cspa_open_items" in text and b"cspa_events_consumed_total" in text


def test_every_table_recovery_renders_the_worker_page_before_ready():
    # Issue 28: the first scrape after a restart or an assignment finds the page rendered
    from stream.settings import Settings
    from stream.worker.app import create_app

    worker = create_app(Settings())
    assert worker.tables
    for table in worker.tables.values():
        (recovery,) = table._recover_callbacks
        assert recovery.warm == worker.warm


def test_the_recovery_warm_up_freezes_the_state_it_loaded(caplog):
    # Step 46: a later middle or full collection must not scan a national year on the loop
    from collections import Counter

    from stream.settings import Settings
    from stream.state.aggregates import SCALE, Cell
    from stream.worker.app import create_app
    from stream.worker.metrics import DISTRIBUTIONS

    worker = create_app(Settings())
    t = next(iter(worker.processors.values())).topic
    d = DISTRIBUTIONS[0]
    loaded = Cell(1, 2 * SCALE, Counter({2.0: 1}))
    worker.state.part(t, 0).cells[(d.figure, ("2026-10", *("x" for _ in d.labels[1:])))] = loaded
    gc.unfreeze()
    assert any(obj is loaded for obj in gc.get_objects())
    with caplog.at_level("INFO", logger="cspa.worker"):
        worker.warm()
    assert not any(obj is loaded for obj in gc.get_objects())  # frozen: never scanned
    assert "metrics page warmed" in caplog.text and "gc_seconds=" in caplog.text
    assert "huge_mib=0 " in caplog.text  # (no checkpoints here: no fork to shorten)


def test_with_checkpoints_in_huge_pages_the_warm_up_collapses_the_heap(caplog):
    # Step 47: the first collapse of a national year is seconds of the kernel's copying
    # that held a serving loop up to 370 ms: recovery, which holds it anyway, does it.
    import mmap
    import re

    from stream.settings import Settings
    from stream.worker.app import create_app

    worker = create_app(Settings())
    worker.huge_pages = True
    loaded = mmap.mmap(-1, 64 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    loaded.write(b"s" * (64 << 20))  # 64 MiB of "state", resident in 4 KiB pages

    def huge_kb() -> int:
        rollup = open("/proc/self/smaps_rollup").read()
        return int(re.search(r"AnonHugePages:\s+(\d+) kB", rollup)[1])  # type: ignore[index]

    before = huge_kb()
    with caplog.at_level("INFO", logger="cspa.worker"):
        worker.warm()
    assert huge_kb() - before >= 62 << 10  # its whole 2 MiB pages, at least 31 of 32
    huge = re.search(r"metrics page warmed .* huge_mib=(\d+) ", caplog.text)
    assert huge is not None and int(huge[1]) >= 62
    loaded.close()


def test_a_page_that_fails_to_render_leaves_recovery_going(caplog):
    # The scrape will fail and say so; the warm-up must not stop the recovery with it
    from stream.settings import Settings
    from stream.worker.app import create_app

    class Broken:
        def exposition(self) -> bytes:
            raise RuntimeError("a bug")

    worker = create_app(Settings())
    worker.page = Page([Broken()])
    with caplog.at_level("WARNING", logger="cspa.worker"):
        worker.warm()
    assert "metrics page not warmed error=RuntimeError" in caplog.text
    assert "a bug" not in caplog.text


@pytest.mark.asyncio
async def test_a_scrape_while_recovering_waits_for_the_recovery_render_not_merging_itself():
    # Issue 28: a scrape landing in a restart's recovery merged every restored cell on
    # the event loop, holding the recovery too. With a large merge ahead it now waits
    # for the recovery's own render (the loop free) and merges nothing itself.
    import asyncio
    from collections import Counter

    from stream.settings import Settings
    from stream.state.aggregates import SCALE, Cell
    from stream.worker import app as worker_app
    from stream.worker.metrics import DISTRIBUTIONS

    worker = worker_app.create_app(Settings())
    t = next(iter(worker.processors.values())).topic
    owned = {(t, 0), (t, 1)}
    worker.owned = lambda: owned  # type: ignore[method-assign]  # (no assignment: not started)
    d = DISTRIBUTIONS[0]
    labels = ("2026-10", *("x" for _ in d.labels[1:]))
    worker.state.part(t, 0).cells[(d.figure, labels)] = Cell(1, 2 * SCALE, Counter({2.0: 1}))
    assert not worker.ready()
    await asyncio.wait_for(worker.metrics_text(), 5)  # a small merge: served at once
    assert worker.state.merged_cells == 1
    n = worker_app.MERGE_WAIT_VALUES
    big = Cell(n + 1, sum(range(n + 1)) * SCALE, Counter({float(v): 1 for v in range(n + 1)}))
    worker.state.part(t, 1).cells[(d.figure, labels)] = big  # partition 1 gained
    scrape = asyncio.create_task(worker.metrics_text())
    await asyncio.sleep(0.3)
    assert not scrape.done() and worker.state.merged_cells == 1  # waiting, nothing merged
    worker.warm()  # the end of the recovery: its render, then ready
    worker.mark_recovered()
    warmed = worker.state.merged_cells
    assert warmed == 2
    text = await scrape
    assert worker.state.merged_cells == warmed  # the scrape merged nothing itself
    assert _steady(text) == _steady(generate_latest(worker.registry))
    assert f'{d.metric}_count{{'.encode() in text


@pytest.mark.asyncio
async def test_a_scrape_with_much_to_merge_yields_the_loop_and_holds_the_batches(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Issue 28.2: the first scrape after a replay merged every changed cell and rendered
    # every changed series in one go (2-3 s of the loop with a national year). Both go
    # in slices now, the loop running between them, every agent's batches held until
    # the page is done. Slices of no time: 50 cells merged, or one series rendered.
    import asyncio
    from collections import Counter

    from stream.settings import Settings
    from stream.state.aggregates import SCALE, Cell
    from stream.worker import app as worker_app
    from stream.worker.metrics import DISTRIBUTIONS

    monkeypatch.setattr(worker_app, "MERGE_SLICE_SECONDS", 0.0)
    monkeypatch.setattr("stream.worker.processor.CLOCK_EVERY", 50)
    worker = worker_app.create_app(Settings())
    t = next(iter(worker.processors.values())).topic
    owned = {(t, 0), (t, 1)}
    worker.owned = lambda: owned  # type: ignore[method-assign]  # (no assignment: not started)
    worker.ready = lambda: True  # type: ignore[method-assign]
    d, n = DISTRIBUTIONS[0], 300
    for i in range(n):
        labels = ("2026-10", *(f"v{i}" for _ in d.labels[1:]))
        worker.state.part(t, i % 2).cells[(d.figure, labels)] = Cell(
            1, 2 * SCALE, Counter({2.0: 1}))
    agents = list(worker.agents.values())
    ticks: list[tuple[bool, bool]] = []  # per loop turn: (batches held, cells unmerged)

    async def tick() -> None:
        while True:
            ticks.append((all(a.busy.locked() for a in agents),
                          bool(worker.state._unmerged)))
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    ticks.clear()
    text = await asyncio.wait_for(worker.metrics_text(), 20)
    ticker.cancel()
    assert worker.state.merged_cells == n
    merging = [held for held, unmerged in ticks if unmerged]
    rendering = sum(held for held, unmerged in ticks if not unmerged)
    assert len(merging) >= n // 50 - 2 and all(merging)  # the loop ran between slices,
    assert rendering >= n - 2  # merging then rendering, the batches held meanwhile ...
    assert not any(a.busy.locked() for a in agents)  # ... and they go on after
    assert _steady(text) == _steady(generate_latest(worker.registry))
    again = await asyncio.wait_for(worker.metrics_text(), 5)  # nothing changed: one go
    assert _steady(again) == _steady(text)
    # Both scrapes' ends were noted: a checkpoint forks after the next (scrape_rhythm).
    assert worker.rhythm.interval() is not None


@pytest.mark.asyncio
async def test_a_usual_scrape_lets_the_loop_go_after_each_phase_and_part_without_the_batches(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Issue 28.2: a usual scrape merged, moved open work's runs and rendered the whole
    # page in one slice: 59 ms of the loop in the national bench of steps 1-64. Each
    # phase and each part of the page now ends its own loop turn. A usual scrape does
    # not take the batches, so one agent stuck in a batch (a changelog write to a broker
    # that is down) does not hold /metrics up.
    import asyncio

    from stream.settings import Settings
    from stream.worker import app as worker_app
    from stream.worker import exposition

    worker = worker_app.create_app(Settings())
    t = next(iter(worker.processors.values())).topic
    owned = {(t, 0), (t, 1)}
    worker.owned = lambda: owned  # type: ignore[method-assign]  # (no assignment: not started)
    worker.ready = lambda: True  # type: ignore[method-assign]
    turn, steps = [0], []  # steps: (what, loop turn it ran in)

    async def tick() -> None:
        while True:
            turn[0] += 1
            await asyncio.sleep(0)

    def watched(what: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def step(*args: Any) -> Any:
            steps.append((what, turn[0]))
            return call(*args)
        return step

    monkeypatch.setattr(worker.state, "merge_some", watched("merge", worker.state.merge_some))
    monkeypatch.setattr(worker.work, "prepare", watched("prepare", worker.work.prepare))
    monkeypatch.setattr(exposition, "text_of", watched("part", exposition.text_of))
    stuck = next(iter(worker.agents.values())).busy
    await stuck.acquire()  # a batch that does not end
    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0)
    text = await asyncio.wait_for(worker.metrics_text(), 5)
    ticker.cancel()
    stuck.release()
    first_part = next(i for i, (what, _) in enumerate(steps) if what == "part")
    phases = steps[:first_part] + [s for s in steps[first_part:] if s[0] == "part"]
    assert [what for what, _ in phases] == ["merge", "prepare", *["part"] * len(
        worker.page.parts)]  # (the figures' render merges what a batch changed since)
    assert len({at for _, at in phases}) == len(phases)  # each in a loop turn of its own
    assert _steady(text) == _steady(generate_latest(worker.registry))


@pytest.mark.asyncio
async def test_a_budget_counts_series_rendering_only_and_a_part_goes_on_from_what_it_kept(
        ) -> None:
    # The budget starts at the first series rendered afresh: a slow part before the
    # figures (the pipeline's histograms) does not spend it. A part out of time keeps
    # what it rendered and goes on in the next slice: the slow part is collected once,
    # the batches are taken once, at the first part out of time, and the page is every
    # series, as generate_latest's.
    import asyncio
    import time
    from contextlib import asynccontextmanager

    from prometheus_client.core import GaugeMetricFamily

    from stream.worker.exposition import OutOfTime, budget
    from stream.worker.metrics import DISTRIBUTIONS
    from stream.worker.slices import Slices

    class Slow:
        collected = 0

        def collect(self) -> Iterator[GaugeMetricFamily]:
            Slow.collected += 1
            time.sleep(0.05)
            yield GaugeMetricFamily("slow_part", "a part rendered afresh each time", 1.0)

    state, owned = CellState(), {("t", 0)}
    d = DISTRIBUTIONS[0]
    for i in range(300):
        labels = ("2026-10", *(f"v{i}" for _ in d.labels[1:]))
        state.part("t", 0).apply([(d.figure, labels, 2.0)], +1)
    figures = FiguresCollector(lambda: (state.current(owned), {"t": 1}), DEFS, 0,
                               lambda: START)
    page = Page([Slow(), figures])
    with pytest.raises(OutOfTime), budget(0.005):
        page.render()
    kept = sum(len(series) for series in figures._series._kept.values())
    assert kept > 5  # more than the one a family gets in any case
    for series in figures._series._kept.values():
        series.clear()  # rendered afresh again, now in slices
    Slow.collected, taken, turns = 0, [], [0]

    @asynccontextmanager
    async def hold() -> AsyncIterator[None]:
        taken.append(turns[0])
        yield

    async def tick() -> None:
        while True:
            turns[0] += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    async with Slices(0.005, hold) as slices:
        text = b"".join([await slices.text(part) for part in page.parts])
    ticker.cancel()
    assert Slow.collected == 1 and len(taken) == 1 and taken[0] >= 1
    assert turns[0] > 5  # the figures in several slices, the loop going on between
    registry = CollectorRegistry()
    registry.register(Slow())
    registry.register(FiguresCollector(lambda: (state.current(owned), {"t": 1}), DEFS, 0,
                                       lambda: START))
    assert text == generate_latest(registry)  # every series, as kept


@pytest.mark.asyncio
async def test_a_scrape_with_open_work_to_sum_does_it_in_slices_and_holds_the_batches(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Issue 28.2: after a bulk load, the first scrape made every deadline day's summary
    # again and summed them (166 ms of the loop with a national year). The runs of stale
    # and overdue days are now moved before the render, in slices (at least one day
    # each), the loop free between them and the batches held. Then the page's open-work
    # gauges equal a fresh OpenWork's over the same records at the same clock.
    import asyncio
    from datetime import datetime, timedelta

    from stream.settings import Settings
    from stream.state.timeliness import OpenWork
    from stream.worker import app as worker_app
    from stream.worker.live_gauges import TimelinessCollector

    clock = tmp_path / "clock"
    now = datetime.fromisoformat("2026-11-20T11:00:00+00:00")
    clock.write_text(now.isoformat())
    monkeypatch.setattr(worker_app, "MERGE_SLICE_SECONDS", 0.0)
    worker = worker_app.create_app(Settings(clock_file=clock))
    t = next(iter(worker.processors.values())).topic
    owned = {(t, 0), (t, 1)}
    worker.owned = lambda: owned  # type: ignore[method-assign]  # (no assignment: not started)
    worker.ready = lambda: True  # type: ignore[method-assign]
    for part in worker.page.parts:  # (the gauges hold the bound method they were given)
        if isinstance(part, TimelinessCollector):
            part._owned = worker.owned
    fresh = OpenWork(worker.work.rules, worker.work.calendar, worker.work.horizon)
    for i in range(300):  # a contact a day, undecided: one deadline day each, mostly past
        received = (now - timedelta(days=i, hours=i % 7)).timestamp()
        record = {"k": "contact", "p": i % 2, "rcv": [received, "e1", "phone", "6", "rfs"]}
        for work in (worker.work, fresh):
            work.update((t, i % 2), f"contact:c{i}", record)
    agents = list(worker.agents.values())
    prepared: list[tuple[bool, bool]] = []  # per call: (batches held, all done)
    prepare = worker.work.prepare

    def watched(*args: object) -> bool:
        done = prepare(*args)  # type: ignore[arg-type]
        prepared.append((all(a.busy.locked() for a in agents), done))
        return done

    monkeypatch.setattr(worker.work, "prepare", watched)
    text = (await asyncio.wait_for(worker.metrics_text(), 20)).decode()
    assert len(prepared) >= 200  # a day a slice: ~215 working days' deadlines
    assert all(held for held, _ in prepared[1:]) and prepared[-1][1]
    assert not any(done for _, done in prepared[:-1])
    assert not any(a.busy.locked() for a in agents)
    at = now.timestamp()
    stale = fresh.stale_counts(at, owned)
    items = fresh.states(at, owned)
    assert sum(stale.values()) > 100 and items[("contact_decision", "rfs", "overdue")] > 0
    for rule, n in stale.items():
        assert f'cspa_open_items_stale{{rule="{rule}"}} {float(n)}' in text
    for (rule, team, state), n in items.items():
        assert f'cspa_open_items{{rule="{rule}",state="{state}",team="{team}"}} {float(n)}' \
            in text


@pytest.mark.parametrize("seed", range(6))
def test_live_windows_read_from_a_kept_merge_equal_those_of_the_same_cells_unfiled(
        seed: int) -> None:
    # A kept merge's hourly cells are looked up by hour (``metrics._in_hours``), a plain
    # Aggregates' filtered: the same gauges either way, and not all of them zero.
    rng = random.Random(seed)
    state, owned = CellState(), set(TPS)
    for _ in range(300):
        state.part(*rng.choice(TPS)).apply([_fact(rng, START)], +1)
    served, plain = state.current(owned), Aggregates()
    plain.cells = dict(served.cells)
    assert isinstance(served, Merged)

    def text(agg: Aggregates) -> bytes:
        return _afresh(FiguresCollector(lambda: (agg, {"t": 4}), DEFS, 0, lambda: START))

    recent = [line for line in text(served).splitlines() if line.startswith(b"cspa_recent_")]
    assert recent == [line for line in text(plain).splitlines()
                      if line.startswith(b"cspa_recent_")]
    counted = [line for line in recent if not line.startswith(b"cspa_recent_calls")
               and not line.startswith(b"#") and not line.endswith(b" 0.0")]
    assert len(counted) >= 8  # four figures, two windows or more each
