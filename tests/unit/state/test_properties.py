"""Properties: the decoder never raises and never echoes input; the aggregation never goes
negative, a rebuild from the records equals the incremental figures, and the fold is
commutative and idempotent, corrections (``recorded_at``) included."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from stream.contract.decoder import REASONS, Decoder, Rejection
from stream.contract.events import FAMILIES, Event, event_type_of, family_types
from stream.contract.taxonomy import load_taxonomy
from stream.settings import PeriodCombination, ServiceLevelVariant
from stream.state import records
from stream.state.aggregates import merged
from stream.state.calls import CallDefinitions
from stream.worker.metrics import FiguresCollector, PipelineMetrics
from stream.worker.processor import CellState, FamilyProcessor
from tests import factories as f
from tests.conftest import LONDON

NOW = datetime(2026, 11, 26, 12, tzinfo=LONDON).timestamp()
T0 = datetime(2025, 3, 28, 9, tzinfo=LONDON)  # a Friday, two days before the clocks change
TAXONOMY = load_taxonomy()
DECODERS = {family: Decoder(family, TAXONOMY) for family in FAMILIES}
MARK = "\u00a7"  # every generated string carries it: a detail holding it echoed input

#: words a detail may legitimately contain: contract field names, event types, error kinds
VOCABULARY = {name for family in FAMILIES for model in family_types(family)
              for name in model.model_fields} | {
    event_type_of(model) for family in FAMILIES for model in family_types(family)}


def _check(result, value):
    """A decode result is an event or a rejection that quotes no input string."""
    assert isinstance(result, Event | Rejection)
    if isinstance(result, Rejection):
        assert result.reason in REASONS
        assert isinstance(result.detail, str)
        for s in set(f.strings(value)):
            if len(s) > 3 and not any(s in word for word in VOCABULARY):
                assert s not in result.detail, (result, s)


# --- the decoder ----------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(FAMILIES)), st.binary(max_size=300),
       st.none() | st.binary(max_size=40))
def test_decoder_never_raises_on_bytes(family, value, key):
    result = DECODERS[family].decode(key, value, NOW)
    try:  # the contract's JSON is UTF-8 only (json.loads of bytes would also take UTF-16/32)
        parsed = json.loads(value.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError included
        parsed = None
    _check(result, parsed)
    if isinstance(result, Rejection) and result.reason in ("invalid_utf8", "invalid_json"):
        assert not value or parsed is None or result.reason == "invalid_utf8"


marked = st.text(max_size=12).map(lambda s: MARK + s)
scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | marked)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(marked, inner, max_size=4), max_leaves=12)
BUILDERS = {
    "contact.received": lambda k, at: f.received(k, at),
    "contact.decided": lambda k, at: f.decided(k, at, "level_3", "information"),
    "call.answered": lambda k, at: f.answered(k, at, 12.0),
    "call.abandoned": lambda k, at: f.abandoned(k, at, 3.0),
    "map_enquiry.opened": lambda k, at: f.map_opened(k, at),
    "map_enquiry.completed": lambda k, at: f.map_completed(k, at, ["police", "gp"], "level_3",
                                                           "tys"),
    "audit.graded": lambda k, at: f.audit(k, at, advisor=f.key("advisor")),
    "learning_review.held": lambda k, at: f.review(k, at),
    "dip_sample.taken": lambda k, at: f.dip_sample(k, at, 5),
    "advisor.joined": lambda k, at: f.advisor(k, at),
}
FAMILY_OF = {"contact": "contacts", "call": "calls", "map_enquiry": "map_enquiries",
             "audit": "audits", "learning_review": "audits", "dip_sample": "audits",
             "advisor": "audits"}


#: near-miss values: naive, future and ancient times, out-of-range numbers, marked codes
SPECIAL = st.sampled_from(["2025-03-28T09:00:00", "2999-01-01T00:00:00+00:00",
                           "1990-06-01T00:00:00+00:00", "2025-13-45T99:00:00+00:00", -1, -0.5,
                           1e9, 86_401, [], {}, 2, "1"]) | marked

TIMES = st.sampled_from(["2025-03-28T09:00:00", "2999-01-01T00:00:00+00:00",
                         "1990-06-01T00:00:00+00:00", "2025-03-30T01:30:00+01:00",
                         "2025-03-28T09:00:00Z", "2025-03-28 09:00:00+00:00"])


@st.composite
def mutated_events(draw):
    """A valid event of some type, then fields dropped, replaced and added at random."""
    event_type = draw(st.sampled_from(sorted(BUILDERS)))
    k = f.key(draw(st.text(max_size=5)))
    at = T0 + timedelta(minutes=draw(st.integers(0, 60 * 24 * 30)))
    event = BUILDERS[event_type](k, at)
    for name in list(event):
        action = draw(st.sampled_from(["keep"] * 8 + ["drop", "replace", "special"]))
        if action == "drop":
            del event[name]
        elif action == "replace":
            event[name] = draw(json_values)
        elif action == "special":
            event[name] = draw(TIMES if name == "occurred_at" else SPECIAL)
    if draw(st.integers(0, 3)) == 0:
        event.update(draw(st.dictionaries(marked, json_values, min_size=1, max_size=2)))
    family = FAMILY_OF[event_type.split(".")[0]]
    key = draw(st.sampled_from([k.encode(), k.encode(), None, (MARK + "x").encode()]))
    return family, key, event


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_events(), st.booleans())
def test_decoder_never_raises_or_echoes_on_json_objects(case, standard):
    family, key, event = case
    if standard:
        try:
            value = orjson.dumps(event)
        except (TypeError, orjson.JSONEncodeError):  # ints beyond 64 bits
            value = json.dumps(event).encode()
    else:  # NaN, Infinity and non-ASCII escapes as a lax producer writes them
        value = json.dumps(event, ensure_ascii=True, allow_nan=True).encode()
    result = DECODERS[family].decode(key, value, NOW)
    _check(result, event)
    if key is not None:
        assert key.decode(errors="replace") not in getattr(result, "detail", "")


# --- the aggregation ------------------------------------------------------------------------

def _op_events():
    """One step: a valid event of a few small cases, or an invalid message."""
    valid = st.tuples(st.just("valid"), st.integers(0, 5),
                      st.sampled_from(["rcv", "dec", "dec_fix", "prog_eh", "alloc", "ans",
                                       "abn"]),
                      st.integers(-48, 400), st.integers(0, 3), st.integers(0, 90))
    invalid = st.tuples(st.just("invalid"), st.integers(0, 5),
                        st.sampled_from(["junk", "category", "mismatch", "negative"]),
                        st.integers(0, 400), st.just(0), st.just(0))
    return st.one_of(valid, valid, invalid)


OUTCOMES = ["level_1", "lado", "map", "level_4"]


def _message(op):
    kind, who, what, hours, variant, wait = op
    contact, call = f.key(f"prop-contact-{who}"), f.key(f"prop-call-{who}")
    at = T0 + timedelta(hours=hours)
    if kind == "invalid":
        if what == "junk":
            return "contacts", contact, b"{" + MARK.encode() + b"junk"
        if what == "category":
            return "contacts", contact, orjson.dumps(f.received(contact, at, "fax"))
        if what == "mismatch":
            return "contacts", f.key("other").encode(), orjson.dumps(f.received(contact, at))
        return "calls", call, orjson.dumps(f.answered(call, at, -1.0))
    event = {
        "rcv": lambda: f.received(contact, at, ["phone", "email"][variant % 2],
                                  ["6", "2A", "9"][variant % 3]),
        "dec": lambda: f.decided(contact, at, OUTCOMES[variant], [None, "information"][
            variant % 2]),
        # a correction recorded ``wait`` hours after its business time (0: not a correction)
        "dec_fix": lambda: dict(f.decided(contact, at, OUTCOMES[variant], "map_enquiry"),
                                recorded_at=(at + timedelta(hours=wait)).isoformat()),
        "prog_eh": lambda: f.base("contact.progressed", at, contact_key=contact,
                                  destination="early_help"),
        "alloc": lambda: f.base("early_help.allocated", at, contact_key=contact),
        "ans": lambda: f.answered(call, at, float(wait)),
        "abn": lambda: f.abandoned(call, at, float(wait)),
    }[what]()
    # Same id for the same (case, type, time, variant): a re-delivery is a true duplicate.
    event["event_id"] = f"p-{who}-{what}-{hours + 48:04d}-{variant}-{wait}"
    family = "calls" if what in ("ans", "abn") else "contacts"
    return family, (call if family == "calls" else contact), orjson.dumps(event)


def _partition(key) -> int:
    return sum(key.encode() if isinstance(key, str) else key) % 3


def _cells_ok(state):
    for (topic, partition), agg in state.parts.items():
        for cell_key, cell in agg.cells.items():
            assert cell.count > 0, (topic, partition, cell_key, cell)
            assert cell.total >= 0, (topic, partition, cell_key, cell)
            assert all(n > 0 and v >= 0 for v, n in cell.values.items())


def _run(ops, ctx, batch: int | None, probe=None):
    """Feed the ops one by one, or in batches as the worker's agent does; return
    state, tables. A batch folds into ``pending``/``before``, then settles (figures
    and open work counted once per changed case) and writes each record once.
    ``probe(state, tables)`` runs wherever a scrape could: between batches."""
    state = CellState()
    metrics = PipelineMetrics(CollectorRegistry())
    procs = {fam: FamilyProcessor("t." + fam, Decoder(fam, TAXONOMY), ctx, state, metrics)
             for fam in ("contacts", "calls")}
    tables: dict[str, dict] = {"contacts": {}, "calls": {}}
    # family -> partition -> (pending, before), as TopicAgent keeps them per batch
    open_batches: dict[str, dict[int, tuple[dict, dict]]] = {"contacts": {}, "calls": {}}

    def settle_all() -> None:
        for fam, parts in open_batches.items():
            for partition, (pending, before) in parts.items():
                procs[fam].settle(partition, pending, before)
                tables[fam].update({k: records.dumps(r) for k, r in pending.items()})
            parts.clear()
        _cells_ok(state)
        if probe is not None:
            probe(state, tables)

    for i, op in enumerate(ops):
        family, key, value = _message(op)
        key = key.encode() if isinstance(key, str) else key
        partition = _partition(key)
        if batch:
            pending, before = open_batches[family].setdefault(partition, ({}, {}))
            result = procs[family].fold(key, value, partition, tables[family], NOW,
                                        pending, before)
        else:
            result = procs[family].process(key, value, partition, None, tables[family],
                                           now=NOW)
            _cells_ok(state)
            if probe is not None:
                probe(state, tables)
        if op[0] == "invalid":
            assert isinstance(result, Rejection)
        if batch and (i + 1) % batch == 0:
            settle_all()
    settle_all()
    return state, tables


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_op_events(), max_size=40), st.sampled_from([None, 1, 3, 7]))
def test_aggregation_never_negative_and_rebuild_equals_incremental(ctx, ops, batch):
    state, tables = _run(ops, ctx, batch)
    plain, plain_tables = _run(ops, ctx, None)
    assert tables == plain_tables  # batching changes nothing
    for fam, table in tables.items():
        topic = "t." + fam
        fresh = CellState()
        fresh.rebuild(topic, table.items(), {0, 1, 2}, ctx)
        _cells_ok(fresh)
        for p in range(3):
            assert fresh.part(topic, p).to_json() == state.part(topic, p).to_json(), (fam, p)
            assert plain.part(topic, p).to_json() == state.part(topic, p).to_json(), (fam, p)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_op_events(), max_size=30), st.randoms(use_true_random=False))
def test_any_delivery_order_and_duplicates_give_the_same_records_and_figures(ctx, ops, rng):
    shuffled = ops + [op for op in ops if rng.random() < 0.3]  # re-deliveries
    rng.shuffle(shuffled)
    state, tables = _run(ops, ctx, None)
    again, again_tables = _run(shuffled, ctx, 3)
    decode = {fam: {k: orjson.loads(v) for k, v in t.items()} for fam, t in tables.items()}
    assert decode == {fam: {k: orjson.loads(v) for k, v in t.items()}
                      for fam, t in again_tables.items()}
    for fam in tables:
        for p in range(3):
            topic = "t." + fam
            assert again.part(topic, p).to_json() == state.part(topic, p).to_json(), (fam, p)


#: versions of one decision: (business hour, recorded delay in hours or None, id)
versions = st.lists(st.tuples(st.integers(0, 6), st.none() | st.integers(0, 6),
                              st.sampled_from(["e-a", "e-b", "e-c"])), min_size=1, max_size=6,
                    unique=True)


@settings(max_examples=200, deadline=None)
@given(versions, st.randoms(use_true_random=False))
def test_a_slot_keeps_the_latest_recorded_version_whatever_the_order(vs, rng):
    def slot(version):
        hour, delay, eid = version
        at = T0 + timedelta(hours=hour)
        event = f.decided(f.key("v"), at, "map", "information")
        event["event_id"] = f"version-{eid}-{hour}-{delay}"  # one id names one version
        if delay is not None:
            event["recorded_at"] = (at + timedelta(hours=delay)).isoformat()
        decoded = DECODERS["contacts"].decode(f.key("v").encode(), orjson.dumps(event), NOW)
        return decoded, records.slot_of(decoded)[2]

    def recorded_key(event):  # the documented rule, computed from the events themselves
        recorded = event.recorded_at or event.occurred_at
        return recorded.timestamp(), event.occurred_at.timestamp(), event.event_id

    built = [slot(v) for v in vs]
    arrivals = built + [rng.choice(built) for _ in range(3)]
    rng.shuffle(arrivals)
    record = None
    for _, value in arrivals:
        record = records.fold(record, "contact", "dec", value, 0) or record
    winner = max(built, key=lambda pair: recorded_key(pair[0]))
    assert record is not None and record["dec"] == winner[1]
    assert record["dec"][0] == winner[0].timestamp  # business time of the kept version


def _exposition(current):
    """The exposition's lines, sorted: the order of series within a family may differ."""
    registry = CollectorRegistry()
    registry.register(current)
    return sorted(generate_latest(registry).decode().splitlines())


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_op_events(), max_size=40), st.sampled_from([None, 3]),
       st.randoms(use_true_random=False))
def test_the_kept_merge_and_its_buckets_equal_a_fresh_merge(ctx, ops, batch, rng):
    # CellState.current keeps its merge between scrapes and FiguresCollector its
    # buckets per cell: whatever happens between two scrapes (events, another set of
    # owned partitions, cells rebuilt from the records), both equal starting afresh.
    tps = [("t." + fam, p) for fam in ("contacts", "calls") for p in range(3)]
    owned: set = set(tps)
    defs = CallDefinitions(20.0, ServiceLevelVariant.OFFERED, 5.0,
                           PeriodCombination.RATIO_OF_SUMS)
    when = datetime.fromtimestamp(NOW, LONDON)
    kept = FiguresCollector(lambda: (state_of[0].current(owned), {}), defs, 0, lambda: when)
    state_of: list = []

    def probe(state, tables):
        state_of[:] = [state]
        if rng.random() < 0.2:  # a rebalance: another set of owned partitions
            owned.clear()
            owned.update(tp for tp in tps if rng.random() < 0.7)
        if rng.random() < 0.1:  # a restart: one topic's cells rebuilt from its records
            fam = rng.choice(["contacts", "calls"])
            state.rebuild("t." + fam, tables[fam].items(), {0, 1, 2}, ctx)
        fresh = merged(agg for tp, agg in state.parts.items() if tp in owned)
        assert state.current(owned).to_json() == fresh.to_json()
        afresh = FiguresCollector(lambda: (fresh, {}), defs, 0, lambda: when)
        assert _exposition(kept) == _exposition(afresh)

    _run(ops, ctx, batch, probe)
