"""Command line: ``python -m stream COMMAND`` (installed as ``cspa``).

Commands: ``worker``, ``topics``, ``acls``, ``run`` (the demo: broker + worker +
simulator), ``stop``, ``report``, ``schemas``, ``broker``, ``simulate``,
``import``, ``send``, ``check``, ``deadletter``, ``key``. Settings come from ``CSPA_*``
environment variables.
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

from stream.contract.topics import FEEDBACK_KEYS, folded, load_topics
from stream.dev import broker as devbroker
from stream.report.cli import add_arguments as add_report_arguments
from stream.report.cli import run_report
from stream.report.due import add_arguments as add_due_arguments
from stream.report.due import run_due
from stream.settings import ROOT, Settings
from stream.upstream.check import add_command as add_check_command
from stream.upstream.cli import add_commands as add_upstream_commands
from stream.upstream.operator_cli import add_commands as add_operator_commands

CACHE = ROOT / ".cache"


def changelog_topic(settings: Settings, topic: str) -> str:
    """Name Faust gives the changelog of a topic's records table."""
    return f"{settings.app_id}-records-{topic}-changelog"


def changelog_topics(settings: Settings) -> list[str]:
    """The changelogs of every source topic's records table (the repartition topic's too)."""
    topics = folded(load_topics(app_id=settings.app_id))
    return [changelog_topic(settings, s.name) for s in topics.values()]


def worker_topics(settings: Settings) -> list[str]:
    """Every topic the worker uses: the contract's (not the quotes' key topic, which it
    never reads), its changelogs and Faust's leader topic."""
    return ([s.name for f, s in load_topics(app_id=settings.app_id).items()
             if f != FEEDBACK_KEYS]
            + changelog_topics(settings)
            + [f"{settings.app_id}-__assignor-__leader"])


def missing_topics_refusal(settings: Settings) -> str | None:
    """Why a worker that may not create topics must not start (one line), or None.

    With ``CSPA_CREATE_TOPICS=false`` the admin creates the topics; a missing one (or one
    this principal may not see) is named rather than left for Faust to fail on.
    """
    from stream.worker import replication

    kwargs = settings.kafka_client_kwargs()
    asyncio.run(devbroker.wait_ready(settings.broker, 60, **kwargs))
    names = worker_topics(settings)
    found, _ = asyncio.run(replication.describe(settings.broker, names, False, **kwargs))
    missing = [t.name for t in found if t.replicas == 0]
    if not missing:
        return None
    more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    return (f"refusing to start: topic {missing[0]} does not exist or is not visible to this "
            f"principal{more}; CSPA_CREATE_TOPICS is false: the admin creates the topics "
            "(python -m stream topics)")


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
    topics = load_topics(app_id=settings.app_id)
    specs = [(s.name, s.partitions, s.kafka_config() | isr) for s in topics.values()]
    specs += [(changelog_topic(settings, s.name), s.partitions,
               {"cleanup.policy": "compact"} | isr)
              for s in folded(topics).values()]
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

    names = ([s.name for s in folded(load_topics(app_id=settings.app_id)).values()]
             + changelog_topics(settings))
    topics, default = asyncio.run(replication.describe(
        settings.broker, names, with_configs=True, **settings.kafka_client_kwargs()))
    return replication.refusal(topics, replication.wanted(
        settings.replication_factor, settings.min_insync_replicas, default))


def topics_refusal(settings: Settings) -> str | None:
    """Create the topics (or, without the right to, check they exist) and check their
    replication; the one line the worker refuses to start with, or None."""
    try:
        refused = None
        if settings.create_topics:
            ensure_topics(settings)
        else:
            refused = missing_topics_refusal(settings)
        return refused or replication_refusal(settings)
    except KafkaError as exc:  # e.g. more replicas asked for than the cluster has brokers
        return f"refusing to start: topics not created or not readable: {exc}"


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    import faust

    from stream.worker import collector
    from stream.worker.app import create_app
    from stream.worker.checkpoint import broker_view
    from stream.worker.liveness import LivenessServer
    from stream.worker.webauth import refusal

    if (why := refusal(settings)) is not None:  # before binding anything
        print(f"worker: {why}", file=sys.stderr)
        return 2
    live = None
    if settings.live_port:  # bound first: a port taken fails the start at once
        try:
            live = LivenessServer(settings.web_host, settings.live_port,
                                  settings.liveness_seconds)
        except OSError as exc:
            print(f"worker: cannot serve /live on {settings.web_host}:{settings.live_port} "
                  f"(CSPA_LIVE_PORT): {exc.strerror or exc}", file=sys.stderr)
            return 2
    refused = topics_refusal(settings)
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
    runner = faust.Worker(worker.app, loglevel=settings.log_level, quiet=True,
                          redirect_stdouts=False)
    if live is not None:  # /live, answered off the loop the runner is about to run
        live.start(runner.loop)
    runner.execute_from_commandline()
    return 0


def cmd_acls(args: argparse.Namespace, settings: Settings) -> int:
    """Print the least-privilege ACLs of every role; with ``--apply`` create them."""
    from stream.contract import acls

    principals = acls.default_principals()
    for item in args.principal:
        role, _, principal = item.partition("=")
        if role not in principals or not principal:
            print(f"--principal {item!r}: want ROLE=PRINCIPAL, ROLE one of "
                  f"{', '.join(acls.ROLES)}", file=sys.stderr)
            return 2
        principals[role] = principal
    plan = acls.plan(load_topics(), settings.app_id, principals,
                     exactly_once=settings.processing_guarantee == "exactly_once")
    print(acls.table(plan), end="")
    if args.apply:
        try:
            sent = asyncio.run(acls.apply(settings.broker, plan,
                                          **settings.kafka_client_kwargs()))
        except KafkaError as exc:
            print(f"ACLs not applied: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        print(f"applied {sent} ACL bindings at {settings.broker}")
    return 0


def cmd_retention(args: argparse.Namespace, settings: Settings) -> int:
    """Apply the retention schedule (stream.worker.retention): dry run unless --apply."""
    from stream.worker import schedule

    changelogs = {s.name: changelog_topic(settings, s.name)
                  for s in folded(load_topics(app_id=settings.app_id)).values()}
    return schedule.run(settings, args.older_than, args.apply, changelogs)


def cmd_topics(args: argparse.Namespace, settings: Settings) -> int:
    ensure_topics(settings)
    for spec in load_topics(app_id=settings.app_id).values():
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
    print(f"cells    {base}/cells")
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
    return run_due(args, settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cspa", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("worker", help="run a Faust worker (foreground)").set_defaults(fn=cmd_worker)
    sub.add_parser("topics", help="create the contract's topics").set_defaults(fn=cmd_topics)
    acl = sub.add_parser("acls", help="print the least-privilege ACLs; --apply creates them")
    acl.add_argument("--apply", action="store_true",
                     help="create them on CSPA_BROKER (as a principal allowed to alter ACLs)")
    acl.add_argument("--principal", action="append", default=[], metavar="ROLE=PRINCIPAL",
                     help="a role's principal (default User:cspa-ROLE), e.g. "
                          "worker=User:svc-cspa; repeatable")
    acl.set_defaults(fn=cmd_acls)
    keep = sub.add_parser("retention", help="delete events and cases older than the schedule "
                                            "(dry run unless --apply)")
    keep.add_argument("--older-than", required=True, metavar="DURATION",
                      help="e.g. 6y, 18m, 400d: events before this, and cases with no "
                           "event since, are deleted")
    keep.add_argument("--apply", action="store_true",
                      help="delete them (every worker stopped first)")
    keep.set_defaults(fn=cmd_retention)
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
    add_due_arguments(due)
    due.set_defaults(fn=cmd_due)
    add_upstream_commands(sub)
    add_operator_commands(sub)
    add_check_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "broker":
        return devbroker.main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    result: int = args.fn(args, Settings())
    return result
