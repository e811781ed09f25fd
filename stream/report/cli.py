"""``python -m stream report``: the committee report from the running workers.

The caller (``stream.cli``) creates the sub-parser, calls ``add_arguments`` and
sets ``fn``; ``run_report`` does the rest. Exit status 0 on success, 2 when
the workers do not hold every partition exactly once (``IncompleteReport``) or
the months are malformed.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from stream.contract.taxonomy import load_taxonomy
from stream.contract.topics import event_families, load_topics
from stream.report import IncompleteReport, compute_report, fetch_cells, render
from stream.report.figures import DayBasis, ReportDefinitions
from stream.report.render import FORMATS
from stream.settings import PeriodCombination, Settings

DEFAULT_WORKERS = "http://127.0.0.1:6066"
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


def parse_workers(text: str) -> list[str]:
    urls = [u.strip() for u in text.split(",") if u.strip()]
    if not urls:
        raise argparse.ArgumentTypeError("no worker URL given")
    return urls


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The report's options (the caller sets ``fn``)."""
    parser.add_argument("--months", type=parse_months, required=True,
                        help="YYYY-MM..YYYY-MM (inclusive) or a single YYYY-MM")
    parser.add_argument("--workers", type=parse_workers, default=[DEFAULT_WORKERS],
                        help=f"every worker's base URL, comma separated (default "
                             f"{DEFAULT_WORKERS})")
    parser.add_argument("--format", choices=FORMATS, default="text", dest="format")
    parser.add_argument("--output", type=Path, default=None,
                        help=f"file to write (default stdout; html: {DEFAULT_HTML})")
    parser.add_argument("--publish", action="store_true",
                        help="for publication: suppress counts of 1-5")
    parser.add_argument("--day-basis", choices=("working", "calendar"), default="working")
    parser.add_argument("--legacy-mean-of-months", action="store_true",
                        help="period totals as the plain mean of monthly percentages "
                             "(reproduces the 2019 report)")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for each worker")


def definitions(args: argparse.Namespace, settings: Settings) -> ReportDefinitions:
    basis: DayBasis = "calendar" if args.day_basis == "calendar" else "working"
    combination = (PeriodCombination.MEAN_OF_MONTHS if args.legacy_mean_of_months
                   else settings.period_combination)
    return ReportDefinitions(settings.service_level_seconds, settings.service_level_variant,
                             settings.short_abandon_seconds, combination, basis,
                             settings.timeliness_target_percent)


def run_report(args: argparse.Namespace, settings: Settings) -> int:
    expected = {spec.name: spec.partitions for spec in event_families(load_topics()).values()}
    try:
        agg = fetch_cells(list(args.workers), expected, timeout=args.timeout)
    except IncompleteReport as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    taxonomy = load_taxonomy(settings.taxonomy_path)
    report = compute_report(agg, args.months, taxonomy, definitions(args, settings),
                            publish=args.publish)
    text = render(report, args.format)
    output: Path | None = args.output
    if output is None and args.format == "html":
        output = DEFAULT_HTML
    if output is None:
        sys.stdout.write(text)
        return 0
    output.write_text(text, encoding="utf-8")
    print(f"report: wrote {output}", file=sys.stderr)
    return 0
