"""The throughput pairs' summary and verdict: ahead only when the worker wins every pair."""

from __future__ import annotations

import pytest

from bench import pairs, report


def _runs(*rates: float) -> list[dict]:
    return [{"events_per_s": r, "exact": True} for r in rates]


def test_each_side_and_the_ratio_get_a_median_and_a_range():
    out = pairs.summary(_runs(30_000, 24_000, 27_000), _runs(20_000, 16_000, 30_000), 5.0)
    assert out["worker"] == {"median": 27_000, "min": 24_000, "max": 30_000}
    assert out["quix"] == {"median": 20_000, "min": 16_000, "max": 30_000}
    # ratios per pair: 1.5, 1.5, 0.9 (not the ratio of the medians, 1.35)
    assert out["ratio"]["median"] == pytest.approx(1.5)
    assert out["ratio"]["min"] == pytest.approx(0.9)
    assert out["won"] == 2
    assert [p["worker"] for p in out["pairs"]] == [30_000, 24_000, 27_000]  # order kept


def test_without_the_peer_only_the_worker_is_summarised():
    out = pairs.summary(_runs(1.0, 3.0, 2.0), [], 0.5)
    assert out["worker"]["median"] == 2.0 and "ratio" not in out and "won" not in out


@pytest.mark.parametrize(("ratio", "won", "met"), [
    (2.0, 3, True),    # ahead in every pair, median over the target
    (2.0, 2, False),   # a lost pair: not ahead, whatever the median
    (1.2, 3, False),   # ahead in every pair, median under 1.5x
])
def test_the_ratio_meets_its_target_only_ahead_in_every_pair(ratio, won, met):
    verdict = report.verdicts({"ratio_to_quix": ratio, "worker_pairs_won": float(won)})
    assert verdict["ratio_to_quix"]["met"] is met
    assert verdict["worker_pairs_won"]["met"] is (won == 3)
    if not met:
        assert ("not ahead" in verdict["ratio_to_quix"]["miss"]) is (won < 3)


def test_the_report_keeps_the_bench_pair_count():
    assert report.PAIRS == pairs.PAIRS


def test_the_peer_without_the_contract_check_gets_its_own_ratio_beside_the_verdict():
    out = pairs.summary(_runs(30_000, 24_000, 27_000), _runs(20_000, 16_000, 30_000), 5.0,
                        _runs(40_000, 30_000, 27_000))
    # ratios per run: 0.75, 0.8, 1.0; the verdict stays the checked peer's
    assert out["ratio_plain"]["median"] == pytest.approx(0.8)
    assert out["ratio_plain"]["max"] == pytest.approx(1.0)
    assert out["quix_plain"] == {"median": 30_000, "min": 27_000, "max": 40_000}
    assert out["won"] == 2 and out["quix_plain_exact"] is True


def test_an_inexact_plain_peer_is_said():
    plain = [{"events_per_s": 1.0, "exact": True}, {"events_per_s": 1.0, "exact": False}]
    out = pairs.summary(_runs(2.0, 2.0), _runs(1.0, 1.0), 5.0, plain)
    assert out["quix_plain_exact"] is False and out["quix_exact"] is True


def test_the_peer_doing_the_whole_work_gets_its_ratio_and_pairs_won_beside():
    out = pairs.summary(_runs(30_000, 24_000, 27_000), _runs(20_000, 16_000, 30_000), 5.0,
                        _runs(40_000, 30_000, 27_000), _runs(20_000, 25_000, 18_000))
    # ratios per run: 1.5, 0.96, 1.5; pairs won against it counted apart from the verdict's
    assert out["ratio_whole"]["median"] == pytest.approx(1.5)
    assert out["ratio_whole"]["min"] == pytest.approx(0.96)
    assert out["won_whole"] == 2 and out["won"] == 2
    assert out["quix_whole"] == {"median": 20_000, "min": 18_000, "max": 25_000}
    assert out["quix_whole_exact"] is True and out["ratio_plain"]["median"] == pytest.approx(0.8)


def test_the_whole_peer_shows_in_the_pairs_section_and_the_figures():
    tp = pairs.summary(_runs(30_000, 24_000, 27_000), _runs(20_000, 16_000, 30_000), 5.0,
                       _runs(40_000, 30_000, 27_000), _runs(20_000, 25_000, 18_000))
    lines = report.pairs_markdown({"phases": {"throughput": tp},
                                   "machine": {"cpu": "x", "nproc": 2}})
    text = "\n".join(lines)
    assert "worker / it 1.50x (0.96x-1.50x), worker ahead in 2 of 3" in text
    for name in ("quix_whole_events_per_s", "ratio_to_quix_whole", "worker_pairs_won_whole",
                 "quix_whole_exact"):
        assert name in report.FIGURES
