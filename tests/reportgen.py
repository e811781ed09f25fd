"""Committee-report test data: known events for every family, and the report they must give.

Two generators:

* ``generate(seed)``: a random but fully known set of events over July-November 2019
  (weekends, the August bank holiday of 26 Aug 2019, events a little outside the range,
  late (backfilled) events sent after later months' events, re-deliveries, corrections,
  completions sent before their openings, and a few invalid messages);
* ``seed_dataset()``: events that reproduce the December 2019 committee report's own
  figures (shared/seed/000_...txt), with the call counts found in tests/unit/test_report.py.

``expected_report(facts_of(data), months, Defs(...))`` computes every figure of
``python -m stream report --format json`` independently: nothing here imports
``stream``. Records ("latest event of each type wins"), months (Europe/London, event
time), working days (a day-by-day loop over ``holidays.country_holidays("GB",
subdiv="ENG")``), nearest-rank medians and the percentages are re-implemented the
plain way. ``compare(doc, expected)`` lists every mismatch between a JSON report and
an expectation.

Resolution: the worker keeps measured values to 1e-4 (aggregates.VALUE_DECIMALS,
documented); the expectation rounds its durations the same way, and the generator
keeps random durations at least 0.002 day away from whole days and from the
progression timescales, so that neither side's float noise can move a value across a
bin or a timescale. Durations that are whole days on purpose (Fri 10:00 -> Mon 10:00)
are built exactly.
"""

from __future__ import annotations

import hashlib
import math
import random
import tomllib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import orjson

LONDON = ZoneInfo("Europe/London")
ROOT = Path(__file__).resolve().parent.parent
TAXONOMY: dict[str, Any] = tomllib.loads((ROOT / "topics" / "taxonomy.toml").read_text())
TOPICS = {k: v["topic"] for k, v in
          tomllib.loads((ROOT / "topics" / "topics.toml").read_text()).items()}
RULES = {r["name"]: r for r in
         tomllib.loads((ROOT / "config" / "rules.toml").read_text())["rule"]}
_BANK = holidays.country_holidays("GB", subdiv="ENG", years=range(2018, 2022))
TOTAL = "total"
DAY_BINS = ("0", "1", "2", "3", "4", "5+")
VALUE_DECIMALS = 4


def codes(category: str) -> list[str]:
    """Codes of a taxonomy set, in the file's order (= the report's row order)."""
    return list(TAXONOMY[category])


def valid_from(category: str, code: str) -> date | None:
    entry = TAXONOMY[category][code]
    if isinstance(entry, dict) and "valid_from" in entry:
        return date.fromisoformat(str(entry["valid_from"]))
    return None


def source_group(code: str) -> str:
    group: str = TAXONOMY["source_code"][code]
    return group


def timescale(destination: str) -> float:
    return float(RULES["progression_" + destination]["timescale"])


# ------------------------------------------------------------------ calendar, by hand

def is_working(d: date) -> bool:
    return d.weekday() < 5 and d not in _BANK


def _midnight(d: date) -> float:
    return datetime(d.year, d.month, d.day, tzinfo=LONDON).timestamp()


def working_days(a: datetime, b: datetime) -> float:
    """Time inside working days (each local day, 23 h or 25 h ones too, counts 1)."""
    ta, tb = a.timestamp(), b.timestamp()
    if tb <= ta:
        return 0.0
    total, d, last = 0.0, a.astimezone(LONDON).date(), b.astimezone(LONDON).date()
    while d <= last:
        if is_working(d):
            start, end = _midnight(d), _midnight(d + timedelta(days=1))
            lo, hi = max(ta, start), min(tb, end)
            if hi > lo:
                total += (hi - lo) / (end - start)
        d += timedelta(days=1)
    return total


def calendar_days(a: datetime, b: datetime) -> float:
    return max(0.0, (b.timestamp() - a.timestamp()) / 86400.0)


def add_working_days(start: datetime, n: float) -> datetime:
    """The instant ``n`` working days after ``start`` (``start`` on a working day)."""
    d = start.astimezone(LONDON).date()
    assert is_working(d), d
    t = start.timestamp()
    remaining = n
    while True:
        day_start, day_end = _midnight(d), _midnight(d + timedelta(days=1))
        length = day_end - day_start
        left = (day_end - t) / length
        if remaining <= left + 1e-12:
            return datetime.fromtimestamp(t + remaining * length, LONDON)
        remaining -= left
        d += timedelta(days=1)
        while not is_working(d):
            d += timedelta(days=1)
        t = _midnight(d)


def month_of(t: datetime) -> str:
    return t.astimezone(LONDON).strftime("%Y-%m")


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=LONDON)


def _kept(v: float) -> float:
    return round(v, VALUE_DECIMALS)


def nearest_rank(values: Sequence[float], p: int) -> float | None:
    """The ceil(p n / 100)-th smallest value (at least the 1st)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p * len(ordered) / 100))
    return ordered[rank - 1]


# ----------------------------------------------------------------------------- events

@dataclass
class Message:
    """One Kafka message (duck-typed for tests.integration.harness.produce)."""

    topic: str
    key: bytes | None
    value: bytes
    timestamp_ms: int | None
    valid: bool = True


@dataclass
class Dataset:
    """Messages in send order; ``valid`` ones are what the worker must count."""

    messages: list[Message] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def bad(self) -> int:
        return sum(not m.valid for m in self.messages)

    def events(self) -> list[dict[str, Any]]:
        """Every valid event as sent (re-deliveries included)."""
        return [orjson.loads(m.value) for m in self.messages if m.valid]

    def without(self, case_key: str) -> Dataset:
        """The same data with every event of one case left out."""
        kept = [m for m in self.messages if m.key != case_key.encode()]
        return Dataset(kept, dict(self.notes))


_FAMILY_OF = {"contact": "contacts", "early_help": "contacts", "email": "contacts",
              "map_enquiry": "map_enquiries", "call": "calls", "audit": "audits"}
_KEY_OF = {"contact.received": "contact_key", "contact.decided": "contact_key",
           "contact.progressed": "contact_key", "early_help.allocated": "contact_key",
           "email.resolved": "enquiry_key", "map_enquiry.opened": "enquiry_key",
           "map_enquiry.completed": "enquiry_key", "call.queued": "call_key",
           "call.answered": "call_key", "call.abandoned": "call_key", "call.ended": "call_key",
           "audit.graded": "audit_key"}
_SOURCE_SYSTEM = {"contacts": "lcs", "map_enquiries": "lcs", "calls": "telephony",
                  "audits": "ehm"}


class Builder:
    """Event dicts with unique, increasing event ids, and their messages."""

    def __init__(self, prefix: str, rng: random.Random | None = None) -> None:
        self.prefix, self.n, self.rng = prefix, 0, rng

    def key(self, *parts: object) -> str:
        text = ":".join(str(p) for p in (self.prefix, *parts))
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()

    def event(self, event_type: str, at: datetime, **fields: Any) -> dict[str, Any]:
        self.n += 1
        family = _FAMILY_OF[event_type.split(".")[0]]
        # Some producers send UTC, some local time with its offset: the same instant.
        stamp = at.astimezone(UTC) if self.rng is not None and self.rng.random() < 0.25 else at
        return {"event_id": f"{self.prefix}-{self.n:08d}", "event_type": event_type,
                "schema_version": 1, "occurred_at": stamp.isoformat(),
                "source_system": _SOURCE_SYSTEM[family],
                **{k: v for k, v in fields.items() if v is not None}}

    @staticmethod
    def message(event: dict[str, Any]) -> Message:
        family = _FAMILY_OF[event["event_type"].split(".")[0]]
        at = datetime.fromisoformat(event["occurred_at"])
        return Message(TOPICS[family], event[_KEY_OF[event["event_type"]]].encode(),
                       orjson.dumps(event), int(at.timestamp() * 1000))


# ------------------------------------------------------------------ random generator

MONTHS = ("2019-07", "2019-08", "2019-09", "2019-10", "2019-11")
FIRST, LAST = date(2019, 7, 1), date(2019, 11, 30)


def _clear(*values: float, targets: Iterable[float] = ()) -> bool:
    """No value within 0.002 of a whole day or a target, unless exactly on it."""
    for v in values:
        for t in (round(v), *targets):
            if 1e-9 < abs(v - t) < 0.002:
                return False
    return True


def _later(a: datetime, hours: float, targets: Iterable[float] = (),
           origin: datetime | None = None) -> datetime:
    """``a`` + ``hours``, nudged until its durations from ``origin`` (default ``a``) are
    clear of whole days and of ``targets``."""
    targets, origin = tuple(targets), origin or a
    b = a + timedelta(hours=hours)
    while not _clear(working_days(origin, b), calendar_days(origin, b), targets=targets):
        b += timedelta(minutes=37)
    return b


def _moment(rng: random.Random, first: date = FIRST, last: date = LAST,
            office: float = 0.85) -> datetime:
    """Mostly office hours on working days; sometimes nights, weekends, bank holidays."""
    span = (last - first).days + 1
    while True:
        d = first + timedelta(days=rng.randrange(span))
        if rng.random() < office:
            if not is_working(d):
                continue
            seconds = rng.randrange(8 * 3600, 18 * 3600)
        else:
            seconds = rng.randrange(86400)
        return datetime(d.year, d.month, d.day, tzinfo=LONDON) + timedelta(seconds=seconds)


def _outcome(rng: random.Random, at: datetime) -> str:
    first_day = at.astimezone(LONDON).date().replace(day=1)
    allowed = [c for c in codes("contact_outcome")
               if (since := valid_from("contact_outcome", c)) is None or first_day >= since]
    return rng.choice(allowed)


def generate(seed: int = 2019, contacts: int = 1100, emails: int = 600, calls: int = 1300,
             enquiries: int = 260, audits: int = 120, bad: int = 6) -> Dataset:
    """Random events for every family over Jul-Nov 2019 (and a little either side)."""
    rng = random.Random(seed)
    b = Builder(f"rg{seed}", rng)
    cases: list[list[dict[str, Any]]] = []  # events of one case, in the order they happen
    pathways: list[str | None] = [*codes("pathway"), None]

    for i in range(contacts):
        k = b.key("contact", i)
        at = _moment(rng, FIRST - timedelta(days=4))
        evs: list[dict[str, Any]] = []
        has_rcv = rng.random() > 0.04  # a few decided contacts received before any export
        if has_rcv:
            evs.append(b.event("contact.received", at, contact_key=k,
                               channel=rng.choice(codes("channel")),
                               source_code=rng.choice(codes("source_code")),
                               team=rng.choice(["rfs"] * 8 + ["ehh", "map"])))
        if rng.random() < 0.9:
            dec = _later(at, rng.expovariate(1 / 30))
            evs.append(b.event("contact.decided", dec, contact_key=k,
                               outcome=_outcome(rng, dec), pathway=rng.choice(pathways)))
            roll = rng.random()
            if roll < 0.07:  # a correction: a later decision replaces the first
                again = _later(dec, 40)
                evs.append(b.event("contact.decided", again, contact_key=k,
                                   outcome=_outcome(rng, again), pathway=rng.choice(pathways)))
            elif roll < 0.09:  # same instant, a greater event id: the later id wins
                evs.append(b.event("contact.decided", dec, contact_key=k,
                                   outcome=_outcome(rng, dec), pathway=rng.choice(pathways)))
            roll = rng.random()
            if roll < 0.25:
                prog = _later(dec, rng.uniform(0.1, 20), (timescale("early_help"),), at)
                evs.append(b.event("contact.progressed", prog, contact_key=k,
                                   destination="early_help"))
                if rng.random() < 0.85:
                    evs.append(b.event("early_help.allocated",
                                       _later(prog, rng.expovariate(1 / 40)), contact_key=k))
            elif roll < 0.37:
                prog = _later(at, rng.expovariate(1 / 20), (timescale("childrens_social_care"),))
                evs.append(b.event("contact.progressed", prog, contact_key=k,
                                   destination="childrens_social_care"))
            elif roll < 0.39:  # allocated, but the progression never came: no figure
                evs.append(b.event("early_help.allocated", _later(dec, 5), contact_key=k))
        cases.append(evs)

    for i in range(emails):
        k = b.key("email", i)
        at = _moment(rng, office=0.7)
        evs = [b.event("email.resolved", at, enquiry_key=k)]
        if rng.random() < 0.03:  # re-resolved later: the later one counts
            evs.append(b.event("email.resolved", _later(at, 30), enquiry_key=k))
        cases.append(evs)

    waits = [0.0, 2.0, 5.0, 5.5, 12.0, 19.0, 20.0, 20.5, 21.0, 45.0, 90.0, 300.0]
    for i in range(calls):
        k = b.key("call", i)
        queued = _moment(rng, office=0.9)
        queue = rng.choice(["rfs"] * 4 + ["consultation"])
        wait = rng.choice(waits)
        end = queued + timedelta(seconds=wait)
        evs = []
        if rng.random() < 0.5:
            evs.append(b.event("call.queued", queued, call_key=k, queue=queue))
        if rng.random() < 0.88:
            evs.append(b.event("call.answered", end, call_key=k, queue=queue, wait_seconds=wait))
            if rng.random() < 0.3:
                talk = float(rng.randrange(30, 1800))
                evs.append(b.event("call.ended", end + timedelta(seconds=talk), call_key=k,
                                   queue=queue, handle_seconds=talk))
            if rng.random() < 0.02:  # a telephony retry artefact: the answer outranks it
                evs.append(b.event("call.abandoned", end + timedelta(seconds=1), call_key=k,
                                   queue=queue, wait_seconds=wait + 1))
        else:
            evs.append(b.event("call.abandoned", end, call_key=k, queue=queue,
                               wait_seconds=wait))
        cases.append(evs)

    agencies = codes("agency")
    for i in range(enquiries):
        k = b.key("map", i)
        opened = _moment(rng, FIRST - timedelta(days=3), office=0.9)
        evs = []
        has_open = rng.random() > 0.05
        if has_open:
            evs.append(b.event("map_enquiry.opened", opened, enquiry_key=k))
        if rng.random() < 0.95:
            shape = rng.random()
            hours = (rng.uniform(0.5, 7) if shape < 0.5 else rng.uniform(16, 60)
                     if shape < 0.8 else rng.uniform(60, 400))
            done = _later(opened, hours)
            consulted = rng.sample(agencies, rng.randint(1, len(agencies)))
            if rng.random() < 0.05:
                consulted.append(consulted[0])  # listed twice: one agency consulted
            outcome = rng.choice(codes("map_outcome"))
            service = (rng.choice(codes("level3_service")) if outcome == "level_3"
                       and rng.random() < 0.9 else None)
            evs.append(b.event("map_enquiry.completed", done, enquiry_key=k,
                               agencies_consulted=consulted, outcome=outcome,
                               level3_service=service))
            if rng.random() < 0.04:  # the completion was corrected a day later
                outcome = rng.choice(codes("map_outcome"))
                evs.append(b.event("map_enquiry.completed", _later(done, 24, origin=opened),
                                   enquiry_key=k,
                                   agencies_consulted=rng.sample(agencies, 3), outcome=outcome,
                                   level3_service="cc" if outcome == "level_3" else None))
        cases.append(evs)

    for i in range(audits):
        k = b.key("audit", i)
        at = _moment(rng)
        evs = [b.event("audit.graded", at, audit_key=k, team=rng.choice(["ehh", "map", "rfs"]),
                       grade=rng.choice(codes("grade")))]
        if rng.random() < 0.05:  # regraded after moderation
            evs.append(b.event("audit.graded", _later(at, 50), audit_key=k, team="ehh",
                               grade=rng.choice(codes("grade"))))
        cases.append(evs)

    cases += _crafted(b)
    return _send_order(rng, cases, b, bad)


def _crafted(b: Builder) -> list[list[dict[str, Any]]]:
    """Edge cases with known answers (checked by ``crafted_checks``)."""
    out: list[list[dict[str, Any]]] = []
    k = b.key("crafted", "bank-holiday-contact")
    # Fri 23 Aug 15:00 -> Tue 27 Aug 09:00 across the August bank holiday: 0.375 + 0.375.
    out.append([b.event("contact.received", local(2019, 8, 23, 15), contact_key=k,
                        channel="phone", source_code="3E", team="rfs"),
                b.event("contact.decided", local(2019, 8, 27, 9), contact_key=k,
                        outcome="level_4", pathway="information")])
    k = b.key("crafted", "bank-holiday-map")
    # Fri 23 Aug 10:00 -> Tue 27 Aug 10:00: exactly 1 working day, 4 calendar days.
    out.append([b.event("map_enquiry.opened", local(2019, 8, 23, 10), enquiry_key=k),
                b.event("map_enquiry.completed", local(2019, 8, 27, 10), enquiry_key=k,
                        agencies_consulted=["police", "gp"], outcome="level_4")])
    k = b.key("crafted", "weekend-map")
    # Fri 5 Jul 10:00 -> Mon 8 Jul 10:00: exactly 1 working day, 3 calendar days.
    out.append([b.event("map_enquiry.opened", local(2019, 7, 5, 10), enquiry_key=k),
                b.event("map_enquiry.completed", local(2019, 7, 8, 10), enquiry_key=k,
                        agencies_consulted=["education"], outcome="level_3",
                        level3_service="tys")])
    k = b.key("crafted", "saturday-contact")
    # Received Sat 14 Sep 11:00, decided Mon 16 Sep 12:00: the clock starts Monday, 0.5.
    out.append([b.event("contact.received", local(2019, 9, 14, 11), contact_key=k,
                        channel="online_form", source_code="9", team="rfs"),
                b.event("contact.decided", local(2019, 9, 16, 12), contact_key=k,
                        outcome="lado", pathway="map_enquiry")])
    k = b.key("crafted", "month-edge-contact")
    # Decided 31 Jul 23:30 UTC = 1 Aug 00:30 BST: an August decision.
    out.append([b.event("contact.received", datetime(2019, 7, 31, 15, tzinfo=UTC),
                        contact_key=k, channel="email", source_code="6", team="rfs"),
                b.event("contact.decided", datetime(2019, 7, 31, 23, 30, tzinfo=UTC),
                        contact_key=k, outcome="cwd")])
    k = b.key("crafted", "month-edge-call")
    # Answered 1 Aug 00:00:20 local after 40 s: offered (and counted) in July.
    out.append([b.event("call.answered", local(2019, 8, 1, 0, 0, 20), call_key=k, queue="rfs",
                        wait_seconds=40.0)])
    k = b.key("crafted", "dst-end-map")
    # Across the end of BST (Sun 27 Oct): Fri 25 Oct 12:00 -> Mon 28 Oct 12:00 is 1 working
    # day and 3 calendar days + 1 hour.
    out.append([b.event("map_enquiry.opened", local(2019, 10, 25, 12), enquiry_key=k),
                b.event("map_enquiry.completed", local(2019, 10, 28, 12), enquiry_key=k,
                        agencies_consulted=["camhs", "police", "gp", "housing"],
                        outcome="level_2")])
    return out


def crafted_checks() -> list[tuple[str, datetime, datetime, float, float]]:
    """(what, start, end, working days, calendar days) of the crafted durations."""
    return [
        ("bank holiday contact", local(2019, 8, 23, 15), local(2019, 8, 27, 9), 0.75, 3.75),
        ("bank holiday map", local(2019, 8, 23, 10), local(2019, 8, 27, 10), 1.0, 4.0),
        ("weekend map", local(2019, 7, 5, 10), local(2019, 7, 8, 10), 1.0, 3.0),
        ("saturday contact", local(2019, 9, 14, 11), local(2019, 9, 16, 12), 0.5, 2 + 1 / 24),
        ("dst end map", local(2019, 10, 25, 12), local(2019, 10, 28, 12), 1.0, 3 + 1 / 24),
    ]


def _send_order(rng: random.Random, cases: list[list[dict[str, Any]]], b: Builder,
                bad: int) -> Dataset:
    """Time order, except: late (backfilled) July/August cases go after everything,
    some completions go before their openings, some events go twice, and a few invalid
    messages are mixed in."""
    stamped: list[tuple[float, int, Message]] = []
    late_after = datetime(2019, 12, 5, tzinfo=UTC).timestamp()
    late = reordered = 0
    for evs in filter(None, cases):
        times = [datetime.fromisoformat(e["occurred_at"]).timestamp() for e in evs]
        backfill = (min(times) < datetime(2019, 9, 1, tzinfo=UTC).timestamp()
                    and rng.random() < 0.12)
        late += backfill
        if len(evs) > 1 and rng.random() < 0.2:  # the completion arrives first
            times = times[::-1]
            reordered += 1
        for t, e in zip(times, evs, strict=True):
            when = t + (late_after - min(times) + rng.uniform(0, 86400) if backfill else 0)
            stamped.append((when, len(stamped), b.message(e)))
            if rng.random() < 0.05:  # re-delivered a little later
                stamped.append((when + rng.uniform(1, 5 * 86400), len(stamped),
                                b.message(e)))
    stamped.sort(key=lambda x: (x[0], x[1]))
    messages = [m for _, _, m in stamped]
    contacts = TOPICS["contacts"]
    for i in range(bad):
        k = b.key("bad", i)
        if i % 2:  # valid JSON, but an outcome that is not in the taxonomy
            body = orjson.dumps(b.event("contact.decided", local(2019, 9, 2, 10),
                                        contact_key=k, outcome="level_9"))
        else:
            body = b"{not json %d" % i
        messages.insert(rng.randrange(len(messages)),
                        Message(contacts, k.encode(), body, None, valid=False))
    return Dataset(messages, {"late_cases": late, "reordered_cases": reordered})


# -------------------------------------------------------------- records and facts

@dataclass
class Facts:
    """What each case contributes, in plain lists (durations kept to 1e-4)."""

    received: list[tuple[str, str, str, str]] = field(default_factory=list)
    decided: list[tuple[str, str]] = field(default_factory=list)
    #: month, source group, pathway, working days, calendar days
    completion: list[tuple[str, str, str, float, float]] = field(default_factory=list)
    allocation: list[tuple[str, float, float]] = field(default_factory=list)
    #: month, destination, within timescale, working days, calendar days
    progressions: list[tuple[str, str, bool, float, float]] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    #: month, outcome, distinct agencies, level 3 service, working days, calendar days
    map_done: list[tuple[str, str, tuple[str, ...], str | None, float | None, float | None]] = (
        field(default_factory=list))
    #: month offered, queue, answered?, wait seconds
    calls: list[tuple[str, str, bool, float]] = field(default_factory=list)
    audits: list[tuple[str, str, str]] = field(default_factory=list)


def _kind(event_type: str) -> str:
    head = event_type.split(".")[0]
    return {"early_help": "contact", "map_enquiry": "map"}.get(head, head)


def _at(e: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(e["occurred_at"])


def facts_of(data: Dataset | Iterable[dict[str, Any]]) -> Facts:
    """Fold the valid events into cases (latest event of each type wins) and list facts."""
    events = data.events() if isinstance(data, Dataset) else list(data)
    cases: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    for e in events:
        slot = e["event_type"]
        if slot == "contact.progressed":
            slot += ":" + e["destination"]
        case = cases[(_kind(e["event_type"]), e[_KEY_OF[e["event_type"]]])]
        old = case.get(slot)
        if old is None or (_at(e).timestamp(), e["event_id"]) > (_at(old).timestamp(),
                                                                  old["event_id"]):
            case[slot] = e
    f = Facts()
    for (kind, _), case in cases.items():
        if kind == "contact":
            rcv, dec = case.get("contact.received"), case.get("contact.decided")
            group = source_group(rcv["source_code"]) if rcv else ""
            if rcv:
                f.received.append((month_of(_at(rcv)), rcv["channel"], group, rcv["team"]))
            if dec:
                f.decided.append((month_of(_at(dec)), dec["outcome"]))
                if rcv:
                    f.completion.append((month_of(_at(dec)), group,
                                         dec.get("pathway") or "not_yet_recorded",
                                         _kept(working_days(_at(rcv), _at(dec))),
                                         _kept(calendar_days(_at(rcv), _at(dec)))))
            eh, alloc = case.get("contact.progressed:early_help"), case.get("early_help.allocated")
            if eh and alloc:
                f.allocation.append((month_of(_at(alloc)),
                                     _kept(working_days(_at(eh), _at(alloc))),
                                     _kept(calendar_days(_at(eh), _at(alloc)))))
            for dest in codes("destination"):
                prog = case.get("contact.progressed:" + dest)
                if prog and rcv:
                    wd = working_days(_at(rcv), _at(prog))
                    f.progressions.append((month_of(_at(prog)), dest, wd <= timescale(dest),
                                           _kept(wd), _kept(calendar_days(_at(rcv), _at(prog)))))
        elif kind == "email":
            f.emails.append(month_of(_at(case["email.resolved"])))
        elif kind == "map":
            done, opened = case.get("map_enquiry.completed"), case.get("map_enquiry.opened")
            if done:
                service = done.get("level3_service") if done["outcome"] == "level_3" else None
                wd = _kept(working_days(_at(opened), _at(done))) if opened else None
                cd = _kept(calendar_days(_at(opened), _at(done))) if opened else None
                f.map_done.append((month_of(_at(done)), done["outcome"],
                                   tuple(sorted(set(done["agencies_consulted"]))), service,
                                   wd, cd))
        elif kind == "call":
            outcome = case.get("call.answered") or case.get("call.abandoned")
            if outcome:
                queued = case.get("call.queued")
                offered = (_at(queued) if queued else
                           _at(outcome) - timedelta(seconds=outcome["wait_seconds"]))
                f.calls.append((month_of(offered), outcome["queue"],
                                outcome["event_type"] == "call.answered",
                                _kept(float(outcome["wait_seconds"]))))
        elif kind == "audit":
            a = case["audit.graded"]
            f.audits.append((month_of(_at(a)), a["team"], a["grade"]))
    return f


# ------------------------------------------------------------------ expected report

@dataclass(frozen=True)
class Defs:
    """The report's definitions (as the report command reads them from CSPA_* / flags)."""

    service_level_seconds: float = 20.0
    variant: str = "offered"
    short_abandon_seconds: float = 0.0
    combination: str = "ratio_of_sums"
    basis: str = "working"


@dataclass(frozen=True)
class Fig:
    """One expected figure: "N/A", None (nothing to average), or a number of a kind."""

    value: float | str | None
    kind: str = "count"
    base: int | None = None


Key = tuple[str, ...]  # (table, row, column) or (table, row, column, "count")
NA = Fig("N/A")


def _pct(num: int, den: int) -> Fig:
    return Fig(100.0 * num / den if den else None, "percent", den)


def _mean(values: Sequence[float], kind: str = "days") -> Fig:
    return Fig(sum(values) / len(values) if values else None, kind, len(values))


class _Expect:
    def __init__(self, months: Sequence[str], defs: Defs) -> None:
        self.months, self.defs = list(months), defs
        self.cols = [*self.months, TOTAL]
        self.out: dict[Key, Fig] = {}

    def put(self, table: str, row: str, figs: Sequence[Fig]) -> None:
        for col, fig in zip(self.cols, figs, strict=True):
            key = (table, row, col)
            assert key not in self.out, key
            self.out[key] = fig

    def count_row(self, table: str, row: str, per_month: Mapping[str, int],
                  category: str | None = None) -> None:
        figs: list[Fig] = []
        for m in self.months:
            n = per_month.get(m, 0)
            since = valid_from(category, row) if category else None
            exists = since is None or date.fromisoformat(m + "-01") >= since
            figs.append(Fig(n) if exists or n else NA)
        present = [f.value for f in figs if f.value != "N/A"]
        figs.append(Fig(sum(present)) if present else NA)  # type: ignore[arg-type]
        self.put(table, row, figs)

    def percent_row(self, table: str, row: str, num: Mapping[str, int],
                    den: Mapping[str, int]) -> None:
        figs = [_pct(num.get(m, 0), den.get(m, 0)) for m in self.months]
        total_den = sum(den.get(m, 0) for m in self.months)
        if self.defs.combination == "mean_of_months":
            monthly = [f.value for f in figs if f.value is not None]
            figs.append(Fig(sum(monthly) / len(monthly) if monthly else None,  # type: ignore
                            "percent", total_den))
        else:
            figs.append(_pct(sum(num.get(m, 0) for m in self.months), total_den))
        self.put(table, row, figs)

    def stats(self, table: str, prefix: str, per_month: Mapping[str, list[float]],
              kind: str = "days") -> None:
        columns = [per_month.get(m, []) for m in self.months]
        columns.append([v for c in columns for v in c])
        self.put(table, prefix + "_count", [Fig(len(c)) for c in columns])
        self.put(table, prefix + "_average", [_mean(c, kind) for c in columns])
        self.put(table, prefix + "_median",
                 [Fig(nearest_rank(c, 50), kind, len(c)) for c in columns])
        self.put(table, prefix + "_p90", [Fig(nearest_rank(c, 90), kind, len(c)) for c in columns])

    def transposed_counts(self, table: str, columns: Sequence[str],
                          counts: Mapping[tuple[str, str], int]) -> None:
        """Months as rows; ``counts[(month, column)]``; a Total row and column."""
        for m in self.months:
            row = [counts.get((m, c), 0) for c in columns]
            for c, n in zip([*columns, TOTAL], [*row, sum(row)], strict=True):
                self.out[(table, m, c)] = Fig(n)
        for c in columns:
            self.out[(table, TOTAL, c)] = Fig(sum(counts.get((m, c), 0) for m in self.months))
        self.out[(table, TOTAL, TOTAL)] = Fig(sum(counts.get((m, c), 0) for m in self.months
                                                  for c in columns))


def expected_report(f: Facts, months: Sequence[str], defs: Defs = Defs()) -> dict[Key, Fig]:
    """Every figure of the JSON report for ``months``: (table, row, column) -> Fig."""
    x = _Expect(months, defs)
    inside = set(months)
    w = 3 if defs.basis == "working" else 4  # index of the duration in a fact

    # 1. RFS -----------------------------------------------------------------------------
    offered: Counter[str] = Counter()
    within: Counter[str] = Counter()
    abandoned: Counter[str] = Counter()
    short: Counter[str] = Counter()
    for m, _, answered, wait in f.calls:
        offered[m] += 1
        if answered:
            within[m] += wait <= defs.service_level_seconds
        else:
            abandoned[m] += 1
            short[m] += defs.short_abandon_seconds > 0 and wait <= defs.short_abandon_seconds
    answered_n = {m: offered[m] - abandoned[m] for m in months}
    denominator = {"offered": offered, "answered": answered_n,
                   "offered_less_short_abandons": {m: offered[m] - short[m] for m in months},
                   }[defs.variant]
    emails = Counter(f.emails)
    x.count_row("rfs", "calls", offered)
    x.percent_row("rfs", "service_level", within, denominator)
    x.percent_row("rfs", "abandoned_rate", {m: abandoned[m] - short[m] for m in months},
                  {m: offered[m] - short[m] for m in months})
    x.count_row("rfs", "emails_resolved", emails)
    decided: dict[str, Counter[str]] = defaultdict(Counter)
    for m, outcome in f.decided:
        decided[outcome][m] += 1
    for code in codes("contact_outcome"):
        x.count_row("rfs", code, decided[code], "contact_outcome")
    enquiries = {m: offered[m] + emails[m] for m in months}
    x.count_row("rfs", "enquiries", enquiries)
    x.percent_row("rfs", "email_share", emails, enquiries)

    # 2. MAP ------------------------------------------------------------------------------
    done = [d for d in f.map_done if d[0] in inside]
    completed = Counter(d[0] for d in done)
    x.count_row("map_summary", "completed", completed)
    x.percent_row("map_summary", "progress_level_4",
                  Counter(d[0] for d in done if d[1] == "level_4"), completed)
    agencies: dict[str, list[float]] = defaultdict(list)
    for d in done:
        agencies[d[0]].append(float(len(d[2])))
    x.stats("map_agencies", "agencies", agencies, "number")
    numbers = sorted({int(v) for vs in agencies.values() for v in vs})
    for n in range(numbers[0], numbers[-1] + 1) if numbers else ():
        x.count_row("map_agencies", str(n),
                    {m: sum(int(v) == n for v in agencies[m]) for m in months})
    for agency in codes("agency"):
        x.count_row("map_by_agency", agency, Counter(d[0] for d in done if agency in d[2]))
    for outcome in codes("map_outcome"):
        x.count_row("map_by_outcome", outcome, Counter(d[0] for d in done if d[1] == outcome))
    days: dict[str, list[float]] = defaultdict(list)
    for d in done:
        v = d[4] if defs.basis == "working" else d[5]
        if v is not None:
            days[d[0]].append(v)
    for table in (f"map_days_{defs.basis}", "map_days"):
        x.stats(table, "map_days", days)
    table = f"map_days_{defs.basis}"
    x.percent_row(table, "within_1_day", {m: sum(v <= 1.0 for v in days[m]) for m in months},
                  {m: len(days[m]) for m in months})
    if defs.combination != "mean_of_months":
        pooled = [v for m in months for v in days[m]]
        x.out[(table, "within_1_day", TOTAL)] = _pct(sum(v <= 1.0 for v in pooled), len(pooled))
    for i, name in enumerate(DAY_BINS):
        x.count_row(table, name, {m: sum(min(math.floor(v), 5) == i for v in days[m])
                                  for m in months})

    # 3. Information and advice ---------------------------------------------------------
    level3 = Counter((d[0], d[3]) for d in done if d[3])
    x.transposed_counts("level3_outcomes", codes("level3_service"), level3)

    # 4. Commentary ----------------------------------------------------------------------
    received = Counter(r[0] for r in f.received)
    x.count_row("contacts_received", "contacts_received", received)
    for channel in codes("channel"):
        x.count_row("contacts_received", channel,
                    Counter(r[0] for r in f.received if r[1] == channel))
    alloc: dict[str, list[float]] = defaultdict(list)
    for a in f.allocation:
        alloc[a[0]].append(a[1] if defs.basis == "working" else a[2])
    x.stats("early_help_allocation", "ehh_allocation", alloc)
    groups, pathways = codes("source_group"), codes("pathway")
    grid: dict[tuple[str, str], list[float]] = defaultdict(list)
    for c in f.completion:
        if c[0] in inside:
            for g in (c[1], TOTAL):
                for p in (c[2], TOTAL):
                    grid[(g, p)].append(c[w])  # type: ignore[arg-type]
    for g in (*groups, TOTAL):
        for p in (*pathways, TOTAL):
            vals = grid[(g, p)]
            x.out[("contact_completion_average", g, p)] = _mean(vals)
            x.out[("contact_completion_average", g, p, "count")] = Fig(len(vals))
            x.out[("contact_completion_median", g, p)] = Fig(nearest_rank(vals, 50), "days",
                                                             len(vals))
            x.out[("contact_completion_p90", g, p)] = Fig(nearest_rank(vals, 90), "days",
                                                          len(vals))
    for dest in codes("destination"):
        judged = Counter(prog[0] for prog in f.progressions if prog[1] == dest)
        yes = Counter(prog[0] for prog in f.progressions if prog[1] == dest and prog[2])
        x.percent_row("progressions", f"within_{dest}", yes, judged)
    for dest in codes("destination"):
        per: dict[str, list[float]] = defaultdict(list)
        for prog in f.progressions:
            if prog[1] == dest:
                per[prog[0]].append(prog[3] if defs.basis == "working" else prog[4])
        columns = [per[m] for m in months]
        columns.append([v for c in columns for v in c])
        x.put("progressions", f"days_{dest}_average", [_mean(c) for c in columns])

    # 5. Audits ---------------------------------------------------------------------------
    audits = [a for a in f.audits if a[0] in inside]
    for team in codes("team"):
        if any(a[1] == team for a in audits):
            x.transposed_counts(f"audits_{team}", codes("grade"),
                                Counter((a[0], a[2]) for a in audits if a[1] == team))
    return x.out


def expected_notes(expected: Mapping[Key, Fig], basis: str = "working") -> dict[str, list[str]]:
    """The sentences around the tables (section key -> notes), from the expected figures."""
    def v(*key: str) -> float:
        value = expected[key].value
        assert isinstance(value, (int, float)), key
        return float(value)

    return {
        "rfs": [f"The RFS Team processed a total of {v('rfs', 'enquiries', TOTAL):,.0f} "
                f"enquiries during this period; {v('rfs', 'email_share', TOTAL):.0f}% of them "
                "were received via email."],
        "map": [f"{v('map_summary', 'completed', TOTAL):,.0f} MAP enquiries completed. On "
                f"average C-SPA consulted {v('map_agencies', 'agencies_average', TOTAL):.1f} "
                "agencies to complete a MAP enquiry; "
                f"{v(f'map_days_{basis}', 'within_1_day', TOTAL):.0f}% were completed within "
                f"1 {basis} day (average {v('map_days', 'map_days_average', TOTAL):.1f} "
                f"{basis} days); {v('map_summary', 'progress_level_4', TOTAL):.0f}% progressed "
                "to Level 4."],
        "info_advice": [],
        "commentary": [f"The EHH took an average of "
                       f"{v('early_help_allocation', 'ehh_allocation_average', TOTAL):.1f} "
                       f"{basis} days to allocate and the MAP "
                       f"{v('map_days', 'map_days_average', TOTAL):.1f}."],
        "audits": [],
    }


def published(expected: Mapping[Key, Fig]) -> dict[Key, Fig]:
    """The expectation with counts of 1-5, and figures over 1-5 values, shown as "*"."""
    out: dict[Key, Fig] = {}
    for key, fig in expected.items():
        hide = False
        if fig.value != "N/A":
            if fig.kind == "count":
                hide = isinstance(fig.value, (int, float)) and 1 <= fig.value <= 5
            else:
                hide = fig.base is not None and 1 <= fig.base <= 5
        out[key] = replace(fig, value="*") if hide else fig
    return out


# ------------------------------------------------------------------------- comparing

#: Largest difference allowed between a printed 4-decimal value and the expectation:
#: 0.5e-4 for the JSON rounding, 0.5e-4 for the 1e-4 value resolution, and float noise.
TOLERANCE = 1.2e-4
DISPLAY_DIGITS = {"percent": 2, "days": 1, "number": 1}


def flatten(doc: Mapping[str, Any]) -> dict[Key, Any]:
    """A JSON report as (table, row, column[, "count"]) -> value."""
    out: dict[Key, Any] = {}
    for section in doc["sections"]:
        for table in section["tables"]:
            columns = [c["key"] for c in table["columns"]]
            for row in table["rows"]:
                for i, col in enumerate(columns):
                    keys: list[tuple[Key, Any]] = [((table["key"], row["key"], col),
                                                    row["values"][i])]
                    if "counts" in row:
                        keys.append(((table["key"], row["key"], col, "count"), row["counts"][i]))
                    for key, value in keys:
                        if key in out:
                            raise AssertionError(f"figure {key} appears twice in the report")
                        out[key] = value
    return out


def _same_number(got: float, want: float, digits: int) -> bool:
    if abs(got - want) > TOLERANCE:
        return False
    if f"{got:.{digits}f}" == f"{want:.{digits}f}":
        return True
    # Printed differently only if the exact value sits on a rounding boundary.
    scaled = want * 10 ** digits
    return abs(scaled - math.floor(scaled) - 0.5) * 10 ** -digits <= TOLERANCE


def mismatch(got: Any, want: Fig) -> bool:
    """Whether a printed JSON value differs from the expected figure."""
    if want.value in ("N/A", "*") or want.value is None:
        return got != want.value
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        return True
    if want.kind == "count":
        return not (isinstance(got, int) and got == want.value)
    assert isinstance(want.value, float | int)
    return not _same_number(float(got), float(want.value), DISPLAY_DIGITS[want.kind])


def compare(doc: Mapping[str, Any], expected: Mapping[Key, Fig]) -> list[str]:
    """Every difference between a JSON report and an expectation (empty: all equal)."""
    got = flatten(doc)
    problems = [f"{key}: missing from the report (expected {expected[key].value!r})"
                for key in expected if key not in got]
    problems += [f"{key}: not expected (report has {got[key]!r})"
                 for key in got if key not in expected]
    problems += [f"{key}: report {got[key]!r}, expected {expected[key].value!r} "
                 f"({expected[key].kind}, base {expected[key].base})"
                 for key in expected if key in got and mismatch(got[key], expected[key])]
    return sorted(problems)


# -------------------------------------------------------------- the seed's figures

AUG, SEP, OCT, NOV = "2019-08", "2019-09", "2019-10", "2019-11"
QUARTER = (AUG, SEP, OCT)
#: month -> (offered N, abandoned A, short abandons (<= 5 s) S, answered within 20 s W),
#: as found in tests/unit/test_report.py (variant offered_less_short_abandons).
SEED_CALLS = {AUG: (1763, 91, 23, 1113), SEP: (2412, 94, 17, 1428), OCT: (2503, 88, 14, 1585)}
SEED_EMAILS = {AUG: 3921, SEP: 4185, OCT: 4854}
#: The seed's RFS table, outcome rows: Aug, Sep, Oct (None = N/A), Total.
SEED_OUTCOMES: dict[str, tuple[int | None, int | None, int | None, int]] = {
    "level_1": (497, 506, 579, 1582), "level_2_fis": (45, 48, 54, 147),
    "cwd": (0, 15, 22, 37), "ot": (None, None, 5, 5), "level_2_eh": (321, 409, 432, 1162),
    "level_3": (170, 174, 264, 608), "map": (402, 461, 513, 1376),
    "level_4": (159, 195, 210, 564), "no_consent": (28, 23, 40, 91),
    "ola": (155, 144, 173, 472), "missing_not_open": (0, 0, 0, 0),
    "info_request": (544, 539, 739, 1822), "outcome_chaser": (40, 28, 55, 123),
    "open_case": (861, 763, 818, 2442), "open_contact": (205, 271, 342, 818),
    "inappropriate": (108, 205, 266, 579), "lado": (None, 9, 9, 18),
}
#: Section 3: Level 3 outcomes, TYS / FSP / CC.
SEED_LEVEL3 = {"2019-07": (35, 30, 28), AUG: (27, 19, 12), SEP: (44, 32, 24),
               OCT: (57, 45, 29)}
#: Section 5, Early Help Hub: Outstanding (blank in the seed), Good, RI, Inadequate.
SEED_AUDITS = {AUG: (0, 7, 9, 8), SEP: (0, 8, 8, 1), OCT: (0, 3, 10, 3)}
SEED_PATHWAYS = ("continue_eh", "progress_to_eh", "map_enquiry", "information",
                 "not_yet_recorded")
#: "Average days to complete contacts" (Nov 2019): (mean, contacts) per pathway, then the
#: row total. Police x Information is 1.37 (prints 1.4), see tests/unit/test_report.py.
SEED_COMPLETION: dict[str, tuple[tuple[float, int] | None, ...]] = {
    "anonymous": (None, (1.8, 6), (1.0, 38), (2.1, 42), (1.0, 17), (1.5, 103)),
    "health_services": ((4.5, 2), (1.8, 114), (1.2, 30), (1.5, 309), (1.2, 34), (1.5, 489)),
    "housing": (None, (1.6, 5), (1.0, 1), (1.8, 4), (0.0, 5), (1.1, 15)),
    "individual": (None, (1.7, 40), (1.4, 15), (1.5, 139), (1.3, 8), (1.5, 202)),
    "la_services": (None, (2.9, 8), (0.3, 3), (1.4, 45), (1.0, 5), (1.5, 61)),
    "not_recorded": ((3.0, 1), (1.9, 22), (0.0, 1), (0.9, 23), (1.5, 4), (1.4, 51)),
    "other_agencies": (None, (2.0, 7), (1.0, 6), (1.3, 10), (2.5, 4), (1.6, 27)),
    "other_legal_agency": (None, (1.6, 11), (1.1, 23), (1.3, 208), (0.8, 6), (1.3, 248)),
    "police": ((2.7, 7), (1.4, 37), (0.8, 33), (1.37, 426), (1.0, 34), (1.3, 537)),
    "schools": (None, (1.9, 107), (1.1, 15), (1.5, 133), (1.7, 30), (1.7, 285)),
}
SEED_COMPLETION_TOTALS = ((3.1, 10), (1.8, 357), (1.0, 165), (1.4, 1339), (1.2, 147),
                          (1.5, 2018))
#: Section 2 (MAP enquiries completed 1 Jul - 29 Nov 2019): 697 completed, 6.8 agencies
#: on average (the chart; the text's 6.6 is a defect of the seed), 79% within 1 working
#: day, average 2.0 working days, 44% progress to Level 4.
SEED_MAP = {"completed": 697, "level_4": 307, "within_1": 551, "agencies_total": 4740}


def _working_dates(month: str) -> list[date]:
    first = date.fromisoformat(month + "-01")
    d, out = first, []
    while d.month == first.month:
        if is_working(d):
            out.append(d)
        d += timedelta(days=1)
    return out


def _spread(month: str, n: int, i: int, hours: tuple[int, int] = (9, 17)) -> datetime:
    """The i-th of n instants spread over the working days and office hours of a month."""
    days = _working_dates(month)
    d = days[i * len(days) // n]
    slot = (i * 7919) % ((hours[1] - hours[0]) * 3600)
    return datetime(d.year, d.month, d.day, hours[0], tzinfo=LONDON) + timedelta(seconds=slot)


def _pairs(mean: float, n: int) -> list[float]:
    """n values averaging exactly ``mean`` (symmetric pairs), all >= 0."""
    values = [mean] if n % 2 else []
    for k in range(n // 2):
        d = min(0.1 * (k % 5 + 1), mean)
        values += [round(mean - d, 2), round(mean + d, 2)]
    return values


def seed_dataset() -> Dataset:
    """Events that reproduce the seed report's figures (see the SEED_* tables)."""
    b = Builder("seed")
    events: list[dict[str, Any]] = []
    # 1. Calls: W within 20 s (waits 0-20 s, 20 s counts), N-A-W slower, S short abandons
    #    (<= 5 s, 5 s counts), A-S longer abandons (5.5 s is not short).
    for month, (n, a, s, w) in SEED_CALLS.items():
        kinds = ([("answered", (0.0, 8.0, 12.0, 20.0)[i % 4]) for i in range(w)]
                 + [("answered", (20.5, 45.0, 300.0)[i % 3]) for i in range(n - a - w)]
                 + [("abandoned", (1.0, 3.0, 5.0)[i % 3]) for i in range(s)]
                 + [("abandoned", (5.5, 60.0)[i % 2]) for i in range(a - s)])
        for i, (kind, wait) in enumerate(kinds):
            k = b.key("call", month, i)
            at = _spread(month, n, i) + timedelta(seconds=wait)
            events.append(b.event(f"call.{kind}", at, call_key=k,
                                  queue="consultation" if i % 10 == 0 else "rfs",
                                  wait_seconds=wait))
    # Emails resolved, any day of the month.
    for month, n in SEED_EMAILS.items():
        first = date.fromisoformat(month + "-01")
        days = ((first.replace(day=28) + timedelta(days=4)).replace(day=1) - first).days
        for i in range(n):
            at = datetime(first.year, first.month, 1 + i * days // n, 8,
                          tzinfo=LONDON) + timedelta(seconds=(i * 104729) % 36000)
            events.append(b.event("email.resolved", at, enquiry_key=b.key("email", month, i)))
    # Contacts decided per outcome (the RFS table).
    for code, counts in SEED_OUTCOMES.items():
        for month, count in zip(QUARTER, counts[:3], strict=True):
            for i in range(count or 0):
                k = b.key("decided", code, month, i)
                events.append(b.event("contact.decided", _spread(month, count or 1, i),
                                      contact_key=k, outcome=code))
    # Audits (EHH).
    grades = codes("grade")
    for month, counts in SEED_AUDITS.items():
        for grade, count in zip(grades, counts, strict=True):
            for i in range(count):
                events.append(b.event("audit.graded", _spread(month, count, i),
                                      audit_key=b.key("audit", month, grade, i), team="ehh",
                                      grade=grade))
    events += _seed_map(b)
    events += _seed_completion(b)
    return Dataset([Builder.message(e) for e in events])


def _seed_map(b: Builder) -> list[dict[str, Any]]:
    """697 MAP enquiries Jul-Nov: the Level 3 table, 44% Level 4, 6.8 agencies, 2.0 days."""
    plan: list[tuple[str, str, str | None]] = []  # month, outcome, level 3 service
    for month, counts in SEED_LEVEL3.items():
        for service, n in zip(codes("level3_service"), counts, strict=True):
            plan += [(month, "level_3", service)] * n
    for i in range(SEED_MAP["level_4"]):
        plan.append((MONTHS[i % 5], "level_4", None))
    plan += [("2019-07", "level_1", None)] * 2 + [(NOV, "level_2", None)] * 6
    assert len(plan) == SEED_MAP["completed"]
    # Agencies: 558 x 7 and 139 x 6 = 4740 (mean 6.8006), then pairs 7,7 -> 5,9.
    counts = [7] * 558 + [6] * 139
    for i in range(0, 100, 2):
        counts[i], counts[i + 1] = 5, 9
    assert sum(counts) == SEED_MAP["agencies_total"]
    agencies = codes("agency")
    short_n = SEED_MAP["within_1"]
    long_n = len(plan) - short_n
    per_month: Counter[str] = Counter()
    out: list[dict[str, Any]] = []
    short_total = 0.0
    for i, (month, outcome, service) in enumerate(plan):
        k = b.key("map", i)
        days = _working_dates(month)
        j = per_month[month]
        per_month[month] += 1
        # Interleave: enquiry i is short unless it falls in the long share.
        is_short = (i * long_n) // len(plan) == ((i + 1) * long_n) // len(plan)
        if is_short:
            opened = datetime.combine(days[j % len(days)], datetime.min.time(),
                                      LONDON) + timedelta(hours=10)
            done = opened + timedelta(minutes=60 + (i * 37) % 300)
            short_total += working_days(opened, done)
        else:
            opened = datetime.combine(days[j % 5], datetime.min.time(),
                                      LONDON) + timedelta(hours=10)
            done = opened  # set below, once the short ones are known
        out.append(b.event("map_enquiry.opened", opened, enquiry_key=k))
        start = i * 5 % len(agencies)
        consulted = [agencies[(start + n) % len(agencies)] for n in range(counts[i])]
        out.append(b.event("map_enquiry.completed", done, enquiry_key=k,
                           agencies_consulted=consulted, outcome=outcome,
                           level3_service=service))
    # The long ones share what the average of 2.0 working days leaves: about 8.8 each.
    long_each = (2.0 * len(plan) - short_total) / long_n
    n_long = 0
    for opened_ev, done_ev in zip(out[::2], out[1::2], strict=True):
        if opened_ev["occurred_at"] == done_ev["occurred_at"]:
            shift = (-0.5, 0.5)[n_long % 2] if n_long < long_n - long_n % 2 else 0.0
            n_long += 1
            done_ev["occurred_at"] = add_working_days(_at(opened_ev),
                                                      long_each + shift).isoformat()
    assert n_long == long_n
    return out


def _seed_completion(b: Builder) -> list[dict[str, Any]]:
    """2,018 contacts completed 1-26 Nov 2019 giving the table's means and counts."""
    outcome_of = {"continue_eh": "level_2_eh", "progress_to_eh": "level_2_eh",
                  "map_enquiry": "map", "information": "info_request",
                  "not_yet_recorded": "level_1"}
    by_group: dict[str, list[str]] = defaultdict(list)
    for code, group in TAXONOMY["source_code"].items():
        by_group[group].append(code)
    days = [d for d in _working_dates(NOV) if d.day <= 15]
    out: list[dict[str, Any]] = []
    i = 0
    for group, cells in SEED_COMPLETION.items():
        for pathway, cell in zip(SEED_PATHWAYS, cells[:5], strict=True):
            if cell is None:
                continue
            mean, n = cell
            for j, value in enumerate(_pairs(mean, n)):
                k = b.key("completion", i)
                received = datetime.combine(days[i % len(days)], datetime.min.time(),
                                            LONDON) + timedelta(hours=9, minutes=i % 420)
                decided = add_working_days(received, value)
                assert decided <= local(2019, 11, 26, 23, 59), (group, pathway, value)
                codes_ = by_group[group]
                out.append(b.event("contact.received", received, contact_key=k,
                                   channel=("phone", "email")[i % 2],
                                   source_code=codes_[j % len(codes_)], team="rfs"))
                recorded = None if pathway == "not_yet_recorded" and j % 2 else pathway
                out.append(b.event("contact.decided", decided, contact_key=k,
                                   outcome=outcome_of[pathway], pathway=recorded))
                i += 1
    assert i == 2018
    return out


# --------------------------------------------------------------- text tables

def text_table(text: str, title: str) -> dict[str, list[str]]:
    """A table of ``render_text`` output: row label -> cell texts, and "" -> the column
    headings (column spans come from the dashed rule under the header)."""
    lines = text.splitlines()
    start = lines.index(title)
    header, rule = lines[start + 1], lines[start + 2]
    spans: list[tuple[int, int]] = []
    pos = 0
    for part in rule.split("  "):
        spans.append((pos, pos + len(part)))
        pos += len(part) + 2
    rows: dict[str, list[str]] = {"": [header[a:b].strip() for a, b in spans[1:]]}
    for line in lines[start + 3:]:
        if not line.strip():
            break
        cells = [line[a:b].strip() for a, b in spans]
        rows[cells[0]] = cells[1:]
    return rows

