"""Backfill importer round trip (issue 8): shipped CSV samples -> broker -> worker figures.

``python -m stream import`` (a subprocess) sends the samples in topics/samples through
the real broker; the worker's figures must equal what this file computes from the CSV
rows on its own (csv module, the mapping's translation tables, a day-by-day working-day
count), a second import must change nothing, and the samples with errors must leave an
error file naming each bad row and why, without a raw identifier.
"""

from __future__ import annotations

import csv
import re
import tomllib
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests import reportgen as rg
from tests.integration.harness import REKEY_TOPIC, consumed, total, wait_for
from tests.integration.reporting import Pipeline, pipeline, run_cli

pytestmark = pytest.mark.integration

SAMPLES = rg.ROOT / "topics" / "samples"
MAPPINGS = rg.ROOT / "topics" / "mappings"
CONTACTS_MAPPING = MAPPINGS / "annex_a_contacts.toml"
CALLS_MAPPING = MAPPINGS / "telephony_cdr.toml"


# ------------------------------------------------------------ the CSV, read by hand

def _mapping(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _translate(mapping: dict[str, Any], name: str, category: str, raw: str) -> str | None:
    """An export value -> taxonomy code: the mapping's table, else a code or label."""
    want = raw.strip().casefold()
    table = {k.casefold(): v for k, v in mapping.get("values", {}).get(name, {}).items()}
    if want in table:
        return str(table[want])
    for code, entry in rg.TAXONOMY[category].items():
        label = entry["label"] if isinstance(entry, dict) else entry
        if want == code.casefold() or (category != "source_code" and want == label.casefold()):
            return str(code)
    return None


def _time(mapping: dict[str, Any], raw: str) -> datetime | None:
    for fmt in mapping["time"]["formats"]:
        try:
            parsed = datetime.strptime(raw, fmt)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=rg.LONDON)
    return None


def _seconds(raw: str) -> float | None:
    try:
        parts = [float(p) for p in raw.split(":")]
    except ValueError:
        return None
    value = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
    return value if len(parts) <= 3 and 0 <= value <= 86_400 else None


class Bad(Exception):
    """A row the importer must reject; the argument is the column its reason names."""


@dataclass
class Expected:
    """Figures the worker must hold, from the rows of every file imported so far."""

    received: Counter[tuple[str, ...]] = field(default_factory=Counter)
    decided: Counter[tuple[str, ...]] = field(default_factory=Counter)
    completion: dict[tuple[str, ...], list[float]] = field(
        default_factory=lambda: defaultdict(list))
    answered: dict[tuple[str, ...], list[float]] = field(
        default_factory=lambda: defaultdict(list))
    abandoned: dict[tuple[str, ...], list[float]] = field(
        default_factory=lambda: defaultdict(list))
    handled: dict[tuple[str, ...], list[float]] = field(
        default_factory=lambda: defaultdict(list))
    seen: set[tuple[str, ...]] = field(default_factory=set)

    def contacts(self, path: Path) -> dict[int, str]:
        """Count the good rows of a contacts export; returns {bad row: column named}."""
        m = _mapping(CONTACTS_MAPPING)
        col = m["columns"]
        bad: dict[int, str] = {}
        with path.open(newline="", encoding="utf-8") as fh:
            lines = list(csv.reader(fh))
        header = lines[0]
        for number, values in enumerate(lines[1:], start=2):
            try:
                if len(values) != len(header):
                    raise Bad("fields")
                row = dict(zip(header, values, strict=True))
                for name in m["required"]:
                    if not row[col[name]].strip():
                        raise Bad(col[name])
                received = _time(m, row[col["contact_date"]])
                if received is None:
                    raise Bad(col["contact_date"])
                channel = _translate(m, "channel", "channel", row[col["channel"]])
                source = _translate(m, "source", "source_code", row[col["source"]])
                if channel is None or source is None:
                    raise Bad(col["channel"] if channel is None else col["source"])
                outcome_raw, when_raw = row[col["outcome"]], row[col["outcome_date"]]
                outcome = _translate(m, "outcome", "contact_outcome", outcome_raw) \
                    if outcome_raw else None
                if outcome_raw and outcome is None:
                    raise Bad(col["outcome"])
                decided = _time(m, when_raw) if when_raw else None
                if when_raw and decided is None:
                    raise Bad(col["outcome_date"])
                if (outcome is None) != (decided is None):
                    raise Bad(col["outcome_date"] if decided is None else col["outcome"])
                if decided is not None and decided < received:
                    raise Bad(col["outcome_date"])
                pathway_raw = row[col["pathway"]]
                pathway = _translate(m, "pathway", "pathway", pathway_raw) \
                    if pathway_raw else None
                if pathway_raw and pathway is None:
                    raise Bad(col["pathway"])
            except Bad as exc:
                bad[number] = str(exc)
                continue
            identity = ("contact", *(row[col[f]] for f in m["row_key"]))
            assert identity not in self.seen, "the samples do not repeat a contact"
            self.seen.add(identity)
            group = rg.source_group(source)
            self.received[(rg.month_of(received), channel, group, "rfs")] += 1
            if decided is not None and outcome is not None:
                self.decided[(rg.month_of(decided), outcome)] += 1
                self.completion[(rg.month_of(decided), group, pathway or "not_yet_recorded")
                                ].append(round(rg.working_days(received, decided), 4))
        return bad

    def calls(self, path: Path) -> dict[int, str]:
        """Count the good rows of a call-detail export; returns {bad row: column named}."""
        m = _mapping(CALLS_MAPPING)
        col = m["columns"]
        bad: dict[int, str] = {}
        with path.open(newline="", encoding="utf-8") as fh:
            lines = list(csv.reader(fh))
        header = lines[0]
        for number, values in enumerate(lines[1:], start=2):
            try:
                if len(values) != len(header):
                    raise Bad("fields")
                row = dict(zip(header, values, strict=True))
                for name in m["required"]:
                    if not row[col[name]].strip():
                        raise Bad(col[name])
                times = {}
                for name in ("offered", "answered", "abandoned"):
                    raw = row[col[name]]
                    times[name] = _time(m, raw) if raw else None
                    if raw and times[name] is None:
                        raise Bad(col[name])
                queue = _translate(m, "queue", "call_queue", row[col["queue"]])
                if queue is None:
                    raise Bad(col["queue"])
                offered, answered, abandoned = (times["offered"], times["answered"],
                                                times["abandoned"])
                assert offered is not None
                if (answered is None) == (abandoned is None):
                    raise Bad(col["answered"])
                end = answered or abandoned
                assert end is not None
                if end < offered:
                    raise Bad(col["answered"] if answered else col["abandoned"])
                wait = _seconds(row[col["wait"]]) if row[col["wait"]] else (
                    end - offered).total_seconds()
                if wait is None:
                    raise Bad(col["wait"])
                talk = _seconds(row[col["talk"]]) if row[col["talk"]] else None
                if row[col["talk"]] and talk is None:
                    raise Bad(col["talk"])
            except Bad as exc:
                bad[number] = str(exc)
                continue
            identity = ("call", row[col["call_id"]])
            assert identity not in self.seen, "the samples do not repeat a call"
            self.seen.add(identity)
            labels = (rg.month_of(offered), queue)
            (self.answered if answered else self.abandoned)[labels].append(round(wait, 4))
            if answered is not None and talk is not None:
                self.handled[(rg.month_of(answered + timedelta(seconds=talk)), queue)].append(
                    talk)
        return bad


# --------------------------------------------------------------- the worker's side

def cells(p: Pipeline) -> dict[str, dict[tuple[str, ...], tuple[int, float, dict[float, int]]]]:
    """The worker's /cells: figure -> labels -> (count, sum, value multiset)."""
    out: dict[str, dict[tuple[str, ...], tuple[int, float, dict[float, int]]]] = defaultdict(dict)
    for figure, labels, (count, value_sum, values) in p.worker.get_json("/cells")["cells"]:
        out[figure][tuple(labels)] = (count, value_sum, {float(v): n for v, n in values})
    return out


def assert_figures(p: Pipeline, want: Expected) -> None:
    got = cells(p)

    def counts(figure: str) -> dict[tuple[str, ...], int]:
        return {k: v[0] for k, v in got.get(figure, {}).items()}

    assert counts("contacts_received") == dict(want.received)
    assert counts("contacts_decided") == dict(want.decided)
    completion = got.get("contact_completion_working_days", {})
    assert completion.keys() == want.completion.keys()
    for labels, values in want.completion.items():
        assert completion[labels][0] == len(values), labels
        assert completion[labels][1] == pytest.approx(sum(values), abs=1e-3), labels
    for figure, expected in (("calls_answered", want.answered),
                             ("calls_abandoned", want.abandoned)):
        have = got.get(figure, {})
        assert have.keys() == expected.keys(), figure
        for labels, waits in expected.items():
            assert have[labels][0] == len(waits), (figure, labels)
            assert have[labels][2] == dict(Counter(waits)), (figure, labels)
    handled = got.get("call_handle_seconds", {})
    assert handled.keys() == want.handled.keys()
    for labels, talks in want.handled.items():
        assert handled[labels][:2] == (len(talks), pytest.approx(sum(talks))), labels


# ----------------------------------------------------------------------------- tests

@dataclass
class Loaded:
    p: Pipeline
    key_file: Path
    imports: list[tuple[str, int]] = field(default_factory=list)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    tmp = tmp_path_factory.mktemp("importer")
    key_file = tmp / "pseudonym.key"
    key_file.write_text("5e" * 32)
    with pipeline(tmp) as p:
        yield Loaded(p, key_file)


def run_import(loaded: Loaded, sample: str, mapping: Path) -> tuple[int, str, Path, int]:
    """Import one sample with the real CLI; wait until the worker has consumed it.

    Returns (exit status, stderr, error file, events sent)."""
    errors = loaded.p.tmp / f"{sample}.{len(loaded.imports)}.errors.csv"
    before = consumed(loaded.p.worker)
    done = run_cli(["import", str(SAMPLES / sample), "--mapping", str(mapping),
                    "--key-file", str(loaded.key_file), "--errors", str(errors)],
                   CSPA_BROKER=loaded.p.broker.bootstrap)
    match = re.search(r"; (\d+) events out in", done.stderr)
    assert match, done.stderr[-2000:]
    sent = int(match.group(1))
    loaded.imports.append((sample, sent))
    wait_for(lambda: consumed(loaded.p.worker) >= before + sent, 120, f"{sample} consumed")
    loaded.p.settled()
    return done.returncode, done.stderr, errors, sent


def test_import_round_trip_then_reimport_changes_nothing(loaded: Loaded) -> None:
    want = Expected()
    assert want.contacts(SAMPLES / "annex_a_contacts.csv") == {}
    assert want.calls(SAMPLES / "telephony_cdr.csv") == {}
    for sample, mapping in (("annex_a_contacts.csv", CONTACTS_MAPPING),
                            ("telephony_cdr.csv", CALLS_MAPPING)):
        status, stderr, errors, sent = run_import(loaded, sample, mapping)
        assert status == 0, stderr[-2000:]
        assert sent > 0 and " 0 rejected" in stderr
        assert errors.read_text().splitlines() == ["row,reason"]
    assert_figures(loaded.p, want)
    assert sum(want.received.values()) == 200 and sum(want.decided.values()) == 194
    assert sum(len(v) for v in want.answered.values()) == 291
    assert sum(len(v) for v in want.abandoned.values()) == 9

    # The report command reads the same figures (RFS table, November).
    doc = loaded.p.report_json("2019-11")
    flat = rg.flatten(doc)
    offered = sum(len(v) for d in (want.answered, want.abandoned) for v in d.values())
    assert flat[("rfs", "calls", "2019-11")] == offered == 300
    for (month, outcome), n in want.decided.items():
        assert flat[("rfs", outcome, month)] == n, outcome
    assert flat[("contacts_received", "contacts_received", "2019-11")] == 200

    # A second import of the same files: the same event ids, nothing counted twice.
    snapshot = loaded.p.worker.get_json("/cells")["cells"]
    duplicates = source_duplicates(loaded.p.worker.samples())
    resent = 0
    for sample, mapping in (("annex_a_contacts.csv", CONTACTS_MAPPING),
                            ("telephony_cdr.csv", CALLS_MAPPING)):
        status, stderr, _, sent = run_import(loaded, sample, mapping)
        assert status == 0, stderr[-2000:]
        resent += sent
    assert loaded.p.worker.get_json("/cells")["cells"] == snapshot
    assert source_duplicates(loaded.p.worker.samples()) == duplicates + resent
    assert_figures(loaded.p, want)


def source_duplicates(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> float:
    """Duplicates of the events sent: a contact read again sends its hop to the worker's
    repartition topic again (``stream.worker.rekey``), and the children table counts that
    hop's duplicate under its own topic, which is not an event an upstream system sent."""
    return (total(samples, "cspa_events_duplicate_total")
            - total(samples, "cspa_events_duplicate_total", topic=REKEY_TOPIC))


def test_samples_with_errors(loaded: Loaded) -> None:
    want = Expected()
    want.contacts(SAMPLES / "annex_a_contacts.csv")
    want.calls(SAMPLES / "telephony_cdr.csv")
    for sample, mapping, read in (
            ("annex_a_contacts_with_errors.csv", CONTACTS_MAPPING, want.contacts),
            ("telephony_cdr_with_errors.csv", CALLS_MAPPING, want.calls)):
        bad = read(SAMPLES / sample)
        assert len(bad) >= 5, sample
        status, stderr, errors, _ = run_import(loaded, sample, mapping)
        assert status == 1, stderr[-2000:]  # some rows rejected
        with errors.open(newline="", encoding="utf-8") as fh:
            lines = list(csv.reader(fh))
        assert lines[0] == ["row", "reason"]
        reasons = {int(row): reason for row, reason in lines[1:]}
        assert sorted(reasons) == sorted(bad), sample
        for row, column in bad.items():
            assert column in reasons[row], (row, column, reasons[row])
        # No raw identifier, and no value of a bad row, in the error file or the output.
        text = errors.read_text(encoding="utf-8")
        with (SAMPLES / sample).open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        ids = {r[0] for r in rows[1:] if r and r[0]}
        assert len(ids) >= 14
        quoted = {v for n, r in enumerate(rows[1:], start=2) if n in bad for v in r[1:]
                  if len(v) >= 4 and not v.isalpha()}
        for secret in ids | quoted:
            assert secret not in text and secret not in stderr, (sample, "value quoted")
    assert_figures(loaded.p, want)
