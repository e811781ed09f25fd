"""Smoke test of the benchmark harness: ``python -m bench --quick`` runs end to end.

It asserts that every figure is measured and written, not how fast anything is. The
Quix Streams peer is included: its virtualenv is built once into .cache/bench-quix-venv
(a minute or so with a warm pip cache) and reused afterwards.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import FIGURES
from tests.tools import require

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def test_quick_benchmark_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    require("py-spy")  # `make install` puts it in the venv: the profile phase always runs
    res = subprocess.run([sys.executable, "-m", "bench", "--quick", "--profile",
                          "--output", str(out)], cwd=ROOT, capture_output=True, text=True,
                         timeout=1800, check=False)
    assert res.returncode == 0, f"bench failed:\n{res.stderr[-5000:]}"
    results = json.loads((out / "results.json").read_text())
    markdown = (out / "results.md").read_text()
    assert not results["errors"]
    for key, (label, *_rest) in FIGURES.items():
        value = results["figures"][key]
        assert isinstance(value, int | float) and math.isfinite(value), (key, value)
        assert label in markdown
        assert results["verdicts"][key]["value"] == value
    assert results["figures"]["worker_exact"] == 1 and results["figures"]["quix_exact"] == 1
    assert results["figures"]["quix_whole_exact"] == 1  # the worker's figures, from Quix
    tput = results["phases"]["throughput"]
    assert tput["exactness"]["exact"] is True
    # Every run's topics and directories went after it (bench/tidy.py): each side leaves
    # changelogs, Quix its RocksDB too, and a later run must not start among them.
    peers = [*tput["quix_runs"], *tput["quix_plain_runs"], *tput["quix_whole_runs"]]
    assert all(run["tidied"]["topics_deleted"] > 0 for run in [*tput["worker_runs"], *peers])
    assert all(run["tidied"]["bytes_removed"] > 0 for run in peers)
    restart = results["phases"]["recovery"]  # read from the restarted worker's log
    assert restart["checkpoint_records"] > 0  # the warm restart: from the checkpoint
    assert restart["cold"]["restore_s"] is not None and restart["cold"]["records_rebuilt"] > 0
    hop = results["phases"]["hop"]  # the A/B differs by the hop alone
    assert hop["stripped_events"] > 0 and hop["with"]["hops_sent"] >= hop["stripped_events"]
    assert hop["without"]["hops_sent"] == 0
    for fact in ("nproc", "cpu", "memory_gib", "python", "kafka", "aiokafka",
                 "faust-streaming"):
        assert results["machine"][fact]
    assert results["params"]["quixstreams"]
    assert results["phases"]["profile"]["top"], "py-spy profile missing"
    assert "| figure | value | target | vs aiokafka ceiling | vs Quix |" in markdown


def test_the_throughput_replay_alone_still_runs_and_is_exact() -> None:
    # `python -m bench.throughput` is the profiling loop's replay: one worker, the
    # same exactness check as the full benchmark (it exits non-zero when not exact).
    res = subprocess.run([sys.executable, "-m", "bench.throughput", "--events", "2000",
                          "--scale", "5"], cwd=ROOT, capture_output=True, text=True,
                         timeout=600, check=False)
    assert res.returncode == 0, f"bench.throughput failed:\n{res.stderr[-5000:]}"
    figures = json.loads(res.stdout.strip().splitlines()[-1])
    assert figures["events"] == 2000 and figures["events_per_s"] > 0


def test_restarted_figures_must_match_counts_exactly_and_sums_to_the_exposed_decimal():
    from bench.live import differing, same_figures

    sums = ("cspa_contact_completion_workdays_sum", frozenset({("month", "2023-03")}))
    counts = ("cspa_contacts_received", frozenset({("month", "2023-03")}))
    want = {sums: 10925.3931, counts: 3_069_245.0}
    assert same_figures({sums: 10925.3932, counts: 3_069_245.0}, want)  # a rounding flip
    assert not same_figures({sums: 10925.3935, counts: 3_069_245.0}, want)
    assert differing({sums: 10925.3931, counts: 3_069_244.0}, want) == [
        (counts, 3_069_244.0, 3_069_245.0)]
    assert not same_figures({sums: 10925.3931}, want)  # a series missing
