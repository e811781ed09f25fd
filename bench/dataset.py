"""The benchmark's events: a deterministic backlog, live traffic and recovery state.

* ``backlog``: the simulator's national-scale mix (``scale`` 150 = England) from a fixed
  start date, the first ``n`` events in event-time order, encoded exactly as the producer
  library does; cached on disk (it costs ~60 us an event to generate).
* ``live``: contract-valid events happening now (contacts received and decided, emails,
  calls), for the latency measurement.
* ``recovery_contacts``: contacts received and decided across a year, built as plain
  JSON (millions of them must be cheap), a sample of them checked against the contract.

They are sent by ``bench.producing``.
"""

from __future__ import annotations

import hashlib
import pickle
import random
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import orjson

from bench import CACHE, ROOT
from stream.contract.decoder import Decoder, Rejection
from stream.contract.taxonomy import Taxonomy, load_taxonomy
from stream.contract.topics import event_families, load_topics
from stream.upstream.producer import encode, family_of
from stream.upstream.simulator import generate

LONDON = ZoneInfo("Europe/London")
BACKLOG_START = date(2024, 1, 1)
TOPICS = load_topics()
#: The backlog depends on these (this file: which families it keeps): a change makes a
#: new cache file.
_SIMULATOR_FILES = [ROOT / "stream" / "upstream" / "simulator.py",
                    ROOT / "stream" / "upstream" / "profile.py",
                    ROOT / "stream" / "upstream" / "feedback.py",
                    ROOT / "topics" / "taxonomy.toml", ROOT / "bench" / "dataset.py"]


class Msg(NamedTuple):
    topic: str
    key: bytes
    value: bytes
    timestamp_ms: int


def _key(*parts: object) -> str:
    return hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=16).hexdigest()


#: the families the backlog holds: the ones the Quix peer folds too (bench/quix_app.py),
#: so that both sides replay the same events; feedback (a few dozen events a month) is
#: left out, or the peer, which does not read its topic, would never reach ``n``
FOLDED = frozenset({"contacts", "map_enquiries", "calls", "audits"})


def backlog(n: int, seed: int = 11, scale: float = 150.0) -> list[Msg]:
    """The first ``n`` simulated events of the ``FOLDED`` families (cached under
    ``.cache/bench-data``)."""
    code = hashlib.sha256(b"".join(p.read_bytes() for p in _SIMULATOR_FILES)).hexdigest()[:12]
    path = CACHE / "bench-data" / f"sim-{BACKLOG_START}-s{seed}-x{scale:g}-{n}-{code}.pickle"
    if path.exists():
        cached: list[Msg] = [Msg(*m) for m in pickle.loads(path.read_bytes())]
        return cached
    taxonomy = load_taxonomy()
    out = []
    events = generate(BACKLOG_START, 10_000, seed=seed, scale=scale, taxonomy=taxonomy)
    folded = ((e, f) for e in events
              if (f := family_of(e.event_type, TOPICS)) in FOLDED)  # type: ignore[attr-defined]
    for event, family in islice(folded, n):
        topic = TOPICS[family].name
        out.append(Msg(topic, event.key.encode(), encode(event),
                       int(event.timestamp * 1000)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps([tuple(m) for m in out], protocol=5))
    return out


def topic_counts(messages: Iterable[Msg]) -> Counter[str]:
    return Counter(m.topic for m in messages)


def _msg(family: str, key: str, event: dict[str, Any]) -> Msg:
    at = datetime.fromisoformat(event["occurred_at"])
    return Msg(TOPICS[family].name, key.encode(), orjson.dumps(event),
               int(at.timestamp() * 1000))


def _base(event_id: str, event_type: str, at: datetime, source: str) -> dict[str, Any]:
    return {"event_id": event_id, "event_type": event_type, "schema_version": 1,
            "occurred_at": at.isoformat(), "source_system": source}


#: live contacts per child when they name children: about one in five repeats
CONTACTS_PER_CHILD = 1.25


def live(count: int, seed: int = 5, taxonomy: Taxonomy | None = None,
         children: bool = False) -> Iterator[Msg]:
    """``count`` contract-valid events stamped with the time each is generated (now);
    ``children``: each contact names one of a pool of children (so each one hops)."""
    tax = taxonomy or load_taxonomy()
    rng, codes = random.Random(seed), sorted(tax.source_groups)
    month0 = datetime.now(LONDON).date().replace(day=1)
    outcomes = [o for o in tax.ordered("contact_outcome") if tax.exists_in(
        "contact_outcome", o, month0)]
    pool = max(1, int(0.3 * count / CONTACTS_PER_CHILD))  # 3 contacts in 10 events
    for i in range(count):
        now, pick = datetime.now(UTC), i % 10
        ev = _base(f"bench-live-{seed}-{i:08d}", "", now, "lcs")
        if pick < 3:
            k = _key("live-contact", seed, i // 10, pick)
            received = ev | {"event_type": "contact.received", "contact_key": k,
                             "channel": "phone", "team": "rfs",
                             "source_code": rng.choice(codes)}
            if children:
                received["child_key"] = _key("live-child", seed, rng.randrange(pool))
            yield _msg("contacts", k, received)
            yield _msg("contacts", k, ev | {
                "event_id": ev["event_id"] + "d", "event_type": "contact.decided",
                "contact_key": k, "outcome": rng.choice(outcomes)})
        elif pick < 5:
            k = _key("live-email", seed, i)
            yield _msg("contacts", k, ev | {"event_type": "email.resolved",
                                            "enquiry_key": k, "source_system": "mailbox"})
        else:
            k = _key("live-call", seed, i)
            yield _msg("calls", k, ev | {"event_type": "call.answered", "call_key": k,
                                         "queue": "rfs", "source_system": "telephony",
                                         "wait_seconds": float(rng.randint(1, 40))})


def recovery_contacts(count: int, seed: int = 3, year: int = 2023) -> Iterator[Msg]:
    """``count`` contacts (received + decided) spread over ``year``: state to recover.

    Generated as they are sent: a national year (3,000,000 contacts, 6,000,000 events)
    held in a list took the harness past this machine's 24 GiB.
    """
    tax = load_taxonomy()
    rng, codes = random.Random(seed), sorted(tax.source_groups)
    channels, pathways = tax.ordered("channel"), [*tax.ordered("pathway"), None]
    outcomes = {m: [o for o in tax.ordered("contact_outcome")
                    if tax.exists_in("contact_outcome", o, date(year, m, 1))]
                for m in range(1, 13)}
    first = datetime(year, 1, 1, 8, tzinfo=LONDON)
    sample: list[Msg] = []
    every = max(1, count // 100)
    for i in range(count):
        k = _key("recovery", seed, i)
        received = first + timedelta(days=rng.randrange(358), seconds=rng.randrange(36_000))
        decided = received + timedelta(hours=rng.expovariate(1 / 30))
        rcv = _base(f"bench-rec-{seed}-{i:09d}-r", "contact.received", received, "lcs")
        dec = _base(f"bench-rec-{seed}-{i:09d}-d", "contact.decided", decided, "lcs")
        rcv |= {"contact_key": k, "channel": rng.choice(channels), "team": "rfs",
                "source_code": rng.choice(codes)}
        dec |= {"contact_key": k, "outcome": rng.choice(outcomes[decided.month])}
        if (pathway := rng.choice(pathways)) is not None:
            dec["pathway"] = pathway
        pair = (_msg("contacts", k, rcv), _msg("contacts", k, dec))
        if i % every == 0:
            sample += pair
            if len(sample) >= 40:  # checked as it goes, before the bulk is sent
                check_contract(sample)
                sample.clear()
        yield from pair
    check_contract(sample)


def check_contract(messages: Iterable[Msg]) -> None:
    """Decode messages exactly as the worker does; raise on the first rejection."""
    taxonomy, now = load_taxonomy(), time.time()
    by_topic = {s.name: Decoder(f, taxonomy) for f, s in event_families(TOPICS).items()}
    for m in messages:
        result = by_topic[m.topic].decode(m.key, m.value, now)
        if isinstance(result, Rejection):
            raise ValueError(f"benchmark event rejected: {result.reason} {result.detail}")
