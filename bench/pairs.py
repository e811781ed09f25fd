"""Throughput as interleaved pairs: worker, Quix, worker, Quix... each after the quiet wait.

Quix runs three times a round, each after its quiet wait: checking every event by the
worker's contract before its fold, as the worker does (the pair, the verdict's), then
without the check (``plain``: the peer of the runs before 2026-12-07, its ratio beside),
then doing the worker's whole work (``whole``: the worker's own fold, every figure and
open work, bench/same_fold.py; its ratio and pairs won beside). The first two compute
four figure families; the worker and the third compute them all.

Each run replays the whole backlog into a fresh consumer group with empty state. Both
sides' periodic work falls inside their measured windows because the intervals are set,
not left at their defaults: the worker checkpoints every ``periodic`` seconds
(``CSPA_CHECKPOINT_SECONDS``; 60 s by default, longer than a replay) and Quix commits
every ``periodic`` seconds (``commit_interval``, which is 5 s by default). Each run is
checked exact against the independent figures; a worker that is not raises.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench import expected, live, peer_quix, replay
from bench.expected import Figures

#: pairs run (the verdict is "ahead" only when the worker wins every one)
PAIRS = 3


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, least and greatest of ``values``."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def worker_run(bootstrap: str, tmp: Path, i: int, total: int, want: Figures,
               timeout: float, periodic: float, app: str = "bench-tp") -> dict[str, Any]:
    """The ``i``-th worker replay (its own app id ``<app>-<i>`` and data directory), then
    stopped."""
    worker, sampler, tp = replay.throughput(
        bootstrap, tmp, f"{app}-{i}", total, want, timeout,
        env={"CSPA_CHECKPOINT_SECONDS": f"{periodic:g}"})
    sampler.stop()
    tp["peak_rss_bytes"] = max(tp["peak_rss_bytes"], sampler.peak())
    worker.stop()
    tp["stalls"] = live.stall_summary(worker)  # the fold's batches holding the loop
    return tp


def quix_run(python: Path, bootstrap: str, tmp: Path, i: int, total: int, want: Figures,
             topics: list[str], timeout: float, periodic: float,
             contract: bool = True, whole: bool = False) -> dict[str, Any]:
    """The ``i``-th Quix replay (its own group and state directory), checked exact;
    ``contract``: every event checked by the worker's contract first; ``whole``: checked
    and folded as the worker does, its figures checked as the worker's are."""
    name = f"quix-whole-{i}" if whole else f"quix-{i}" if contract else f"quix-plain-{i}"
    peer = peer_quix.run_peer(python, bootstrap, total, topics, tmp / name, f"bench-{name}",
                              timeout, commit_seconds=periodic, contract=contract,
                              whole=whole)
    checked = expected.WORKER_FIGURES if whole else expected.PEER_FIGURES
    problems = expected.compare(want, peer.pop("figures"), checked)
    peer["exact"], peer["differences"] = not problems, problems[:20]
    return peer


def run_pairs(bootstrap: str, tmp: Path, total: int, want: Figures, timeout: float,
              periodic: float, quix: tuple[Path, list[str]] | None,
              quiet: Callable[[str], None],
              tidy: Callable[[Path], dict[str, Any]] | None = None) -> dict[str, Any]:
    """``PAIRS`` rounds of (worker, Quix, Quix plain, Quix whole); without Quix, the
    worker's runs. ``tidy``: called with each run's work directory after it (its topics
    and directories removed, ``bench.tidy``); what it removed goes in the run's result."""
    workers: list[dict[str, Any]] = []
    peers: list[dict[str, Any]] = []
    plain: list[dict[str, Any]] = []
    whole: list[dict[str, Any]] = []

    def after(run: dict[str, Any], workdir: Path) -> dict[str, Any]:
        if tidy is not None:
            run["tidied"] = tidy(workdir)
        return run

    for i in range(1, PAIRS + 1):
        quiet(f"throughput_worker_{i}")
        workers.append(after(worker_run(bootstrap, tmp, i, total, want, timeout, periodic),
                             tmp / f"bench-tp-{i}"))
        if quix is not None:
            quiet(f"throughput_quix_{i}")
            peers.append(after(quix_run(quix[0], bootstrap, tmp, i, total, want, quix[1],
                                        timeout, periodic), tmp / f"quix-{i}"))
            quiet(f"throughput_quix_plain_{i}")
            plain.append(after(quix_run(quix[0], bootstrap, tmp, i, total, want, quix[1],
                                        timeout, periodic, contract=False),
                               tmp / f"quix-plain-{i}"))
            quiet(f"throughput_quix_whole_{i}")
            whole.append(after(quix_run(quix[0], bootstrap, tmp, i, total, want, quix[1],
                                        timeout, periodic, whole=True),
                               tmp / f"quix-whole-{i}"))
    return summary(workers, peers, periodic, plain, whole)


def summary(workers: list[dict[str, Any]], peers: list[dict[str, Any]],
            periodic: float, plain: list[dict[str, Any]] | None = None,
            whole: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Each side's and the ratio's median and range, and the pairs the worker won; beside
    them, when they ran, the ratio to the plain peer (no contract check) and to the peer
    doing the worker's whole work (with the pairs won against it)."""
    rates = [w["events_per_s"] for w in workers]
    out: dict[str, Any] = {"periodic_seconds": periodic, "worker_runs": workers,
                           "worker": spread(rates), "quix_runs": peers}
    if peers:
        quix = [p["events_per_s"] for p in peers]
        ratios = [w / q for w, q in zip(rates, quix, strict=True)]
        out |= {"quix": spread(quix), "ratio": spread(ratios),
                "pairs": [{"worker": w, "quix": q, "ratio": r}
                          for w, q, r in zip(rates, quix, ratios, strict=True)],
                "won": sum(r > 1 for r in ratios),
                "quix_exact": all(p["exact"] for p in peers)}
    if peers and plain:
        out |= _beside("plain", rates, plain)
    if peers and whole:
        out |= _beside("whole", rates, whole)
        out["won_whole"] = sum(r > 1 for r in out["ratios_whole"])
    return out


def _beside(name: str, rates: list[float], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Another peer's runs, their spread, the worker's ratio to each and its spread."""
    theirs = [p["events_per_s"] for p in runs]
    ratios = [w / q for w, q in zip(rates, theirs, strict=True)]
    return {f"quix_{name}_runs": runs, f"quix_{name}": spread(theirs),
            f"ratios_{name}": ratios, f"ratio_{name}": spread(ratios),
            f"quix_{name}_exact": all(p["exact"] for p in runs)}
