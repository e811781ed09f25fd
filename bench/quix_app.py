"""The peer: the worker's aggregation written as a Quix Streams application.

Runs inside the benchmark's own virtualenv (``bench.peer_quix``), so it imports only
quixstreams, orjson, holidays, pydantic and the standard library; the working-day clock is
the project's own ``stream/state/working_days.py``, loaded by path (same arithmetic).

Same shape as the worker: every event folds into the record of its case in Quix state
(RocksDB, changelog topic: Quix defaults; commits every --commit-seconds), the latest
event per type winning by
``(occurred_at, event_id)``; when a record changes, its old contribution is withdrawn
from in-memory aggregates and the new one added. Figures: decided contacts by month x
source group x outcome (count, working-day sum), calls by month (offered, answered within
20 s), MAP enquiries completed by month x outcome, audits by month x team x grade.
It does not compute the worker's other figures. With ``--contract`` it checks every
event as the worker does before its fold (``stream.contract.decoder``: the worker's
pydantic models, strict, with the taxonomy's code sets and the key and time bounds;
loaded from this checkout, so the peer's virtualenv pins the worker's pydantic) and
folds the validated event; without it, Quix's JSON deserializer's dict, unchecked.
It gets the worker's care: months memoised per clock hour (the worker's ``local_month``)
and working days on POSIX seconds (``working_days_between_ts``), no ``datetime`` per fact.
With ``--whole`` (implies ``--contract``) it does the worker's whole work instead of its
four figures: each checked event is folded by ``bench.same_fold.WholeFold``, the
worker's own record fold, facts, cells and open work from this checkout, event by event
in Quix state; its figures are then the worker's, checked as the worker's are.

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

from quixstreams import (  # type: ignore[import-not-found,unused-ignore]
    Application,
    message_context,
)

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


#: event type -> the fields its slot keeps, in order (what the facts above read)
FIELDS: dict[str, tuple[str, ...]] = {
    "contact.received": ("source_code",), "contact.decided": ("outcome",),
    "call.answered": ("wait_seconds",), "call.abandoned": ("wait_seconds",),
    "map_enquiry.completed": ("outcome",), "audit.graded": ("team", "grade"),
}


def slot(value: dict[str, Any]) -> list[Any]:
    """The slot's fields of an unchecked event (a JSON object)."""
    return [value[f] for f in FIELDS.get(value["event_type"], ())]


def checked_slot(event: Any) -> list[Any]:
    """The slot's fields of a validated event (the contract's model)."""
    return [getattr(event, f) for f in FIELDS.get(event.event_type, ())]


def contract(topics: list[str]) -> dict[str, Callable[[bytes | None, bytes, float], Any]]:
    """Each topic's decode by the worker's own contract: an event, or a rejection."""
    sys.path.insert(0, str(ROOT))
    from stream.contract.decoder import Decoder
    from stream.contract.taxonomy import load_taxonomy
    from stream.contract.topics import event_families, load_topics

    taxonomy = load_taxonomy()
    by_name = {spec.name: Decoder(family, taxonomy).decode
               for family, spec in event_families(load_topics()).items()}
    return {name: by_name[name] for name in topics}


def same_fold() -> Any:
    """The worker's whole fold (bench/same_fold.py, from this checkout)."""
    sys.path.insert(0, str(ROOT))
    from bench.same_fold import WholeFold

    return WholeFold()


def apply(fact: Fact | None, sign: float) -> None:
    if fact is not None:
        cell = AGG[fact[0]][fact[1]]
        cell[0] += sign * fact[2]
        cell[1] += sign * fact[3]


class Run:
    def __init__(self, app: Application, n: int, out: Path, whole: Any = None) -> None:
        self.app, self.n, self.out, self.whole = app, n, out, whole
        self.count, self.first, self.duplicates, self.rejected = 0, 0.0, 0, 0

    def folder(self, fact_of: Callable[[Record], Fact | None]) -> Callable[[Any, Any], None]:
        """The fold of an unchecked event: Quix's JSON deserializer's dict."""
        def fold(value: dict[str, Any], state: Any) -> None:
            if not self.first:
                self.first = time.time()
            ts = datetime.fromisoformat(value["occurred_at"]).timestamp()
            self.fold(state, value["event_type"], ts, value["event_id"], slot(value), fact_of)
        return fold

    def checked_folder(self, decode: Callable[[bytes | None, bytes, float], Any],
                       then: Callable[[Any, Any], None]
                       ) -> Callable[[Any, Any, int, Any, Any], None]:
        """The fold of an event checked by the contract (the message's bytes and key):
        ``then`` folds the validated event into the key's state and counts it."""
        def fold(value: bytes, key: bytes | None, _ts: int, _headers: Any, state: Any) -> None:
            if not self.first:
                self.first = time.time()
            event = decode(key, value, time.time())
            if not hasattr(event, "event_type"):  # a rejection: counted, not folded
                self.rejected += 1
                self.counted()
                return
            then(event, state)
        return fold

    def four_figures(self, fact_of: Callable[[Record], Fact | None]
                     ) -> Callable[[Any, Any], None]:
        """The four figures' fold of a validated event."""
        def then(event: Any, state: Any) -> None:
            self.fold(state, event.event_type, event.timestamp, event.event_id,
                      checked_slot(event), fact_of)
        return then

    def whole_work(self, topic: str, whole: Any) -> Callable[[Any, Any], None]:
        """The worker's own fold and recount of a validated event (``--whole``)."""
        def then(event: Any, state: Any) -> None:
            if not whole.fold(event, topic, message_context().partition, state):
                self.duplicates += 1
            self.counted()
        return then

    def fold(self, state: Any, et: str, ts: float, eid: str, fields: list[Any],
             fact_of: Callable[[Record], Fact | None]) -> None:
        rec = state.get("r") or {}
        current = rec.get(et)
        if current is not None and (current[0], current[1]) >= (ts, eid):
            self.duplicates += 1
        else:
            old = fact_of(rec)
            rec[et] = [ts, eid, *fields]
            state.set("r", rec)
            new = fact_of(rec)
            if old != new:
                apply(old, -1.0)
                apply(new, +1.0)
        self.counted()

    def counted(self) -> None:
        self.count += 1
        if self.count == self.n:
            self.finish()

    def finish(self) -> None:
        seconds = max(time.time() - self.first, 1e-9)
        figures = (self.whole.figures() if self.whole is not None else
                   {f: {k: v for k, v in cells.items() if v[0]} for f, cells in AGG.items()})
        self.out.write_text(json.dumps({
            "events": self.count, "seconds": seconds, "events_per_s": self.count / seconds,
            "duplicates": self.duplicates, "rejected": self.rejected, "figures": figures}))
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
    ap.add_argument("--contract", action="store_true",
                    help="check every event by the worker's contract before the fold")
    ap.add_argument("--whole", action="store_true",
                    help="fold as the worker does, every figure and open work (implies "
                         "--contract): bench/same_fold.py")
    a = ap.parse_args()
    app = Application(broker_address=a.bootstrap, consumer_group=a.group,
                      auto_offset_reset="earliest", state_dir=a.state_dir, loglevel="WARNING",
                      commit_interval=a.commit_seconds)
    names = a.topics.split(",")
    decoders = contract(names) if a.contract or a.whole else {}
    whole = same_fold() if a.whole else None
    run = Run(app, a.n, a.out, whole)
    for name, fact_of in zip(names, (contact_fact, map_fact, call_fact, audit_fact),
                             strict=True):
        if decoders:
            then = (run.four_figures(fact_of) if whole is None
                    else run.whole_work(name, whole))
            sdf = app.dataframe(app.topic(name, value_deserializer="bytes"))
            sdf.update(run.checked_folder(decoders[name], then), stateful=True,
                       metadata=True)
        else:
            sdf = app.dataframe(app.topic(name, value_deserializer="json"))
            sdf.update(run.folder(fact_of), stateful=True)
    app.run()
    return 0 if a.out.exists() else 1


if __name__ == "__main__":
    sys.exit(main())
