"""The committee report: fetch every worker's cells, compute, render.

A report is exact only when the cells of every partition of every topic are
counted once: ``fetch_cells`` asks each worker for ``/figures`` and refuses
(``IncompleteReport``) unless the workers' owned partitions cover each topic's
partitions exactly once and none of them is still recovering its state.

The figures are computed by ``stream.report.figures`` and rendered by
``stream.report.render``; both are re-exported here.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from stream.report.figures import (
    Report,
    ReportDefinitions,
    Table,
    Value,
    compute_report,
    nearest_rank,
)
from stream.report.render import (
    render,
    render_csv,
    render_html,
    render_json,
    render_markdown,
    render_text,
)
from stream.state.aggregates import Aggregates, merged

__all__ = [
    "IncompleteReport", "Report", "ReportDefinitions", "Table", "Value", "compute_report",
    "fetch_cells", "nearest_rank", "render", "render_csv", "render_html", "render_json",
    "render_markdown", "render_text",
]

TP = tuple[str, int]
MAX_RESPONSE_BYTES = 512 * 1024 * 1024


class IncompleteReport(RuntimeError):
    """The workers asked do not hold every partition exactly once, settled."""

    def __init__(self, missing: Mapping[str, Sequence[int]],
                 duplicated: Mapping[TP, Sequence[str]], recovering: Sequence[str],
                 unreachable: Sequence[str], unexpected: Sequence[TP]) -> None:
        self.missing = {t: list(ps) for t, ps in missing.items()}
        self.duplicated = {tp: list(urls) for tp, urls in duplicated.items()}
        self.recovering = list(recovering)
        self.unreachable = list(unreachable)
        self.unexpected = list(unexpected)
        problems: list[str] = []
        if self.missing:
            problems.append("missing partitions: " + "; ".join(
                f"{t} {ps}" for t, ps in sorted(self.missing.items())))
        if self.duplicated:
            problems.append("partitions owned by more than one worker: " + "; ".join(
                f"{t}[{p}] ({', '.join(urls)})"
                for (t, p), urls in sorted(self.duplicated.items())))
        if self.unexpected:
            problems.append("partitions not in the topic catalogue: " + ", ".join(
                f"{t}[{p}]" for t, p in sorted(self.unexpected)))
        if self.recovering:
            problems.append("workers still recovering: " + ", ".join(self.recovering))
        if self.unreachable:
            problems.append("workers not answering: " + ", ".join(self.unreachable))
        super().__init__(
            "incomplete report, refusing to compute figures from part of the data: "
            + " | ".join(problems)
            + ". Name every worker with --workers, or retry once the group has settled.")


def figures_url(url: str) -> str:
    """The /figures address of a worker given its base URL (or the /figures URL itself)."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"not an http(s) worker URL: {url!r}")
    return url if parsed.path.rstrip("/").endswith("/figures") else url.rstrip("/") + "/figures"


def _get(url: str, timeout: float) -> Any:
    request = urllib.request.Request(figures_url(url), headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read(MAX_RESPONSE_BYTES + 1)
    if len(body) > MAX_RESPONSE_BYTES:
        raise ValueError("response too large")
    return orjson.loads(body)


def _parse(body: Any) -> tuple[list[TP], bool, Aggregates]:
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    owned = [(str(t), int(p)) for t, p in body["owned"]]
    recovering = body["recovering"]
    if not isinstance(recovering, bool):
        raise ValueError("'recovering' is not a boolean")
    return owned, recovering, Aggregates.from_json(body["cells"])


def fetch_cells(urls: Sequence[str], expected: Mapping[str, int], *,
                timeout: float = 10.0) -> Aggregates:
    """Merged cells of all workers; ``expected`` maps each topic to its partition count.

    Raises ``IncompleteReport`` naming every missing or duplicated topic partition,
    every worker still recovering and every worker that did not answer.
    """
    owners: dict[TP, list[str]] = {}
    parts: list[Aggregates] = []
    recovering: list[str] = []
    unreachable: list[str] = []
    for url in urls:
        try:
            owned, busy, cells = _parse(_get(url, timeout))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            unreachable.append(f"{url} ({type(exc).__name__}: {exc})")
            continue
        if busy:
            recovering.append(url)
        for tp in owned:
            owners.setdefault(tp, []).append(url)
        parts.append(cells)
    missing = {topic: missed for topic, count in expected.items()
               if (missed := [p for p in range(count) if (topic, p) not in owners])}
    duplicated = {tp: who for tp, who in owners.items() if len(who) > 1}
    unexpected = sorted(tp for tp in owners
                        if tp[0] not in expected or not 0 <= tp[1] < expected[tp[0]])
    if missing or duplicated or unexpected or recovering or unreachable:
        raise IncompleteReport(missing, duplicated, recovering, unreachable, unexpected)
    return merged(parts)
