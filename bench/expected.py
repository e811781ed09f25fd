"""Figures of an event set computed independently, and the exactness checks.

Nothing here uses the worker's logic: the latest event per case and event type wins
(by ``(occurred_at, event_id)``), months are Europe/London, and working days are counted
the plain way (day by day over the England and Wales bank holidays).

Figures (keys joined with ``|``; values ``[count, working-day sum]`` or ``[count]``):

* ``contacts_group_outcome``: decided contacts by decision month x source group x outcome
* ``contacts_received``: month x source group; ``contacts_decided``: month x outcome
* ``completion``: decision month x source group x pathway (count, working days)
* ``calls``: month offered -> [offered, answered within 20 s]
* ``map_completed``: month x outcome; ``audits``: month x team x grade
"""

from __future__ import annotations

import tomllib
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import orjson

from bench import ROOT
from bench.dataset import Msg
from bench.procs import Samples

LONDON = ZoneInfo("Europe/London")
GROUPS: dict[str, str] = tomllib.loads(
    (ROOT / "topics" / "taxonomy.toml").read_text())["source_code"]
TARGET_SECONDS = 20.0
Figures = dict[str, dict[str, list[float]]]


class PlainCalendar:
    """Working days counted one local day at a time (each working day counts 1)."""

    def __init__(self) -> None:
        self.bank = holidays.country_holidays("GB", subdiv="ENG", years=range(2015, 2031))
        self.days: dict[date, tuple[bool, float, float]] = {}

    def day(self, d: date) -> tuple[bool, float, float]:
        if d not in self.days:
            nxt = d + timedelta(days=1)
            self.days[d] = (d.weekday() < 5 and d not in self.bank,
                            datetime(d.year, d.month, d.day, tzinfo=LONDON).timestamp(),
                            datetime(nxt.year, nxt.month, nxt.day, tzinfo=LONDON).timestamp())
        return self.days[d]

    def between(self, a: float, b: float) -> float:
        if b <= a:
            return 0.0
        total, d = 0.0, datetime.fromtimestamp(a, LONDON).date()
        last = datetime.fromtimestamp(b, LONDON).date()
        while d <= last:
            working, start, end = self.day(d)
            if working and min(b, end) > max(a, start):
                total += (min(b, end) - max(a, start)) / (end - start)
            d += timedelta(days=1)
        return total


def _month(ts: float) -> str:
    return datetime.fromtimestamp(ts, LONDON).strftime("%Y-%m")


def compute(messages: Iterable[Msg]) -> Figures:
    latest: dict[tuple[str, bytes, str], tuple[float, str, dict[str, Any]]] = {}
    for m in messages:
        e = orjson.loads(m.value)
        ts = datetime.fromisoformat(e["occurred_at"]).timestamp()
        slot = (m.topic, m.key, e["event_type"])
        if slot not in latest or latest[slot][:2] < (ts, e["event_id"]):
            latest[slot] = (ts, e["event_id"], e)
    cases: dict[tuple[str, bytes], dict[str, tuple[float, dict[str, Any]]]] = defaultdict(dict)
    for (topic, key, etype), (ts, _, e) in latest.items():
        cases[(topic, key)][etype] = (ts, e)
    out: Figures = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))
    cal = PlainCalendar()

    def add(figure: str, labels: tuple[str, ...], *values: float) -> None:
        cell = out[figure]["|".join(labels)]
        for i, v in enumerate(values):
            cell[i] += v

    for case in cases.values():
        rcv, dec = case.get("contact.received"), case.get("contact.decided")
        if rcv:
            add("contacts_received", (_month(rcv[0]), GROUPS[rcv[1]["source_code"]]), 1)
        if dec:
            add("contacts_decided", (_month(dec[0]), dec[1]["outcome"]), 1)
        if rcv and dec:
            month, group, days = _month(dec[0]), GROUPS[rcv[1]["source_code"]], cal.between(
                rcv[0], dec[0])
            add("contacts_group_outcome", (month, group, dec[1]["outcome"]), 1, days)
            add("completion", (month, group, dec[1].get("pathway") or "not_yet_recorded"),
                1, days)
        outcome = case.get("call.answered") or case.get("call.abandoned")
        if outcome:
            ts, e = outcome
            queued = case.get("call.queued")
            offered = queued[0] if queued else ts - e["wait_seconds"]
            within = e["event_type"] == "call.answered" and e["wait_seconds"] <= TARGET_SECONDS
            add("calls", (_month(offered),), 1, float(within))
        if done := case.get("map_enquiry.completed"):
            add("map_completed", (_month(done[0]), done[1]["outcome"]), 1)
        if audit := case.get("audit.graded"):
            add("audits", (_month(audit[0]), audit[1]["team"], audit[1]["grade"]), 1)
    return {f: dict(cells) for f, cells in out.items()}


#: figure -> (metric, labels of the key, value index) as the worker exposes them
_WORKER: dict[str, list[tuple[str, tuple[str, ...], int]]] = {
    "contacts_received": [("cspa_contacts_received", ("month", "source_group"), 0)],
    "contacts_decided": [("cspa_contacts_decided", ("month", "outcome"), 0)],
    "completion": [("cspa_contact_completion_workdays_count",
                    ("month", "source_group", "pathway"), 0),
                   ("cspa_contact_completion_workdays_sum",
                    ("month", "source_group", "pathway"), 1)],
    "calls": [("cspa_calls_offered", ("month",), 0),
              ("cspa_calls_answered_within_target", ("month",), 1)],
    "map_completed": [("cspa_map_enquiries_completed", ("month", "outcome"), 0)],
    "audits": [("cspa_audits", ("month", "team", "grade"), 0)],
}


def from_worker(samples: Samples) -> Figures:
    """The same figures read back from the worker's /metrics samples."""
    out: Figures = {}
    for figure, series in _WORKER.items():
        cells: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for metric, labels, index in series:
            for (name, lbls), value in samples.items():
                if name == metric:
                    d = dict(lbls)
                    cells["|".join(d[x] for x in labels)][index] += value
        out[figure] = {k: v for k, v in cells.items() if any(v)}
    return out


def compare(expected: Figures, actual: Figures, figures: Iterable[str]) -> list[str]:
    """Differences (empty when exact): counts equal, sums within the 1e-4 rounding."""
    problems = []
    for figure in figures:
        want, got = expected.get(figure, {}), actual.get(figure, {})
        for key in sorted(set(want) | set(got)):
            w, g = want.get(key, [0.0, 0.0]), got.get(key, [0.0, 0.0])
            tolerance = [0.0, 1e-4 * max(w[0], 1) + 1e-6 if figure in _SUMS else 0.0]
            for i in range(min(len(w), len(g))):
                if abs(w[i] - g[i]) > tolerance[i] + 1e-9:
                    problems.append(f"{figure}[{key}][{i}]: expected {w[i]}, got {g[i]}")
    return problems


_SUMS = ("completion", "contacts_group_outcome")  # working-day sums, 1e-4 per value
WORKER_FIGURES = tuple(_WORKER)
PEER_FIGURES = ("contacts_group_outcome", "calls", "map_completed", "audits")
