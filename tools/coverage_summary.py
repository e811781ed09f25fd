"""Print the branch coverage of stream/ per package, and fail below the floor.

Run by `make test` after `coverage combine`: reads the combined data named by
``[tool.coverage.run] data_file`` in pyproject.toml, writes ``coverage.json``
beside it, prints one line per package of ``stream/`` (a top-level module such as
``stream/settings.py`` is its own line) and the total, and exits 2, as
``coverage report`` does, when the total is below ``[tool.coverage.report]
fail_under``. The total is coverage's own figure: covered statements and branches
over all statements and branches.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import coverage
from coverage.results import should_fail_under


@dataclass
class Tally:
    """Statement and branch counts of one package, summed over its files."""

    statements: int = 0
    covered_lines: int = 0
    branches: int = 0
    covered_branches: int = 0

    def add(self, summary: dict[str, int]) -> None:
        self.statements += summary["num_statements"]
        self.covered_lines += summary["covered_lines"]
        self.branches += summary.get("num_branches", 0)
        self.covered_branches += summary.get("covered_branches", 0)

    def line(self, name: str) -> str:
        return (f"{name:24} {self.statements:6} {_pct(self.covered_lines, self.statements):>7}"
                f" {self.branches:8} {_pct(self.covered_branches, self.branches):>7}"
                f" {_pct(self.covered(), self.statements + self.branches):>7}")

    def covered(self) -> int:
        return self.covered_lines + self.covered_branches


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def package_of(filename: str) -> str:
    """``stream/worker/batches.py`` -> ``stream/worker``; ``stream/cli.py`` stays itself."""
    return "/".join(Path(filename).parts[:2])


def tally(report: dict[str, dict[str, dict[str, int]]]) -> dict[str, Tally]:
    """Per-package counts from a ``coverage json`` report's ``files``."""
    packages: dict[str, Tally] = {}
    for filename, entry in sorted(report.items()):
        packages.setdefault(package_of(filename), Tally()).add(entry["summary"])
    return packages


def main() -> int:
    cov = coverage.Coverage()
    cov.load()
    out = Path(cov.config.data_file).parent / "coverage.json"
    total = cov.json_report(outfile=str(out))
    packages = tally(json.loads(out.read_text())["files"])
    print(f"\n{'branch coverage':24} {'stmts':>6} {'stmt%':>7} {'branches':>8}"
          f" {'branch%':>7} {'total%':>7}")
    whole = Tally()
    for name, counts in packages.items():
        print(counts.line(name))
        for field in ("statements", "covered_lines", "branches", "covered_branches"):
            setattr(whole, field, getattr(whole, field) + getattr(counts, field))
    print(whole.line("TOTAL"))
    floor, precision = cov.config.fail_under, cov.config.precision
    if should_fail_under(total, floor, precision):
        print(f"FAIL: total coverage {total:.{precision}f}% is below the floor of {floor}% "
              "(fail_under in pyproject.toml)")
        return 2
    print(f"total coverage {total:.{precision}f}% (floor {floor}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
