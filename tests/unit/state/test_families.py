"""Figure families (stream/state/families.py): every fact declared, every slot read by name.

The slots' field names (stream/state/records.py) are checked against the events they come
from, and each family's declared label names against the facts its records really give:
the report and the worker read cells by those names.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest

from stream.contract.decoder import Decoder
from stream.contract.events import Event
from stream.contract.quotes import new_key, seal
from stream.settings import Settings
from stream.state import children, records
from stream.state.facts import fact_context
from stream.state.families import BY_KIND, FAMILIES, LABELS, facts_of
from tests import factories as f
from tests.conftest import LONDON

T0 = datetime(2019, 8, 5, 10, 0, tzinfo=LONDON)  # a Monday
NOW = (T0 + timedelta(days=30)).timestamp()
K = f.key("case")
NO_CHILD = f.key("nochild")


def _events() -> list[tuple[str, dict[str, Any]]]:
    """(family, event) of every event type, with every optional field given."""
    later = T0 + timedelta(days=1)
    return [
        ("contacts", f.received(K, T0, channel="phone", source_code="2B", team="rfs",
                                child=f.key("child"))),
        ("contacts", f.received(NO_CHILD, T0)),
        ("contacts", f.base("contact.progressed", T0 + timedelta(days=1), contact_key=NO_CHILD,
                            destination="childrens_social_care")),
        ("contacts", f.decided(K, later, outcome="level_3", pathway="information")),
        ("contacts", f.base("contact.progressed", later, contact_key=K,
                            destination="early_help")),
        ("contacts", f.base("contact.progressed", later, contact_key=K,
                            destination="childrens_social_care")),
        ("contacts", f.base("early_help.allocated", later + timedelta(days=2), contact_key=K)),
        ("contacts", f.base("email.resolved", T0, enquiry_key=K)),
        ("map_enquiries", f.map_opened(K, T0)),
        ("map_enquiries", f.map_completed(K, later, ["police", "gp", "police"],
                                          outcome="level_3", service="tys")),
        ("map_enquiries", f.partner_requested(K, T0 + timedelta(hours=1), "police")),
        ("map_enquiries", f.partner_responded(K, T0 + timedelta(hours=3), "police")),
        ("map_enquiries", f.partner_requested(K, T0, "gp")),  # answered late: 7 office hours
        ("map_enquiries", f.partner_responded(K, later, "gp")),
        ("map_enquiries", f.partner_requested(K, later, "education")),  # never answered
        ("calls", f.queued(K, T0, queue="rfs")),
        ("calls", f.answered(K, T0 + timedelta(seconds=30), 30.0, queue="rfs")),
        ("calls", f.base("call.ended", T0 + timedelta(minutes=5), call_key=K, queue="rfs",
                         handle_seconds=270.0, source_system="telephony")),
        ("calls", f.abandoned(f.key("other"), T0, 12.0, queue="rfs")),
        ("audits", f.audit(K, later, team="ehh", grade="good", advisor=f.key("advisor"))),
        ("audits", f.review(K, later, team="ehh", theme="consent")),
        ("audits", f.dip_sample(f.key("dip"), later, 7, role="assistant_director")),
        ("audits", f.advisor(f.key("advisor"), T0 - timedelta(days=40), team="rfs")),
        ("audits", f.advisor(f.key("advisor"), later, team="rfs", joined=False)),
        ("feedback", f.feedback(K, T0, from_whom="partner_agency", agency="police",
                                kind="compliment", channel="phone")),
        ("feedback", f.quote_approved(K, later, seal("Thank you", new_key(), K),
                                      attribution="police_colleagues")),
        ("feedback", f.withdrawn(K, later + timedelta(days=3))),
        ("feedback", f.feedback(f.key("complaint"), T0, kind="complaint")),
        ("feedback", f.complaint_extended(f.key("complaint"), later)),
        ("feedback", f.complaint_responded(f.key("complaint"), later + timedelta(days=14))),
    ]


def _decoded(taxonomy) -> list[Event]:
    out = []
    for family, event in _events():
        case = next(event[k] for k in ("contact_key", "enquiry_key", "call_key", "audit_key",
                                                "review_key", "sample_key", "advisor_key",
                                                "feedback_key")
                    if k in event)
        decoded = Decoder(family, taxonomy).decode(case.encode(), orjson.dumps(event), NOW)
        assert isinstance(decoded, Event), decoded
        out.append(decoded)
    return out


def _records(taxonomy) -> dict[str, records.Record]:
    table: dict[str, records.Record] = {}
    for event in _decoded(taxonomy):
        kind, slot, value = records.slot_of(event)
        key = records.table_key(kind, event.key)
        table[key] = records.fold(table.get(key), kind, slot, value, 0) or table[key]
    hop = children.Hop(K, [T0.timestamp(), [1.0, 1.0, "e1"], "police"],
                       [T0.timestamp() + 60, [2.0, 2.0, "e2", 1.0, 1.0, "e1"], "police"])
    table["child:c"] = children.merge(None, hop, 0, 92.0, fact_context(Settings()))[0] or {}
    return table


def test_every_event_type_has_a_slot_and_the_slot_names_its_fields(taxonomy) -> None:
    seen = set()
    for event in _decoded(taxonomy):
        kind, key, value = records.slot_of(event)
        cls, _ = records.SLOTS[event.event_type]
        seen.add(event.event_type)
        assert (cls.KIND, key.startswith(cls.KEY)) == (kind, True)
        assert cls.occurred_at(value) == event.timestamp
        own = [k for k in reversed(cls.__mro__)  # a slot class and its bases' fields
               if issubclass(k, records.SlotFields) and k is not records.SlotFields]
        fields = [n for k in own for n in vars(k) if not n.isupper() and not n.startswith("_")
                  and n not in ("key", "slots")]
        for name in fields:  # every named field reads the event's field of that name
            want = getattr(event, "agencies_consulted" if name == "agencies" else name)
            got = getattr(cls, name)(value)
            assert got == (sorted(set(want)) if name == "agencies" else want), name
        # a trailing optional field is left out of the slot when the event has none
        optional = len({"child_key", "advisor_key"} & set(fields))
        assert 2 + len(fields) - optional <= len(value) <= 2 + len(fields), (
            f"{event.event_type}: a field with no name")
    assert seen == set(records.SLOTS)


def test_every_fact_is_declared_with_its_label_names(taxonomy, ctx) -> None:
    emitted: dict[str, int] = {}
    for record in _records(taxonomy).values():
        for figure, labels, _ in facts_of(record, ctx):
            emitted[figure] = len(labels)
    assert {fig: len(LABELS[fig]) for fig in emitted} == emitted
    # nothing declared that no record gives (a figure renamed in one place only)
    assert set(LABELS) == set(emitted)


def test_each_kind_one_family_and_each_metric_one_figure() -> None:
    assert set(BY_KIND) == {"contact", "email", "map", "call", "audit", "qa", "feedback",
                             "child"}
    metrics = [spec.metric for family in FAMILIES
               for spec in (*family.counts, *family.distributions, *family.recent)]
    assert len(metrics) == len(set(metrics))
    for family in FAMILIES:
        for spec in (*family.counts, *family.distributions):
            assert spec.labels[0] == "month", spec.figure  # the report's month axis


def test_a_type_without_a_slot_is_refused(taxonomy) -> None:
    class Unheard(Event):  # a contract model records were never taught
        pass

    first = _decoded(taxonomy)[0]
    with pytest.raises(TypeError, match="no record slot for Unheard"):
        records.slot_of(Unheard.model_construct(**dict(first)))


def test_a_type_extending_a_known_one_slots_as_it(taxonomy) -> None:
    # A later release's model with one more optional field (an additive change, as
    # tests/integration/newfield_worker.py builds) folds into the same slot as the type
    # it extends, field for field.
    for event in _decoded(taxonomy):
        extended = type(f"Later{type(event).__name__}", (type(event),), {})
        later = extended.model_construct(**dict(event))
        assert records.slot_of(later) == records.slot_of(event), type(event).__name__
