"""The ``/metrics`` page, its text kept per metric family while what it reads is unchanged.

``generate_latest`` formats every sample of every family at every scrape: with the
figures' ~15,000 series that took about half of a scrape, the event loop blocked
meanwhile, though between two scrapes 15 s apart only a few families change. Here a
family (or a few rendered together) is a ``Unit``: its name, the clock-derived inputs
it depends on (compared by equality), the cells it reads (compared by identity:
``CellState.current`` hands an unchanged cell back as the same object, a changed one
as a new object) and how to build its metrics. Its text is rendered again only when
one of those differs from the last scrape's; otherwise the last text is served.

The page's text equals ``generate_latest`` over the same collectors in the same order
(``generate_latest`` formats each family on its own and concatenates them):
tests/unit/worker/test_exposition.py checks it on random states.

A render may be given a ``budget``: once the series it renders afresh have taken that
long, ``SeriesCache`` keeps what it has rendered and raises ``OutOfTime``, and the next
render goes on from there. The worker renders a page with thousands of changed series
(the first scrape after a replay: 0.7 s for 15,000) in slices that way, part by part
(``text_of``), the event loop free between them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from stream.state.aggregates import Cell


@dataclass
class _Budget:
    seconds: float  # of series rendering, from the first series rendered afresh
    ends: float = float("inf")  # (monotonic) set at that first series


#: the budget of the renders in this context (``budget``); None: unbounded
_BUDGET: ContextVar[_Budget | None] = ContextVar("cspa_render_budget", default=None)


class OutOfTime(Exception):
    """A render spent its budget. What it rendered is kept: render again to go on."""


@contextmanager
def budget(seconds: float) -> Iterator[None]:
    """Renders within the block stop with ``OutOfTime`` once the series they render
    afresh have taken about ``seconds`` (at least one series per family each time, so
    every render gets further)."""
    token = _BUDGET.set(_Budget(seconds))
    try:
        yield
    finally:
        _BUDGET.reset(token)


@dataclass(frozen=True)
class Unit:
    """Metric families rendered together, and everything their text is a function of."""

    name: str  # unique within one collector
    clock: Hashable  # what the clock contributes (months kept, window hours), or None
    cells: Sequence[tuple[Hashable, Cell]]  # the cells read, with their keys, in order
    build: Callable[[], Iterable[Metric]]
    #: its text, when it is not just ``text(build())`` (``SeriesCache``: series by series)
    render: Callable[[], bytes] | None = None

    def same_inputs(self, other: Unit) -> bool:
        """Equal clock inputs and the very same cells under the same keys, in order."""
        return (self.clock == other.clock and len(self.cells) == len(other.cells)
                and all(ka == kb and ca is cb
                        for (ka, ca), (kb, cb) in zip(self.cells, other.cells, strict=True)))


class _Given:
    """A collector of metrics already built (``generate_latest`` reads any collector)."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self._metrics


def text(metrics: Iterable[Metric]) -> bytes:
    """The exposition text of some metric families, as ``generate_latest`` writes it."""
    return generate_latest(_Given(metrics))


class TextCache:
    """The text of each unit of the last scrape, served again while its inputs hold."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[Unit, bytes]] = {}

    def render(self, units: Iterable[Unit]) -> bytes:
        """The units' text in order; units gone since the last call are forgotten."""
        kept: dict[str, tuple[Unit, bytes]] = {}
        for unit in units:
            hit = self._kept.get(unit.name)
            if hit is None or not hit[0].same_inputs(unit):
                hit = (unit, unit.render() if unit.render else text(unit.build()))
            kept[unit.name] = hit
        self._kept = kept
        return b"".join(body for _, body in kept.values())


class SeriesCache:
    """Each series' lines of a family, kept while its cell is the same object.

    A family is rendered again whenever one of its cells changes: with a year of
    months and categories in one histogram family, live traffic touching this month's
    cells re-rendered thousands of unchanged series at every scrape. The family's text
    is its header (``generate_latest`` of the family without series) followed by each
    series' lines, which are the lines of a family holding that series alone.
    """

    def __init__(self) -> None:
        self._kept: dict[str, dict[Hashable, tuple[Cell, bytes]]] = {}

    def family(self, empty: Metric, series: Iterable[tuple[Hashable, Cell]],
               one: Callable[[Hashable, Cell], Metric]) -> bytes:
        """``empty``'s text with the series (labels, cell) that ``one`` builds alone."""
        header = text([empty])
        before = self._kept.get(empty.name, {})
        now: dict[Hashable, tuple[Cell, bytes]] = {}
        limit, rendered = _BUDGET.get(), 0
        for labels, cell in series:
            hit = before.get(labels)
            if hit is None or hit[0] is not cell:
                if limit is not None and _spent(limit, rendered):
                    self._kept[empty.name] = {**before, **now}  # the next render goes on
                    raise OutOfTime(empty.name)
                hit = (cell, text([one(labels, cell)])[len(header):])
                rendered += 1
            now[labels] = hit
        self._kept[empty.name] = now  # only the series still there
        return header + b"".join(body for _, body in now.values())


def _spent(limit: _Budget, rendered: int) -> bool:
    """Whether the budget is spent (started at the render's first series afresh); never
    before this family's first series (a render always gets further)."""
    if limit.ends == float("inf"):
        limit.ends = time.monotonic() + limit.seconds
        return False
    return rendered > 0 and time.monotonic() > limit.ends


class Exposing(Protocol):
    """A part of the page that writes its own text (``FiguresCollector``)."""

    def exposition(self) -> bytes: ...


class Page:
    """``/metrics``: its parts' text in order, each collector's as ``generate_latest``'s."""

    def __init__(self, parts: Sequence[Collector | Exposing]) -> None:
        self.parts = parts

    def render(self) -> bytes:
        """The whole page in one go (a recovery's warm render; tests)."""
        return b"".join(text_of(part) for part in self.parts)


def text_of(part: Collector | Exposing) -> bytes:
    """One part's text. Within a ``budget``, a part that keeps its text (``Exposing``)
    may raise ``OutOfTime``: what it rendered is kept, and the next call goes on."""
    exposition = getattr(part, "exposition", None)
    if exposition is not None:
        body: bytes = exposition()
        return body
    return generate_latest(part)  # type: ignore[arg-type]  # no exposition: a collector


def built(units: Iterable[Unit]) -> Iterator[Metric]:
    """Every unit's metrics, built afresh: what ``collect`` yields."""
    for unit in units:
        yield from unit.build()
