"""``python -m bench``: every measurement in one run, against one fresh broker."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import (
    CACHE,
    ROOT,
    dataset,
    expected,
    hop,
    live,
    pairs,
    peer_quix,
    producing,
    replay,
    report,
    scale,
    tidy,
)
from bench.ceiling import aiokafka_ceiling, java_ceiling
from bench.procs import Worker, free_port, wait_quiet
from stream.cli import ensure_topics
from stream.dev.broker import BrokerConfig, LocalBroker, ensure_jars
from stream.settings import Settings

T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[bench {time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--events", type=int, help="backlog size (default 300,000; quick 3,000)")
    ap.add_argument("--quick", action="store_true", help="smoke sizes: a minute or two")
    ap.add_argument("--output", type=Path, default=ROOT / "results" / "bench")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--scale", type=float,
                    help="simulator scale (default 150: England; quick 5, so that a few "
                         "thousand events span several working days)")
    ap.add_argument("--recovery-contacts", type=int,
                    help="contacts added to the state before the crash (default 200,000)")
    ap.add_argument("--failover-contacts", type=int, default=0,
                    help="contacts loaded into the two failover workers as well (default 0)")
    ap.add_argument("--latency-rate", type=float, help="events/s (default 1,000)")
    ap.add_argument("--latency-seconds", type=float, help="default 30")
    ap.add_argument("--loaded-latency-seconds", type=float,
                    help="the loaded latency phase, on the worker restarted with the recovery "
                         "phase's state (default 195: three 60 s checkpoint intervals and a "
                         "scrape; quick 5; 0 skips it)")
    ap.add_argument("--scrapers", type=int, default=1,
                    help="Prometheus servers scraping in the loaded latency phase, each every "
                         "15 s, out of step evenly (default 1; 2: a pair of servers, as a "
                         "council running Prometheus in high availability has)")
    ap.add_argument("--duplicates", type=int, help="re-sent events for the steady-RSS check")
    ap.add_argument("--no-peer", action="store_true", help="skip the Quix Streams peer")
    ap.add_argument("--no-hop", action="store_true",
                    help="skip the hop's A/B phase (bench/hop.py: a second broker, the "
                         "backlog without child keys)")
    ap.add_argument("--periodic-seconds", type=float,
                    help="the throughput runs' worker checkpoint and Quix commit interval, "
                         "short enough to fall inside each replay (default 5; quick 0.5)")
    ap.add_argument("--quix-venv", type=Path, default=peer_quix.DEFAULT_VENV)
    ap.add_argument("--profile", action="store_true", help="py-spy the worker on a replay")
    ap.add_argument("--profile-seconds", type=float, default=15.0)
    ap.add_argument("--keep", action="store_true", help="keep the broker/worker temp dir")
    a = ap.parse_args(argv)
    quick = a.quick
    a.scale = a.scale or (5.0 if quick else 150.0)
    a.events = a.events or (3_000 if quick else 300_000)
    a.recovery_contacts = a.recovery_contacts if a.recovery_contacts is not None else (
        1_000 if quick else 200_000)
    a.latency_rate = a.latency_rate or (200.0 if quick else 1_000.0)
    a.latency_seconds = a.latency_seconds or (5.0 if quick else 30.0)
    a.periodic_seconds = a.periodic_seconds or (0.5 if quick else 5.0)
    if a.loaded_latency_seconds is None:
        a.loaded_latency_seconds = 5.0 if quick else 195.0
    a.duplicates = min(a.events, a.duplicates if a.duplicates is not None else (
        1_000 if quick else 100_000))
    if quick:
        a.profile_seconds = min(a.profile_seconds, 3.0)
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.ERROR)  # retried NotLeader after create
    started = datetime.now(UTC).isoformat(timespec="seconds")
    params = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}
    params |= {"quixstreams": peer_quix.quix_version(),
               "dataset": f"simulator, scale {a.scale:g}, seed {a.seed}, from "
                          f"{dataset.BACKLOG_START}, first {a.events:,} events"}
    results: dict[str, Any] = {"started": started, "params": params,
                               "machine": report.machine(), "phases": {}, "errors": [],
                               "notes": report.NOTES, "figures": dict.fromkeys(report.FIGURES)}
    tmp = Path(tempfile.mkdtemp(prefix="cspa-bench-"))
    broker = LocalBroker(BrokerConfig(tmp / "broker", port=free_port(),
                                      controller_port=free_port(), cache_dir=CACHE, heap="1g"))
    alive: list[Worker] = []
    rc = 0
    try:
        rc = _run(a, broker, tmp, results, alive)
    except replay.ExactnessError as exc:
        results["errors"].append(f"EXACTNESS FAILURE: {exc}")
        log(f"EXACTNESS FAILURE:\n{exc}")
        rc = 2
    except Exception as exc:  # noqa: BLE001 - recorded in the results, then re-raised as rc
        results["errors"].append(f"{type(exc).__name__}: {exc}")
        log(f"FAILED: {type(exc).__name__}: {exc}")
        rc = 1
    finally:
        for w in alive:
            w.stop()
        broker.stop()
        results["duration_s"] = time.monotonic() - T0
        json_path, md_path = report.write(a.output, results)
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        log(f"wrote {json_path} and {md_path}" + (f" (kept {tmp})" if a.keep else ""))
    print(md_path.read_text())
    return rc


def _run(a: argparse.Namespace, broker: LocalBroker, tmp: Path, results: dict[str, Any],
         alive: list[Worker]) -> int:
    fig, phases, errors = results["figures"], results["phases"], results["errors"]
    waits: dict[str, float] = phases.setdefault("quiet_waits_s", {})

    def quiet(phase: str) -> None:  # the same start for every measured phase
        waits[phase] = wait_quiet()
    timeout = 120 + a.events / 500
    quix_python = None
    if not a.no_peer:
        try:
            quix_python, spent = peer_quix.ensure_venv(a.quix_venv)
            phases["quix_venv_seconds"] = spent
        except RuntimeError as exc:
            errors.append(f"Quix peer unavailable: {exc}")
    log(f"generating {a.events:,} events")
    msgs = dataset.backlog(a.events, a.seed, a.scale)
    counts = dict(dataset.topic_counts(msgs))
    want = expected.compute(msgs)
    phases["dataset"] = {"events": len(msgs), "per_topic": counts}
    broker.start(timeout=120)
    ensure_topics(Settings(broker=broker.bootstrap))
    bootstrap, topics = broker.bootstrap, list(counts)
    sent, seconds = producing.produce(bootstrap, msgs)
    phases["produce"] = {"events": sent, "seconds": seconds, "events_per_s": sent / seconds}
    log(f"produced {sent:,} in {seconds:.1f}s")

    quiet("ceiling_aiokafka")
    phases["ceiling_aiokafka"] = aiokafka_ceiling(bootstrap, topics, len(msgs), timeout)
    fig["ceiling_aiokafka_events_per_s"] = phases["ceiling_aiokafka"]["events_per_s"]
    quiet("ceiling_java")
    phases["ceiling_java"] = java_ceiling(bootstrap, counts, ensure_jars(CACHE))
    fig["ceiling_java_events_per_s"] = phases["ceiling_java"]["events_per_s"]
    fig["ceiling_java_mb_per_s"] = phases["ceiling_java"]["mb_per_s"]
    log(f"ceilings: aiokafka {fig['ceiling_aiokafka_events_per_s']:,.0f}/s, "
        f"java {fig['ceiling_java_events_per_s']:,.0f}/s")
    order = [dataset.TOPICS[f].name for f in ("contacts", "map_enquiries", "calls", "audits")]
    tput = pairs.run_pairs(bootstrap, tmp, len(msgs), want, timeout, a.periodic_seconds,
                           None if quix_python is None else (quix_python, order), quiet,
                           tidy.Tidy(bootstrap))
    _throughput_figures(tput, fig, errors)
    # The state the next phases need, from one more replay by a worker with the default
    # intervals (the pairs' short checkpoint interval would weigh on the latency phase).
    quiet("state_replay")
    worker, sampler, tp = replay.throughput(bootstrap, tmp, "bench-tp", len(msgs), want,
                                            timeout)
    alive.append(worker)
    phases["throughput"] = {**tput, "exactness": tp["exactness"]}
    phases["state_replay"] = tp
    consumed = len(msgs)

    steady = replay.steady_memory(worker, bootstrap, msgs[: a.duplicates], consumed, want,
                                  timeout)
    consumed += steady["events"]
    phases["steady_memory"] = steady
    fig["rss_growth_steady_mib"] = steady["growth_bytes"] / report.MIB
    fig["rss_before_steady_mib"] = steady["rss_before_bytes"] / report.MIB

    quiet("latency")
    lat, live_sent = live.latency(worker, bootstrap, consumed, a.latency_rate,
                                  a.latency_seconds, timeout)
    consumed += len(live_sent)
    phases["latency"] = lat
    fig["latency_p50_ms"], fig["latency_p99_ms"] = lat["p50_s"] * 1e3, lat["p99_s"] * 1e3
    # max: the bound of the highest bucket holding an observation (sampled max is a floor)
    fig["latency_max_ms"] = max(lat["max_bucket_bound_s"], lat["max_sampled_s"]) * 1e3
    fig["scrape_ms"] = scrape_ms(worker)
    log(f"latency p50 {fig['latency_p50_ms']:.0f} ms p99 {fig['latency_p99_ms']:.0f} ms")

    extra = dataset.recovery_contacts(a.recovery_contacts)  # generated as sent
    events = 2 * a.recovery_contacts
    restarted, rec = live.recovery(worker, bootstrap, extra, events, consumed,
                                   timeout + events / 500)
    alive.remove(worker)
    alive.append(restarted)
    sampler.stop()
    phases["recovery"] = rec
    fig["recovery_seconds"], fig["recovery_contacts"] = rec["seconds"], rec["contacts_in_state"]
    fig["cold_rebuild_records_per_s"] = rec["cold_rebuild_records_per_s"]
    fig["cold_rebuild_seconds"] = rec["cold"]["seconds"]
    # The restarted worker's own peak too: restoring and rebuilding a national year
    # is where a worker holds the most.
    rec["restarted_peak_rss_bytes"] = restarted.hwm()
    fig["peak_rss_mib"] = max(sampler.peak(), tp["peak_rss_bytes"],
                              *(w["peak_rss_bytes"] for w in tput["worker_runs"]),
                              rec["cold"]["killed_peak_rss_bytes"],  # the warm restart's
                              rec["restarted_peak_rss_bytes"]) / report.MIB
    log(f"recovery {rec['seconds']:.1f}s (cold {rec['cold']['seconds']:.1f}s) with "
        f"{rec['contacts_in_state']:,.0f} contacts")
    if a.loaded_latency_seconds > 0:
        quiet("loaded_latency")
        _loaded_latency(a, restarted, bootstrap, timeout, phases, fig)
    restarted.stop()
    alive.remove(restarted)

    quiet("scale_out")
    so = scale.scale_out(bootstrap, tmp, msgs, timeout)
    phases["scale_out"] = so
    fig["scaleout_1_events_per_s"] = so["1"]["events_per_s"]
    fig["scaleout_2_events_per_s"] = so["2"]["events_per_s"]
    fig["scaleout_speedup"] = so["speedup"]
    log(f"scale-out {so['1']['events_per_s']:,.0f}/s -> {so['2']['events_per_s']:,.0f}/s")
    quiet("failover")
    fo = scale.failover(bootstrap, tmp, msgs, want, timeout + 2 * a.failover_contacts / 500,
                        extra=dataset.recovery_contacts(a.failover_contacts, seed=5),
                        extra_events=2 * a.failover_contacts)
    phases["failover"], fig["failover_seconds"] = fo, fo["seconds"]
    log(f"failover {fo['seconds']:.1f}s (2 workers, standby replicas 1)")
    if not a.no_hop:
        _hop(a, tmp, msgs, want, timeout, quiet, phases, fig)
    if a.profile:
        phases["profile"] = _profile(bootstrap, tmp, a.profile_seconds, a.output, alive)
        if "error" in phases["profile"]:
            errors.append(f"profile: {phases['profile']['error']}")
    return 1 if errors else 0


def _loaded_latency(a: argparse.Namespace, worker: Worker, bootstrap: str, timeout: float,
                    phases: dict[str, Any], fig: dict[str, Any]) -> None:
    """Latency, loop lag and scrapes at the latency rate with the recovery phase's state
    in the worker (a national year in the national run), checkpoints and scrapes inside."""
    lat, _ = live.loaded_latency(worker, bootstrap, a.latency_rate, a.loaded_latency_seconds,
                                 timeout, a.scrapers)
    phases["loaded_latency"] = lat
    fig["loaded_latency_p99_ms"] = lat["p99_s"] * 1e3
    fig["loaded_latency_max_ms"] = max(lat["max_bucket_bound_s"], lat["max_sampled_s"]) * 1e3
    fig["loaded_loop_lag_p99_ms"] = lat["loop_lag_p99_s"] * 1e3
    fig["loaded_loop_lag_max_ms"] = lat["loop_lag_max_bucket_bound_s"] * 1e3
    fig["loaded_scrape_max_ms"] = lat["scrape_max_s"] * 1e3
    fig["loaded_due_max_ms"] = lat["due_max_s"] * 1e3
    fig["loaded_contacts"] = lat["contacts_in_state"]
    fig["peak_rss_mib"] = max(fig["peak_rss_mib"] or 0.0, lat["peak_rss_bytes"] / report.MIB)
    log(f"loaded latency ({lat['contacts_in_state']:,.0f} contacts): p99 "
        f"{fig['loaded_latency_p99_ms']:.0f} ms, max {fig['loaded_latency_max_ms']:.0f} ms, "
        f"loop lag p99 {fig['loaded_loop_lag_p99_ms']:.0f} ms, slowest scrape "
        f"{fig['loaded_scrape_max_ms']:.0f} ms, slowest /due {fig['loaded_due_max_ms']:.0f} ms, "
        f"{lat['checkpoints']:g} checkpoints, {lat['scrapers']} scraping")
    for line in lat["stalls_logged"]:  # where the loop was held (stream/worker/stallwatch.py)
        log(f"  loop stalled {line['stalls']}x, longest {line['longest_ms']} ms (ran "
            f"{_or_dash(line['ran_ms'])} ms, waited for a CPU {_or_dash(line['cpu_wait_ms'])} ms,"
            f" {_or_dash(line['faults'])} page faults) at {line['where']}")


def _or_dash(ms: int | None) -> str:
    return "-" if ms is None else str(ms)


def _hop(a: argparse.Namespace, tmp: Path, msgs: list[dataset.Msg],
         want: expected.Figures, timeout: float, quiet: Any, phases: dict[str, Any],
         fig: dict[str, Any]) -> None:
    """The hop's cost: the same replay, latency and restart with and without child keys."""
    checkpoint_s = a.periodic_seconds if a.quick else None  # quick: no 60 s wait to restart
    result = hop.run(tmp, msgs, want, timeout, a.periodic_seconds,
                     (a.latency_rate, a.latency_seconds, checkpoint_s), quiet,
                     rounds=1 if a.quick else hop.PAIRS)
    phases["hop"] = result
    fig.update(hop.figures(result))
    log(f"hop: {fig['hop_with_events_per_s']:,.0f}/s with, {fig['hop_without_events_per_s']:,.0f}"
        f"/s without ({fig['hop_throughput_ratio']:.2f}x); latency p99 "
        f"{fig['hop_latency_p99_with_ms']:.0f} / {fig['hop_latency_p99_without_ms']:.0f} ms; "
        f"restart {fig['hop_recovery_with_s']:.1f} / {fig['hop_recovery_without_s']:.1f} s")


def _throughput_figures(tput: dict[str, Any], fig: dict[str, Any], errors: list[str]) -> None:
    """The pairs' medians as figures; the verdict's inputs (pairs won) beside them."""
    fig["worker_events_per_s"], fig["worker_exact"] = tput["worker"]["median"], 1.0
    fig["ratio_to_aiokafka_ceiling"] = (tput["worker"]["median"]
                                        / fig["ceiling_aiokafka_events_per_s"])
    w = tput["worker"]
    log(f"worker {w['median']:,.0f}/s (median; {w['min']:,.0f}-{w['max']:,.0f}), exact")
    if "quix" not in tput:
        return
    fig["quix_events_per_s"], fig["ratio_to_quix"] = (tput["quix"]["median"],
                                                      tput["ratio"]["median"])
    fig["worker_pairs_won"], fig["quix_exact"] = float(tput["won"]), float(tput["quix_exact"])
    if not tput["quix_exact"]:
        errors.append("Quix peer figures NOT exact (phases.throughput.quix_runs)")
    log(f"quix {tput['quix']['median']:,.0f}/s (median); worker ahead in {tput['won']} of "
        f"{pairs.PAIRS} pairs, ratio median {tput['ratio']['median']:.2f}x")
    if "quix_plain" in tput:
        fig["quix_plain_events_per_s"] = tput["quix_plain"]["median"]
        fig["ratio_to_quix_plain"] = tput["ratio_plain"]["median"]
        fig["quix_plain_exact"] = float(tput["quix_plain_exact"])
        if not tput["quix_plain_exact"]:
            errors.append("Quix plain peer figures NOT exact (phases.throughput.quix_plain_runs)")
        log(f"quix without the contract check {tput['quix_plain']['median']:,.0f}/s (median), "
            f"ratio median {tput['ratio_plain']['median']:.2f}x")
    if "quix_whole" in tput:
        fig["quix_whole_events_per_s"] = tput["quix_whole"]["median"]
        fig["ratio_to_quix_whole"] = tput["ratio_whole"]["median"]
        fig["worker_pairs_won_whole"] = float(tput["won_whole"])
        fig["quix_whole_exact"] = float(tput["quix_whole_exact"])
        if not tput["quix_whole_exact"]:
            errors.append("Quix whole-fold peer figures NOT exact "
                          "(phases.throughput.quix_whole_runs)")
        log(f"quix doing the worker's whole work {tput['quix_whole']['median']:,.0f}/s "
            f"(median), ratio median {tput['ratio_whole']['median']:.2f}x, worker ahead in "
            f"{tput['won_whole']} of {pairs.PAIRS}")


def scrape_ms(worker: Worker, times: int = 3) -> float:
    """Median time of a full /metrics scrape with the backlog's state (what Prometheus
    pays, and the event loop with it, every scrape interval)."""
    took = sorted(live.scrape_seconds(worker) for _ in range(times))
    return took[len(took) // 2] * 1e3


def _profile(bootstrap: str, tmp: Path, seconds: float, out: Path,
             alive: list[Worker]) -> dict[str, Any]:
    worker = Worker(bootstrap, tmp / "bench-prof", "bench-prof").start()
    alive.append(worker)
    while worker.proc is not None and worker.alive():
        try:
            if worker.consumed() > 0:
                break
        except OSError:
            pass
        time.sleep(0.05)
    out.mkdir(parents=True, exist_ok=True)
    result = live.profile(worker, seconds, out / "profile.raw.txt")
    worker.stop()
    alive.remove(worker)
    return result
