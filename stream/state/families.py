"""Every figure family, and the facts of any record.

A family is one module of ``stream.state`` (its docstring defines its figures); this
list is what the worker exposes and what the fold asks for a record's facts. Open work
(``timeliness``) and calls waiting now (``calls_waiting``) are families too, but of
state judged against the clock at read time rather than of additive facts.
"""

from __future__ import annotations

from collections.abc import Mapping

from stream.state.audits import AUDITS
from stream.state.calls import CALLS
from stream.state.children import CHILDREN
from stream.state.contacts import CONTACTS
from stream.state.emails import EMAILS
from stream.state.facts import Fact, FactContext, Family
from stream.state.feedback import FEEDBACK
from stream.state.map_enquiries import MAP_ENQUIRIES
from stream.state.quality import QUALITY
from stream.state.records import Record

#: the families of additive facts, in the order their figures are exposed
FAMILIES: tuple[Family, ...] = (CONTACTS, EMAILS, MAP_ENQUIRIES, CALLS, AUDITS, QUALITY,
                                FEEDBACK, CHILDREN)
BY_KIND: Mapping[str, Family] = {family.kind: family for family in FAMILIES}
#: figure -> its label names, for every figure any family's facts carry
LABELS: Mapping[str, tuple[str, ...]] = {
    figure: names for family in FAMILIES for figure, names in family.labels().items()}
#: record kind -> its family's facts (one lookup per record on the hot path)
_FACTS = {family.kind: family.facts for family in FAMILIES}


def facts_of(record: Record | None, ctx: FactContext) -> list[Fact]:
    """All facts one record contributes (none for a missing record)."""
    if record is None:
        return []
    return _FACTS[record["k"]](record, ctx)
