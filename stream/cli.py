"""Command line: ``python -m stream COMMAND`` (installed as ``cspa``).

Commands: ``worker``, ``topics``, ``run`` (the demo: broker + worker +
simulator), ``stop``, ``report``, ``schemas``, ``broker``, ``simulate``,
``import``, ``send``. Settings come from ``CSPA_*`` environment variables.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

from aiokafka.errors import KafkaError  # type: ignore[import-untyped,unused-ignore]

from stream.contract.topics import event_families, load_topics
from stream.dev import broker as devbroker
from stream.report.cli import add_arguments as add_report_arguments
from stream.report.cli import run_report
from stream.settings import ROOT, Settings
from stream.upstream.cli import add_commands as add_upstream_commands

CACHE = ROOT / ".cache"


def changelog_topic(settings: Settings, topic: str) -> str:
    """Name Faust gives the changelog of a topic's records table."""
    return f"{settings.app_id}-records-{topic}-changelog"


def changelog_topics(settings: Settings) -> list[str]:
    """The changelogs of every source topic's records table."""
    return [changelog_topic(settings, s.name) for s in event_families(load_topics()).values()]


def ensure_topics(settings: Settings) -> None:
    """Create every contract topic, the worker's changelogs and Faust's leader topic
    (idempotent), with the configured replication and ``min.insync.replicas``.

    Changelogs are created here, compacted and co-partitioned with their source
    topic, rather than left to Faust or to broker auto-creation (which would
    give them the broker's default partition count, and Faust's replication factor,
    which cannot say "the cluster's default").
    """
    isr = ({"min.insync.replicas": str(settings.min_insync_replicas)}
           if settings.min_insync_replicas else {})
    specs = [(s.name, s.partitions, s.kafka_config() | isr) for s in load_topics().values()]
    specs += [(changelog_topic(settings, s.name), s.partitions,
               {"cleanup.policy": "compact"} | isr)
              for s in event_families(load_topics()).values()]
    specs += [(f"{settings.app_id}-__assignor-__leader", 1, isr)]  # Faust's own
    kwargs = settings.kafka_client_kwargs()
    asyncio.run(devbroker.wait_ready(settings.broker, 60, **kwargs))
    asyncio.run(devbroker.create_topics(settings.broker, specs,
                                        replication_factor=settings.replication_factor,
                                        **kwargs))


def replication_refusal(settings: Settings) -> str | None:
    """Why the worker must not start on these topics' replication (one line), or None.

    Every source topic and every changelog is checked (``stream.worker.replication``).
    """
    from stream.worker import replication

    names = [s.name for s in event_families(load_topics()).values()] + changelog_topics(settings)
    topics, default = asyncio.run(replication.describe(
        settings.broker, names, with_configs=True, **settings.kafka_client_kwargs()))
    return replication.refusal(topics, replication.wanted(
        settings.replication_factor, settings.min_insync_replicas, default))


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    import faust

    from stream.worker import collector
    from stream.worker.app import create_app
    from stream.worker.checkpoint import broker_view

    try:
        ensure_topics(settings)
        refused = replication_refusal(settings)
    except KafkaError as exc:  # e.g. more replicas asked for than the cluster has brokers
        refused = f"refusing to start: topics not created or not readable: {exc}"
    if refused is not None:
        print(refused, file=sys.stderr)
        return 2
    view = None
    if settings.store.startswith("local:"):  # whether a checkpoint is this broker's
        view = asyncio.run(broker_view(settings.broker, changelog_topics(settings),
                                       **settings.kafka_client_kwargs()))
    try:
        worker = create_app(settings, view)
    except ValueError as exc:  # e.g. a checkpoint key file missing or too short
        print(f"refusing to start: {exc}", file=sys.stderr)
        return 2
    collector.tune()
    logging.getLogger("cspa").setLevel(settings.log_level)
    faust.Worker(worker.app, loglevel=settings.log_level, quiet=True,
                 redirect_stdouts=False).execute_from_commandline()
    return 0


def cmd_topics(args: argparse.Namespace, settings: Settings) -> int:
    ensure_topics(settings)
    for spec in load_topics().values():
        print(f"{spec.name}\tpartitions={spec.partitions}\tretention.ms={spec.retention_ms}")
    return 0


def _worker_pidfile() -> Path:
    return CACHE / "worker.pid"


def _simulator_pidfile() -> Path:
    return CACHE / "simulator.pid"


def _stop_pid(pidfile: Path) -> int | None:
    """SIGTERM the process a pidfile names (SIGKILL after 10 s); its pid, if it was alive."""
    if not _pid_alive(pidfile):
        pidfile.unlink(missing_ok=True)
        return None
    pid = int(pidfile.read_text())
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if not _pid_alive(pidfile):
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    return pid


def _continue_live(args: argparse.Namespace, start: date, days: int, cut: str) -> int:
    """The same generation, from ``cut`` on, in real time in the background.

    Calls queued from now on are sent as they happen and answered or abandoned after their
    simulated wait, so the queue on the worker's clock moves (calls waiting, oldest wait).
    """
    _stop_pid(_simulator_pidfile())
    log = (CACHE / "simulator.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "stream", "simulate", "--start", start.isoformat(),
         "--days", str(days), "--seed", str(args.seed), "--scale", str(args.scale),
         "--speed", "1", "--after", cut], stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True, cwd=ROOT)
    _simulator_pidfile().write_text(str(proc.pid))
    return proc.pid


def _metrics_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            body: bytes = resp.read()
    except OSError:
        return False
    return b"cspa_contacts_received{" in body


def _start_background(settings: Settings) -> devbroker.LocalBroker:
    """The local broker and one worker, detached, unless already running."""
    CACHE.mkdir(parents=True, exist_ok=True)
    broker = devbroker.LocalBroker(devbroker.BrokerConfig(data_dir=CACHE / "broker"))
    if not broker.is_running():
        broker.start()
    ensure_topics(settings)
    if not _pid_alive(_worker_pidfile()):
        log = (CACHE / "worker.log").open("ab")
        from stream.worker import localstate

        # A dev key under .cache/ (outside the data directory) signs its checkpoints.
        key = settings.checkpoint_key_file or localstate.new_key(CACHE / "checkpoint.key")
        proc = subprocess.Popen([sys.executable, "-m", "stream", "worker"], stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT,
                                env={**os.environ, "CSPA_CHECKPOINT_KEY_FILE": str(key)})
        _worker_pidfile().write_text(str(proc.pid))
    return broker


def _caught_up(url: str, at_least: float) -> bool:
    """True once the worker serves figures, has consumed ``at_least`` and has no lag."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return False
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
    return ("cspa_contacts_received" in text and sums.get("cspa_consumer_lag", 1) == 0
            and sums.get("cspa_events_consumed_total", 0) >= at_least)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """The main job: local broker, a worker in the background, simulated traffic up to now,
    then the rest of today's traffic live (real time) in the background."""
    from datetime import UTC, datetime, timedelta

    from stream.upstream.simulator import run as simulate

    broker = _start_background(settings)
    print(f"broker   {broker.bootstrap} (pid {broker.pid})")
    start = args.start or date.today() - timedelta(days=args.days - 1)
    days = (date.today() - start).days + 1 if args.start is None else args.days
    cut = datetime.now(UTC)
    sent = asyncio.run(simulate(settings, start, days, seed=args.seed, scale=args.scale,
                                speed=None, until=cut))
    print(f"simulator sent {sent} events ({start} + {days} day(s), up to now, seed {args.seed})")
    live = _continue_live(args, start, days, cut.isoformat())
    base = f"http://{settings.web_host}:{settings.web_port}"
    deadline = time.monotonic() + max(120, sent / 500)
    while not _caught_up(base + "/metrics", sent):
        if time.monotonic() > deadline:
            print(f"worker did not catch up in time; see {CACHE / 'worker.log'}")
            return 1
        time.sleep(1)
    last = min(start + timedelta(days=days - 1), date.today())
    print(f"metrics  {base}/metrics")
    print(f"figures  {base}/figures")
    print(f"report   make report MONTHS={start:%Y-%m}..{last:%Y-%m}"
          f"   (or .venv/bin/python -m stream report --months ...)")
    print(f"live     the rest of the period in real time (pid {live}, "
          f"log {CACHE / 'simulator.log'})")
    print("stop     make stop")
    return 0


def _pid_alive(pidfile: Path) -> bool:
    try:
        pid = int(pidfile.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def cmd_stop(args: argparse.Namespace, settings: Settings) -> int:
    for name, pidfile in (("simulator", _simulator_pidfile()), ("worker", _worker_pidfile())):
        pid = _stop_pid(pidfile)
        if pid is not None:
            print(f"{name} stopped (pid {pid})")
    devbroker.LocalBroker(devbroker.BrokerConfig(data_dir=CACHE / "broker")).stop()
    print("broker stopped")
    return 0


def cmd_schemas(args: argparse.Namespace, settings: Settings) -> int:
    from stream.contract.schemas import write_schemas

    for path in write_schemas(settings):
        print(path.relative_to(ROOT))
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    return run_report(args, settings)


def cmd_due(args: argparse.Namespace, settings: Settings) -> int:
    """Merge every worker's due list (each owns some partitions) and print it."""
    import json

    items: list[dict[str, object]] = []
    for url in args.workers.split(","):
        with urllib.request.urlopen(f"{url.rstrip('/')}/due?limit={args.limit}",
                                    timeout=10) as resp:
            items += json.loads(resp.read())["items"]
    items.sort(key=lambda i: (str(i["deadline"]), str(i["rule"])))
    items = items[: args.limit]
    if args.json:
        print(json.dumps(items, indent=2))
        return 0
    print(f"{'deadline':25} {'state':9} {'hours left':>10}  {'rule':24} {'team':5} case")
    for i in items:
        print(f"{i['deadline']!s:25} {i['state']!s:9} {i['working_hours_left']!s:>10}  "
              f"{i['rule']!s:24} {i['team']!s:5} {i['key']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cspa", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("worker", help="run a Faust worker (foreground)").set_defaults(fn=cmd_worker)
    sub.add_parser("topics", help="create the contract's topics").set_defaults(fn=cmd_topics)
    run = sub.add_parser("run", help="demo: broker, worker and simulated traffic up to now")
    run.add_argument("--days", type=int, default=14, help="days of traffic (default 14)")
    run.add_argument("--start", type=date.fromisoformat, default=None,
                     help="first day, YYYY-MM-DD (default: --days before today)")
    run.add_argument("--seed", type=int, default=1)
    run.add_argument("--scale", type=float, default=1.0)
    run.set_defaults(fn=cmd_run)
    sub.add_parser("stop", help="stop the demo's worker and broker").set_defaults(fn=cmd_stop)
    sub.add_parser("schemas", help="regenerate topics/schemas").set_defaults(fn=cmd_schemas)
    report = sub.add_parser("report", help="render the committee report from running workers")
    add_report_arguments(report)
    report.set_defaults(fn=cmd_report)
    due = sub.add_parser("due", help="open items by deadline, for the morning check")
    due.add_argument("--workers", default="http://127.0.0.1:6066",
                     help="comma-separated worker URLs")
    due.add_argument("--limit", type=int, default=50)
    due.add_argument("--json", action="store_true", help="print JSON instead of a table")
    due.set_defaults(fn=cmd_due)
    add_upstream_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "broker":
        return devbroker.main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    result: int = args.fn(args, Settings())
    return result
