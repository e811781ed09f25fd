"""tools/coverage_summary.py: per-package counts from a `coverage json` report."""

from tools.coverage_summary import Tally, package_of, tally


def _file(statements, covered, branches, covered_branches):
    return {"summary": {"num_statements": statements, "covered_lines": covered,
                        "num_branches": branches, "covered_branches": covered_branches}}


def test_a_subpackage_groups_its_files_and_a_top_level_module_stands_alone():
    assert package_of("stream/worker/batches.py") == "stream/worker"
    assert package_of("stream/worker/deep/more.py") == "stream/worker"
    assert package_of("stream/cli.py") == "stream/cli.py"


def test_counts_are_summed_per_package_and_the_total_weighs_statements_and_branches():
    packages = tally({"stream/worker/a.py": _file(10, 8, 4, 1),
                      "stream/worker/b.py": _file(30, 30, 6, 6),
                      "stream/cli.py": _file(5, 0, 2, 0)})
    assert packages["stream/worker"] == Tally(40, 38, 10, 7)
    assert packages["stream/cli.py"] == Tally(5, 0, 2, 0)
    # (38 + 7) of (40 + 10): coverage's own total, not the mean of two percentages
    assert packages["stream/worker"].line("w").split()[1:] == [
        "40", "95.0%", "10", "70.0%", "90.0%"]


def test_a_report_measured_without_branches_still_adds_up():
    assert tally({"stream/cli.py": {"summary": {"num_statements": 4, "covered_lines": 1}}}
                 ) == {"stream/cli.py": Tally(4, 1, 0, 0)}
