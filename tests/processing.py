"""Messages through the worker's own family processors, without a broker: the cells a
worker owning every partition would hold (for comparing with tests/reportgen)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry

from stream.contract.decoder import FAMILIES, Decoder
from stream.contract.taxonomy import Taxonomy
from stream.state.aggregates import Aggregates
from stream.state.facts import FactContext
from stream.state.timeliness import OpenWork
from stream.worker.metrics import PipelineMetrics
from stream.worker.processor import CellState, FamilyProcessor
from tests.reportgen.workdays import TOPICS


def processed(messages: Iterable[Any], taxonomy: Taxonomy, ctx: FactContext) -> Aggregates:
    """The aggregates of ``messages`` (topic, key, value) processed in the order given."""
    state, work = CellState(), OpenWork(ctx.rules, ctx.calendar)
    metrics = PipelineMetrics(CollectorRegistry())
    processors = {topic: (FamilyProcessor(topic, Decoder(family, taxonomy), ctx, state,
                                          metrics, work), {})
                  for family, topic in TOPICS.items() if family in FAMILIES}
    for m in messages:
        processor, table = processors[m.topic]
        processor.process(m.key, m.value, 0, None, table, now=2e9)
    return state.current(set(state.parts))
