"""Asking every worker, and whether their answers make one whole.

Each worker answers for the partitions it owns. An answer put together from
several is whole only when the owned partitions cover every partition of every
source topic exactly once, no worker is still recovering (or rebalancing), every
worker named answered, and all of them judged their state alike (one fingerprint)
and read it alike (one set of read-time definitions). ``ask`` fetches one path
from every worker; ``gaps`` says what keeps the answers from being whole.
``report`` refuses on any gap (``IncompleteReport``); so does ``due``, unless
asked for a ``--partial`` list, which is then marked with what is missing.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from stream.report.webclient import WebClient

TP = tuple[str, int]
MAX_RESPONSE_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class Answer:
    """One worker's answer: what it owns, whether it has settled, and the body."""

    url: str
    owned: tuple[TP, ...]
    recovering: bool
    fingerprint: str
    body: Mapping[str, Any]


@dataclass
class Gaps:
    """What keeps a set of answers from covering every partition once, settled, alike."""

    missing: dict[str, list[int]] = field(default_factory=dict)  # topic -> partitions
    duplicated: dict[TP, list[str]] = field(default_factory=dict)  # partition -> worker URLs
    unexpected: list[TP] = field(default_factory=list)  # partitions not in the catalogue
    recovering: list[str] = field(default_factory=list)  # worker URLs
    unreachable: list[str] = field(default_factory=list)  # "URL (why)"
    #: fingerprint (or read-time definitions) -> the worker URLs that have it, when they differ
    fingerprints: dict[str, list[str]] = field(default_factory=dict)
    definitions: dict[str, list[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any((self.missing, self.duplicated, self.unexpected, self.recovering,
                    self.unreachable, self.fingerprints, self.definitions))

    def missing_partitions(self) -> str:
        """The missing partitions as ``topic[partition], ...``."""
        return ", ".join(f"{t}[{p}]" for t, ps in sorted(self.missing.items()) for p in ps)

    def problems(self) -> list[str]:
        """One phrase per kind of gap, naming partitions as topic[partition]."""
        out: list[str] = []
        if self.missing:
            out.append("missing partitions: " + self.missing_partitions())
        if self.duplicated:
            out.append("partitions owned by more than one worker: " + "; ".join(
                f"{t}[{p}] ({', '.join(urls)})"
                for (t, p), urls in sorted(self.duplicated.items())))
        if self.unexpected:
            out.append("partitions not in the topic catalogue: " + ", ".join(
                f"{t}[{p}]" for t, p in sorted(self.unexpected)))
        if self.recovering:
            out.append("workers still recovering or rebalancing: " + ", ".join(self.recovering))
        if self.unreachable:
            out.append("workers not answering: " + ", ".join(self.unreachable))
        if self.fingerprints:
            out.append("workers whose state was judged by different rules or settings "
                       "(fingerprints differ): " + _groups(self.fingerprints))
        if self.definitions:
            out.append("workers with different read-time definitions: "
                       + _groups(self.definitions))
        return out

    def advice(self) -> str:
        """What to do about them, for the end of a refusal."""
        if self.fingerprints or self.definitions:
            return ("Give every worker the same rules and settings (CSPA_*), or name only "
                    "the workers of one group")
        if self.unexpected:  # e.g. another app id's repartition topic "{app_id}-children-..."
            return ("Run with the workers' CSPA_APP_ID (their repartition topic is named for "
                    "it), and name only the workers of one app id")
        return ("Name every worker with --workers (or CSPA_WORKERS), or retry once the "
                "group has settled")


def _groups(by_value: Mapping[str, Sequence[str]]) -> str:
    return " vs ".join(", ".join(urls) for urls in by_value.values())  # in the order named


class IncompleteReport(RuntimeError):
    """The workers asked do not hold every partition exactly once, settled and alike."""

    def __init__(self, gaps: Gaps) -> None:
        self.gaps = gaps
        self.missing = gaps.missing
        self.duplicated = gaps.duplicated
        self.recovering = gaps.recovering
        self.unreachable = gaps.unreachable
        self.unexpected = gaps.unexpected
        super().__init__(
            "incomplete report, refusing to compute figures from part of the data: "
            + " | ".join(gaps.problems()) + f". {gaps.advice()}.")


def worker_url(url: str, path: str) -> str:
    """``path`` (``/cells``, ``/due``...) of a worker given its base URL (or that URL)."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"not an http(s) worker URL: {url!r}")
    return url if parsed.path.rstrip("/").endswith(path) else url.rstrip("/") + path


def _get(client: WebClient, url: str, timeout: float) -> Any:
    body = client.get(url, timeout, "application/json", MAX_RESPONSE_BYTES + 1)
    if len(body) > MAX_RESPONSE_BYTES:
        raise ValueError("response too large")
    return orjson.loads(body)


def _answer(url: str, body: Any) -> Answer:
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    lacking = sorted({"owned", "recovering", "fingerprint"} - body.keys())
    if lacking:  # a worker of an older release, or not a worker at all
        raise ValueError(f"the answer has no {', '.join(lacking)}: not a worker of this release")
    recovering = body["recovering"]
    if not isinstance(recovering, bool):
        raise ValueError("'recovering' is not a boolean")
    owned = tuple((str(t), int(p)) for t, p in body["owned"])
    return Answer(url, owned, recovering, str(body["fingerprint"]), body)


def ask(urls: Sequence[str], path: str, timeout: float, query: str = "",
        client: WebClient | None = None) -> tuple[list[Answer], list[str]]:
    """Every worker's answer at ``path``, and "URL (why)" for each that gave none.

    ``client``: the credentials and CA the workers ask for (none by default)."""
    client = client or WebClient()
    answers: list[Answer] = []
    unreachable: list[str] = []
    for url in urls:
        try:
            answers.append(_answer(url, _get(client, worker_url(url, path) + query, timeout)))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            unreachable.append(f"{url} ({_why(exc)})")
    return answers, unreachable


def _why(exc: Exception) -> str:
    """One line: the reason without the traceback (a refused connection, a timeout...)."""
    reason = getattr(exc, "reason", None)  # URLError wraps the socket error
    text = str(reason if reason is not None else exc) or type(exc).__name__
    return f"{type(exc).__name__}: {' '.join(text.split())}"


def gaps(answers: Sequence[Answer], unreachable: Sequence[str],
         expected: Mapping[str, int]) -> Gaps:
    """What keeps ``answers`` from covering ``expected`` (topic -> partition count) once,
    settled and alike; empty (false) when they do."""
    owners: dict[TP, list[str]] = {}
    for answer in answers:
        for tp in answer.owned:
            owners.setdefault(tp, []).append(answer.url)
    return Gaps(
        missing={topic: missed for topic, count in expected.items()
                 if (missed := [p for p in range(count) if (topic, p) not in owners])},
        duplicated={tp: who for tp, who in owners.items() if len(who) > 1},
        unexpected=sorted(tp for tp in owners
                          if tp[0] not in expected or not 0 <= tp[1] < expected[tp[0]]),
        recovering=[a.url for a in answers if a.recovering],
        unreachable=list(unreachable),
        fingerprints=_differing({a.url: a.fingerprint for a in answers}),
        definitions=_differing({a.url: orjson.dumps(a.body["definitions"], option=orjson.
                                                    OPT_SORT_KEYS).decode()
                                for a in answers if "definitions" in a.body}))


def _differing(values: Mapping[str, str]) -> dict[str, list[str]]:
    """value -> URLs, when the workers do not all have the same value; else empty."""
    by_value: dict[str, list[str]] = {}
    for url, value in values.items():
        by_value.setdefault(value, []).append(url)
    return by_value if len(by_value) > 1 else {}
