"""The peer: the worker's aggregation written as a Quix Streams application.

Runs inside the benchmark's own virtualenv (``bench.peer_quix``), so it imports only
quixstreams, orjson, holidays and the standard library; the working-day clock is the
project's own ``stream/state/working_days.py``, loaded by path (same arithmetic, no pydantic).

Same shape as the worker: every event folds into the record of its case in Quix state
(RocksDB, changelog topic: Quix defaults; commits every --commit-seconds), the latest
event per type winning by
``(occurred_at, event_id)``; when a record changes, its old contribution is withdrawn
from in-memory aggregates and the new one added. Figures: decided contacts by month x
source group x outcome (count, working-day sum), calls by month (offered, answered within
20 s), MAP enquiries completed by month x outcome, audits by month x team x grade.
Unlike the worker it does not validate the contract nor compute the other figures.
It gets the worker's care: months memoised per clock hour (the worker's ``local_month``)
and working days on POSIX seconds (``working_days_between_ts``), no ``datetime`` per fact.

Stops after N messages and writes ``{events, seconds, events_per_s, figures}`` to --out.
Its clock is read as the worker's is (bench/replay.py): wall-clock time when the first
record reaches the fold, to wall-clock time when the N-th has been folded.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import tomllib
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from quixstreams import Application  # type: ignore[import-not-found,unused-ignore]

ROOT = Path(__file__).resolve().parent.parent
LONDON = ZoneInfo("Europe/London")
TARGET_SECONDS = 20.0


def load_working_days() -> Any:
    """The project's stream/state/working_days.py, loaded by path."""
    spec = importlib.util.spec_from_file_location("cspa_working_days",
                                                  ROOT / "stream" / "state" / "working_days.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


WD = load_working_days()
CAL = WD.WorkingCalendar()
MONTHS: dict[int, str] = {}  # clock hour -> local month, as the worker's FactContext.month
GROUPS = tomllib.loads((ROOT / "topics" / "taxonomy.toml").read_text())["source_code"]
Record = dict[str, list[Any]]
Fact = tuple[str, str, float, float]
AGG: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0]))


def month(ts: float) -> str:
    local: str = WD.local_month(ts, LONDON, MONTHS)
    return local


def workdays(start: float, end: float) -> float:
    if end <= start:
        return 0.0
    days: float = CAL.working_days_between_ts(start, end)
    return days


def contact_fact(rec: Record) -> Fact | None:
    rcv, dec = rec.get("contact.received"), rec.get("contact.decided")
    if not (rcv and dec):
        return None
    return ("contacts_group_outcome", f"{month(dec[0])}|{GROUPS[rcv[2]]}|{dec[2]}",
            1.0, workdays(rcv[0], dec[0]))


def call_fact(rec: Record) -> Fact | None:
    outcome = rec.get("call.answered") or rec.get("call.abandoned")
    if not outcome:
        return None
    queued = rec.get("call.queued")
    offered = queued[0] if queued else outcome[0] - outcome[2]
    within = "call.answered" in rec and outcome[2] <= TARGET_SECONDS
    return ("calls", month(offered), 1.0, float(within))


def map_fact(rec: Record) -> Fact | None:
    done = rec.get("map_enquiry.completed")
    return ("map_completed", f"{month(done[0])}|{done[2]}", 1.0, 0.0) if done else None


def audit_fact(rec: Record) -> Fact | None:
    g = rec.get("audit.graded")
    return ("audits", f"{month(g[0])}|{g[2]}|{g[3]}", 1.0, 0.0) if g else None


def slot(value: dict[str, Any]) -> list[Any]:
    et = value["event_type"]
    if et == "contact.received":
        return [value["source_code"]]
    if et == "contact.decided":
        return [value["outcome"]]
    if et in ("call.answered", "call.abandoned"):
        return [value["wait_seconds"]]
    if et == "map_enquiry.completed":
        return [value["outcome"]]
    if et == "audit.graded":
        return [value["team"], value["grade"]]
    return []


def apply(fact: Fact | None, sign: float) -> None:
    if fact is not None:
        cell = AGG[fact[0]][fact[1]]
        cell[0] += sign * fact[2]
        cell[1] += sign * fact[3]


class Run:
    def __init__(self, app: Application, n: int, out: Path) -> None:
        self.app, self.n, self.out = app, n, out
        self.count, self.first, self.duplicates = 0, 0.0, 0

    def folder(self, fact_of: Callable[[Record], Fact | None]) -> Callable[[Any, Any], None]:
        def fold(value: dict[str, Any], state: Any) -> None:
            if not self.first:
                self.first = time.time()
            ts = datetime.fromisoformat(value["occurred_at"]).timestamp()
            et, eid = value["event_type"], value["event_id"]
            rec = state.get("r") or {}
            current = rec.get(et)
            if current is not None and (current[0], current[1]) >= (ts, eid):
                self.duplicates += 1
            else:
                old = fact_of(rec)
                rec[et] = [ts, eid, *slot(value)]
                state.set("r", rec)
                new = fact_of(rec)
                if old != new:
                    apply(old, -1.0)
                    apply(new, +1.0)
            self.count += 1
            if self.count == self.n:
                self.finish()
        return fold

    def finish(self) -> None:
        seconds = max(time.time() - self.first, 1e-9)
        figures = {f: {k: v for k, v in cells.items() if v[0]} for f, cells in AGG.items()}
        self.out.write_text(json.dumps({
            "events": self.count, "seconds": seconds, "events_per_s": self.count / seconds,
            "duplicates": self.duplicates, "figures": figures}))
        self.app.stop()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--topics", required=True, help="contacts,map,calls,audits topic names")
    ap.add_argument("--commit-seconds", type=float, default=5.0,
                    help="Quix's commit interval (its default: 5 s)")
    a = ap.parse_args()
    app = Application(broker_address=a.bootstrap, consumer_group=a.group,
                      auto_offset_reset="earliest", state_dir=a.state_dir, loglevel="WARNING",
                      commit_interval=a.commit_seconds)
    run = Run(app, a.n, a.out)
    contacts, maps, calls, audits = a.topics.split(",")
    for name, fact_of in ((contacts, contact_fact), (maps, map_fact), (calls, call_fact),
                          (audits, audit_fact)):
        sdf = app.dataframe(app.topic(name, value_deserializer="json"))
        sdf.update(run.folder(fact_of), stateful=True)
    app.run()
    return 0 if a.out.exists() else 1


if __name__ == "__main__":
    sys.exit(main())
