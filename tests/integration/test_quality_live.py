"""Quality assurance beyond grades on a real broker, a real worker and the real report CLI.

The audits topic's share of the generated data (tests/reportgen, ``quality=True``): audits,
some naming their advisor, learning reviews, dip samples, and advisors joining, moving and
leaving teams, sent in a shuffled order with re-deliveries. The worker's clock says Monday
25 November 2019, noon: 5 working days of November are left. The test works out by itself,
from the events it sent (reportgen's plain fold), which advisors are in post and not yet
audited in November, and the whole of report section 5; ``/metrics`` and ``python -m stream
report`` must say the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import tests.reportgen as rg
from tests.integration.harness import WorkerProcess, total, wait_for
from tests.integration.reporting import Pipeline, pipeline

pytestmark = pytest.mark.integration

MONTHS = "2019-07..2019-11"
NOW = "2019-11-25T12:00:00+00:00"
QA_TABLES = ("qa_activity", "audit_coverage", "audits_")


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pipeline, rg.Dataset]]:
    tmp = tmp_path_factory.mktemp("quality-live")
    clock = Path(tmp) / "clock.txt"
    clock.write_text(NOW + "\n")
    full = rg.generate(contacts=0, emails=0, calls=0, enquiries=0, audits=30, quality=True)
    data = rg.Dataset([m for m in full.messages if m.topic == rg.TOPICS["audits"]])
    with pipeline(tmp, CSPA_CLOCK_FILE=str(clock)) as p:
        p.send(data.messages)
        yield p, data


def unaudited_by_hand(facts: rg.Facts, month: str) -> dict[str, int]:
    """Advisors in post at the end of ``month`` with no audit naming them in it."""
    audited = {key for m, key in facts.audited if m == month}
    out = dict.fromkeys(rg.codes("team"), 0)
    for key, joined, team, left in facts.advisors:
        if joined <= month and (left is None or left > month) and key not in audited:
            out[team] += 1
    return out


def test_unaudited_advisors_and_working_days_left(loaded) -> None:
    p, data = loaded
    want = unaudited_by_hand(rg.facts_of(data), "2019-11")
    assert sum(want.values()) > 0  # the alert's condition holds: something to see

    def observed(worker: WorkerProcess) -> dict[str, float]:
        s = worker.samples()
        return {team: total(s, "cspa_advisors_unaudited", team=team) for team in want}

    wait_for(lambda: observed(p.worker) == want, 60, "unaudited advisors")
    assert total(p.worker.samples(), "cspa_month_working_days_left") == 5  # 25-29 Nov


def test_activity_metrics_equal_the_events_sent(loaded) -> None:
    p, data = loaded
    facts, s = rg.facts_of(data), p.worker.samples()
    assert total(s, "cspa_learning_reviews") == len(facts.reviews)
    assert total(s, "cspa_dip_sample_cases_count") == len(facts.dips)
    assert total(s, "cspa_dip_sample_cases_sum") == sum(n for _, n in facts.dips)


def test_report_section_5_equals_ground_truth(loaded) -> None:
    p, data = loaded
    doc = p.report_json(MONTHS)
    got = {k: v for k, v in rg.flatten(doc).items() if k[0].startswith(QA_TABLES)}
    want = {k: v for k, v in rg.expected_report(rg.facts_of(data), rg.MONTHS).items()
            if k[0].startswith(QA_TABLES)}
    assert {k[0] for k in want} >= {"qa_activity", "audit_coverage"}
    assert set(got) == set(want)
    assert [k for k in want if rg.mismatch(got[k], want[k])] == []
    text = p.report(MONTHS, "text")
    assert "Learning reviews and dip samples" in text
    assert "Advisors in post audited in the month (%)" in text
