"""The feedback log import end to end: ``python -m stream import`` (a subprocess) sends
topics/samples/feedback_log.csv through a real broker; the worker's feedback figures must
equal what this file counts from the CSV rows on its own (csv module, the mapping's
tables, the taxonomy's codes and labels). A copy with bad rows appended names each bad row
and why in the error file, and its good rows (the same ids) change nothing."""

from __future__ import annotations

import csv
import re
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from tests import reportgen as rg
from tests.integration.harness import consumed, wait_for
from tests.integration.reporting import Pipeline, pipeline, run_cli
from tests.integration.test_importer_roundtrip import _time, _translate

pytestmark = pytest.mark.integration

SAMPLE = rg.ROOT / "topics" / "samples" / "feedback_log.csv"
MAPPING = rg.ROOT / "topics" / "mappings" / "feedback_log.toml"


def expected() -> Counter[tuple[str, ...]]:
    """(month, from_whom, agency or "none", kind) -> feedback received, from the sample."""
    m = tomllib.loads(MAPPING.read_text(encoding="utf-8"))
    col, out = m["columns"], Counter[tuple[str, ...]]()
    with SAMPLE.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            at = _time(m, row[col["received"]])
            who = _translate(m, "from_whom", "feedback_from", row[col["from_whom"]])
            agency = _translate(m, "agency", "agency", row[col["agency"]]) \
                if row[col["agency"]] else "none"
            kind = _translate(m, "kind", "feedback_kind", row[col["kind"]])
            assert at and who and agency and kind, row  # the sample has no bad row
            out[(rg.month_of(at), who, agency, kind)] += 1
    return out


def _import(p: Pipeline, path: Path, key_file: Path, errors: Path,
            mapping: Path = MAPPING) -> tuple[int, str]:
    """``python -m stream import`` (exit status, stderr), once the worker has taken it all."""
    before = consumed(p.worker)
    done = run_cli(["import", str(path), "--mapping", str(mapping), "--key-file",
                    str(key_file), "--errors", str(errors)], CSPA_BROKER=p.broker.bootstrap)
    match = re.search(r"; (\d+) events out in", done.stderr)
    assert match, done.stderr[-2000:]
    wait_for(lambda: consumed(p.worker) >= before + int(match.group(1)), 120, "consumed")
    p.settled()
    return done.returncode, done.stderr


def _received(p: Pipeline) -> dict[tuple[str, ...], int]:
    return {tuple(labels): count for figure, labels, (count, _, _) in
            p.worker.get_json("/cells")["cells"] if figure == "feedback_received"}


def test_feedback_log_imports_and_bad_rows_are_named(tmp_path: Path) -> None:
    key_file = tmp_path / "pseudonym.key"
    key_file.write_text("5e" * 32)
    want = expected()
    with pipeline(tmp_path) as p:
        status, stderr = _import(p, SAMPLE, key_file, tmp_path / "ok.errors.csv")
        assert status == 0 and " 0 rejected" in stderr, stderr[-2000:]
        assert (tmp_path / "ok.errors.csv").read_text().splitlines() == ["row,reason"]
        assert _received(p) == dict(want) and sum(want.values()) == 30

        bad = tmp_path / "with_errors.csv"
        bad.write_text(SAMPLE.read_text() + "FB-19-9001,02/09/2019 10:00,Parent,Police,"
                       "Compliment,Email,,,x\nFB-19-9002,03/09/2019 10:00,Neighbour,,Comment,"
                       "Email,,,x\n")
        status, stderr = _import(p, bad, key_file, tmp_path / "bad.errors.csv")
        assert status == 1
        rows = list(csv.reader((tmp_path / "bad.errors.csv").open()))
        assert rows == [["row", "reason"],
                        ["32", "Agency: set for feedback not from a partner agency"],
                        ["33", rows[2][1]]]
        assert rows[2][1].startswith("From: value not in [values.from_whom]")
        assert "FB-19" not in (tmp_path / "bad.errors.csv").read_text() + stderr
        assert _received(p) == dict(want)  # the good rows again: nothing counted twice
