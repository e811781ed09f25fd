"""``python -m stream report``: the committee report from the running workers.

The caller (``stream.cli``) creates the sub-parser, calls ``add_arguments`` and
sets ``fn``; ``run_report`` does the rest. Exit status 0 on success, 2 when
the workers do not hold every partition exactly once, settled and alike
(``IncompleteReport``) or the months are malformed.

The workers are ``--workers``, else ``CSPA_WORKERS``. The definitions the figures
are read under (service level, short abandons, period combination) and the
taxonomy are the workers', so a report agrees with their dashboards whoever runs
it; a flag may set a definition for one report, and the report prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka.errors import KafkaError

from stream.contract.taxonomy import Taxonomy, TaxonomyError, parse_taxonomy
from stream.contract.topics import event_families, folded, load_topics
from stream.report import IncompleteReport, compute_report, fetch_cells, publication, render
from stream.report.appendix import annotate
from stream.report.publication import DataAsAt
from stream.report.quotes import fetch_quotes
from stream.report.rates import Population
from stream.report.render import FORMATS
from stream.report.running import RULE_SHARES, Since, compute_since
from stream.report.tables import DayBasis, Quote, Report, ReportDefinitions
from stream.report.webclient import WebClient
from stream.settings import PeriodCombination, ServiceLevelVariant, Settings
from stream.state.rules import RuleError, load_rules

DEFAULT_HTML = Path("report.html")
MAX_MONTHS = 240
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def _month_index(text: str) -> int:
    match = _MONTH.match(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise argparse.ArgumentTypeError(f"not a month (YYYY-MM): {text!r}")
    return int(match.group(1)) * 12 + int(match.group(2)) - 1


def parse_months(text: str) -> list[str]:
    """"2019-08..2019-10" (inclusive) or "2019-08" -> ["2019-08", ...]."""
    first, sep, last = text.partition("..")
    start = _month_index(first)
    end = _month_index(last) if sep else start
    if end < start:
        raise argparse.ArgumentTypeError(f"months run backwards: {text!r}")
    if end - start >= MAX_MONTHS:
        raise argparse.ArgumentTypeError(f"at most {MAX_MONTHS} months in one report")
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(start, end + 1)]


def parse_month(text: str) -> str:
    """"2019-06" -> "2019-06" (validated)."""
    return parse_months(text)[0] if ".." not in text else _not_one_month(text)


def _not_one_month(text: str) -> str:
    raise argparse.ArgumentTypeError(f"one month (YYYY-MM), not a range: {text!r}")


def parse_workers(text: str) -> list[str]:
    """"URL,URL..." (``--workers`` or ``CSPA_WORKERS``) -> the URLs, at least one."""
    urls = [u.strip() for u in text.split(",") if u.strip()]
    if not urls:
        raise argparse.ArgumentTypeError("no worker URL given")
    return urls


def workers_of(args: argparse.Namespace, settings: Settings) -> list[str]:
    """``--workers`` if given, else ``CSPA_WORKERS``."""
    if args.workers is not None:
        return list(args.workers)
    try:
        return parse_workers(settings.workers)
    except argparse.ArgumentTypeError as exc:
        raise ValueError(f"CSPA_WORKERS: {exc}") from None


def expected_partitions(app_id: str) -> dict[str, int]:
    """Every source topic and its partition count: what the workers of ``app_id`` must
    cover (their repartition topic too: the repeat figures are the children table's
    partitions)."""
    return {spec.name: spec.partitions for spec in folded(load_topics(app_id=app_id)).values()}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The report's options (the caller sets ``fn``)."""
    parser.add_argument("--months", type=parse_months, default=None,
                        help="YYYY-MM..YYYY-MM (inclusive) or a single YYYY-MM (required "
                             "but with --since-published)")
    parser.add_argument("--workers", type=parse_workers, default=None,
                        help="every worker's base URL, comma separated (default: "
                             "CSPA_WORKERS, http://127.0.0.1:6066)")
    parser.add_argument("--format", choices=FORMATS, default="text", dest="format")
    parser.add_argument("--output", type=Path, default=None,
                        help=f"file to write (default stdout; html: {DEFAULT_HTML})")
    parser.add_argument("--publish", action="store_true",
                        help="for publication: suppress counts of 1-5, and keep a snapshot "
                             "of what was published in CSPA_PUBLISHED_DIR")
    parser.add_argument("--since", type=parse_month, default=None, metavar="YYYY-MM",
                        help="add running totals: shares within timescale from this month "
                             "to the report's last")
    parser.add_argument("--since-published", type=Path, default=None, metavar="SNAPSHOT",
                        help="list every figure of that published snapshot that has changed "
                             "since, with the events behind the change (its months, "
                             "definitions and --since are the snapshot's)")
    parser.add_argument("--no-quotes", action="store_true",
                        help="leave section 6's approved quotes out (they are read from the "
                             "feedback and key topics on CSPA_BROKER)")
    parser.add_argument("--day-basis", choices=("working", "calendar"), default="working")
    parser.add_argument("--legacy-mean-of-months", action="store_true",
                        help="period totals as the plain mean of monthly percentages "
                             "(reproduces the 2019 report)")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for each worker")
    parser.add_argument("--service-level-seconds", type=float, default=None,
                        help="this report only: answered within this counts (default: "
                             "the workers' CSPA_SERVICE_LEVEL_SECONDS)")
    parser.add_argument("--service-level-variant", choices=[v.value for v in
                                                            ServiceLevelVariant],
                        default=None, help="this report only: the service level's "
                        "denominator (default: the workers')")
    parser.add_argument("--short-abandon-seconds", type=float, default=None,
                        help="this report only: abandons at or under this are excluded "
                             "(default: the workers')")


def definitions(args: argparse.Namespace, served: Mapping[str, Any],
                target: float = 80.0) -> ReportDefinitions:
    """The workers' read-time definitions (``CallDefinitions``), a flag overriding each.

    ``target``: the charts' target line (``CSPA_TIMELINESS_TARGET_PERCENT`` of whoever
    renders: a presentation choice, not a definition of any figure).
    """
    basis: DayBasis = "calendar" if args.day_basis == "calendar" else "working"
    combination = (PeriodCombination.MEAN_OF_MONTHS if args.legacy_mean_of_months
                   else PeriodCombination(served["period_combination"]))
    return ReportDefinitions(
        float(_either(args.service_level_seconds, served["service_level_seconds"])),
        ServiceLevelVariant(_either(args.service_level_variant, served["variant"])),
        float(_either(args.short_abandon_seconds, served["short_abandon_seconds"])),
        combination, basis, target)


def _either(flag: Any, served: Any) -> Any:
    return served if flag is None else flag


def run_report(args: argparse.Namespace, settings: Settings) -> int:
    try:
        urls = workers_of(args, settings)
        snapshot = (publication.load(args.since_published)
                    if args.since_published is not None else None)
        if snapshot is None and args.months is None:
            raise ValueError("--months is required (but with --since-published)")
    except (ValueError, OSError) as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    try:
        cells = fetch_cells(urls, expected_partitions(settings.app_id), timeout=args.timeout,
                            client=WebClient.of(settings))
        as_at = publication.DataAsAt(datetime.now(UTC), cells.offsets)
        defs = (snapshot_definitions(snapshot.definitions, settings) if snapshot else
                definitions(args, cells.definitions, settings.timeliness_target_percent))
        taxonomy = parse_taxonomy(cells.taxonomy)
    except IncompleteReport as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    except (KeyError, ValueError, TaxonomyError, tomllib.TOMLDecodeError) as exc:
        print(f"report: the workers' definitions or taxonomy cannot be read: "
              f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    months = list(snapshot.months) if snapshot else args.months
    first = snapshot.since if snapshot else args.since
    publish = True if snapshot else args.publish
    quotes = () if args.no_quotes or snapshot else read_quotes(settings, months, taxonomy,
                                                                args.timeout)
    report = compute_report(cells.aggregates, months, taxonomy, defs, publish=publish,
                            quotes=quotes, population=Population.of(settings))
    try:
        since = None if first is None else compute_since(
            cells.aggregates, first, months[-1], taxonomy, settings.map_within_days(),
            timescales(settings))
    except (ValueError, OSError, RuleError) as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    if snapshot is not None:
        return _changed(args, snapshot, report, since, as_at)
    if publish:
        try:
            _keep(report, since, as_at, settings)
        except OSError as exc:  # nothing published without its snapshot
            print(f"report: cannot keep the published figures in "
                  f"{settings.published_dir}: {exc}", file=sys.stderr)
            return 2
    return _write(args, annotate(render(report, args.format), args.format, as_at, since,
                                 publish))


def read_quotes(settings: Settings, months: list[str], taxonomy: Taxonomy,
                timeout: float) -> tuple[Quote, ...]:
    """Section 6's quotes, or none (said on stderr, by error type only) if the topics
    cannot be read: the figures do not depend on them."""
    try:
        return asyncio.run(fetch_quotes(settings, months, taxonomy, timeout))
    except (KafkaError, OSError, TimeoutError) as exc:
        print(f"report: section 6's quotes left out, the feedback topics cannot be read "
              f"({type(exc).__name__})", file=sys.stderr)
        return ()


def snapshot_definitions(saved: Mapping[str, Any], settings: Settings) -> ReportDefinitions:
    """The definitions a snapshot was published under."""
    basis: DayBasis = "calendar" if saved["day_basis"] == "calendar" else "working"
    return ReportDefinitions(float(saved["service_level_seconds"]),
                             ServiceLevelVariant(saved["service_level_variant"]),
                             float(saved["short_abandon_seconds"]),
                             PeriodCombination(saved["period_combination"]), basis,
                             settings.timeliness_target_percent)


def timescales(settings: Settings) -> dict[str, float]:
    """Working-day timescales of the rules the running totals judge (latest versions)."""
    rules = load_rules(settings.rules_path, settings.timezone)
    return {name: rules[name].timescale for name in RULE_SHARES if name in rules}


def _published_json(report: Report, since: Since | None, as_at: DataAsAt) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(annotate(render(report, "json"), "json", as_at, since,
                                                True))
    return doc


def _keep(report: Report, since: Since | None, as_at: DataAsAt, settings: Settings) -> None:
    doc = _published_json(report, since, as_at)
    snapshot = publication.Snapshot(report.months, {k: v for k, v in doc["definitions"].items()
                                                    if k != "percentile_method"},
                                    since.first if since else None, as_at,
                                    publication.figures_of(doc))
    path = publication.save(snapshot, settings.published_dir)
    print(f"report: kept the published figures in {path}", file=sys.stderr)


def _changed(args: argparse.Namespace, snapshot: publication.Snapshot, report: Report,
             since: Since | None, as_at: DataAsAt) -> int:
    now = publication.figures_of(_published_json(report, since, as_at))
    topics = {family: spec.name for family, spec in event_families(load_topics()).items()}
    found = publication.changes(snapshot, now, as_at, topics)
    show = publication.changes_json if args.format == "json" else publication.changes_text
    return _write(args, show(args.since_published, snapshot, as_at, found))


def _write(args: argparse.Namespace, text: str) -> int:
    output: Path | None = args.output
    if output is None and args.format == "html" and args.since_published is None:
        output = DEFAULT_HTML
    if output is None:
        sys.stdout.write(text)
        return 0
    output.write_text(text, encoding="utf-8")
    print(f"report: wrote {output}", file=sys.stderr)
    return 0
