"""Importer corrections on a real broker and worker (issue 25, point 5).

A contacts export whose mapping names a "Last modified" column: the first import counts
the rows as they were; re-importing the same export changes nothing; a corrected export
(one decision re-recorded three days later) moves that decision to its corrected outcome
and pathway; re-importing the older export afterwards changes nothing either. The figures
expected are written out by hand from the rows below.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.integration.harness import consumed, wait_for
from tests.integration.reporting import Pipeline, pipeline, run_cli
from tests.reportgen import ROOT

pytestmark = pytest.mark.integration

HEADER = ("Child ID,Date of contact,Contact source,Contact method,Outcome,Outcome date,"
          "Actual outcome,Last modified\n")
ROWS = [  # all received and decided on Monday 4 November 2019
    "972732,04/11/2019 09:37,Police,Email,Level 1,04/11/2019 15:15,Information,"
    "04/11/2019 15:20",
    "268397,04/11/2019 10:53,Schools,Telephone,Level 1,04/11/2019 16:18,Information,"
    "04/11/2019 16:30",
    "890348,04/11/2019 11:58,Police,Email,MAP,04/11/2019 14:44,MAP Enquiry,"
    "04/11/2019 14:50",
]
# The first row's decision re-recorded on Thursday as a MAP enquiry.
CORRECTED = [ROWS[0].replace("Level 1", "MAP").replace("Information", "MAP Enquiry")
             .replace("04/11/2019 15:20", "07/11/2019 14:00"), *ROWS[1:]]


@pytest.fixture(scope="module")
def p(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    with pipeline(tmp_path_factory.mktemp("corrections")) as running:
        yield running


def import_rows(p: Pipeline, name: str, rows: list[str]) -> int:
    export, mapping, key = p.tmp / f"{name}.csv", p.tmp / "versions.toml", p.tmp / "key"
    export.write_text(HEADER + "\n".join(rows) + "\n")
    mapping.write_text((ROOT / "topics" / "mappings" / "annex_a_contacts.toml").read_text()
                       .replace("[columns]\n", '[columns]\nrecorded_at = "Last modified"\n'))
    key.write_text("5e" * 32)
    before = consumed(p.worker)
    done = run_cli(["import", str(export), "--mapping", str(mapping), "--key-file", str(key)],
                   CSPA_BROKER=p.broker.bootstrap)
    assert done.returncode == 0, done.stderr[-2000:]
    match = re.search(r"; (\d+) events out in", done.stderr)
    assert match, done.stderr[-2000:]
    sent = int(match.group(1))
    wait_for(lambda: consumed(p.worker) >= before + sent, 120, f"{name} consumed")
    p.settled()
    return sent


def figures(p: Pipeline) -> dict[str, dict[tuple[str, ...], int]]:
    out: dict[str, dict[tuple[str, ...], int]] = {}
    for figure, labels, (count, _, _) in p.worker.get_json("/cells")["cells"]:
        if count:
            out.setdefault(figure, {})[tuple(labels)] = count
    return out


def test_a_corrected_export_replaces_the_version_and_the_same_export_changes_nothing(p):
    assert import_rows(p, "monday", ROWS) == 6
    first = figures(p)
    assert first["contacts_received"] == {("2019-11", "email", "police", "rfs"): 2,
                                          ("2019-11", "phone", "schools", "rfs"): 1}
    assert first["contacts_decided"] == {("2019-11", "level_1"): 2, ("2019-11", "map"): 1}
    assert first["contact_completion_working_days"] == {
        ("2019-11", "police", "information"): 1, ("2019-11", "schools", "information"): 1,
        ("2019-11", "police", "map_enquiry"): 1}

    import_rows(p, "monday-again", ROWS)
    assert figures(p) == first

    import_rows(p, "thursday", CORRECTED)
    corrected = figures(p)
    assert corrected["contacts_received"] == first["contacts_received"]
    assert corrected["contacts_decided"] == {("2019-11", "level_1"): 1, ("2019-11", "map"): 2}
    assert corrected["contact_completion_working_days"] == {
        ("2019-11", "schools", "information"): 1, ("2019-11", "police", "map_enquiry"): 2}

    import_rows(p, "monday-late", ROWS)  # the older export again: the later version stays
    assert figures(p) == corrected
