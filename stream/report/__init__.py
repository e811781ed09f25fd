"""The committee report: fetch every worker's cells, compute, render.

A report is exact only when the cells of every partition of every topic are
counted once: ``fetch_cells`` asks each worker for ``/cells`` and refuses
(``IncompleteReport``) unless the workers' owned partitions cover each topic's
partitions exactly once, none of them is still recovering its state, and all of
them judged and read their state alike (``stream.report.workers``). The report's
definitions and taxonomy come from the workers, not from whoever runs it.

The report tables are computed by ``stream.report.tables`` and rendered by
``stream.report.render``; both are re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stream.report.render import (
    render,
    render_csv,
    render_html,
    render_json,
    render_markdown,
    render_text,
)
from stream.report.tables import (
    Report,
    ReportDefinitions,
    Table,
    Value,
    compute_report,
    nearest_rank,
)
from stream.report.webclient import WebClient
from stream.report.workers import Answer, IncompleteReport, ask, gaps
from stream.state.aggregates import Aggregates, merged

__all__ = [
    "IncompleteReport", "Report", "ReportDefinitions", "Table", "Value", "WorkerCells",
    "compute_report", "fetch_cells", "nearest_rank", "render", "render_csv",
    "render_html", "render_json", "render_markdown", "render_text",
]


@dataclass(frozen=True)
class WorkerCells:
    """Every worker's cells merged, and what they were judged and read under."""

    aggregates: Aggregates
    fingerprint: str
    definitions: Mapping[str, Any]  # the workers' read-time definitions (CallDefinitions.to_json)
    taxonomy: str  # the workers' taxonomy file, as they read it
    #: topic -> partition -> next offset: the events the cells reflect (``data as at``)
    offsets: Mapping[str, Mapping[int, int]] = field(default_factory=dict)


def fetch_cells(urls: Sequence[str], expected: Mapping[str, int], *,
                timeout: float = 10.0, client: WebClient | None = None) -> WorkerCells:
    """Merged cells of all workers; ``expected`` maps each topic to its partition count.

    Raises ``IncompleteReport`` naming every missing or duplicated topic partition,
    every worker still recovering, every worker that did not answer, and workers
    whose fingerprints or read-time definitions differ.
    """
    answers, unreachable = ask(urls, "/cells", timeout, client=client)
    parts: list[Aggregates] = []
    for answer in list(answers):
        try:
            parts.append(_cells(answer.body))
        except (KeyError, TypeError, ValueError) as exc:
            answers.remove(answer)
            unreachable.append(f"{answer.url} (unreadable cells: {type(exc).__name__})")
    found = gaps(answers, unreachable, expected)
    if found:
        raise IncompleteReport(found)
    first = answers[0].body  # all alike (gaps checked it)
    return WorkerCells(merged(parts), answers[0].fingerprint, first["definitions"],
                         first["taxonomy"], _offsets(answers))


def _offsets(answers: Sequence[Answer]) -> dict[str, dict[int, int]]:
    """topic -> partition -> next offset, over every worker's owned partitions."""
    out: dict[str, dict[int, int]] = {}
    for answer in answers:
        for topic, partition, offset in answer.body.get("offsets", ()):
            out.setdefault(str(topic), {})[int(partition)] = int(offset)
    return out


def _cells(body: Mapping[str, Any]) -> Aggregates:
    """A /cells body's cells, once its definitions and taxonomy are there to read."""
    if not isinstance(body["definitions"], dict) or not isinstance(body["taxonomy"], str):
        raise TypeError("definitions or taxonomy missing")
    return Aggregates.from_json(body["cells"])

