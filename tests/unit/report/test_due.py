"""``due``: the morning list is complete, or refused, or printed marked PARTIAL.

Workers are canned ``/due`` answers on a loopback HTTP server; the catalogue's real
topics and partition counts are what they must cover (the integration test
``tests/faults/test_due_workers.py`` does it with real workers and a broker).
"""

from __future__ import annotations

import json

import pytest

from stream.contract.topics import event_families, load_topics
from stream.report.due import (
    Stale,
    add_arguments,
    merge,
    refusal,
    render_json,
    render_table,
    run_due,
)
from stream.report.workers import Gaps, gaps
from stream.settings import Settings
from tests.unit.report.conftest import ALL_PARTITIONS as ALL
from tests.unit.report.conftest import CannedWorkers, dead_url, parse_args

CONTACTS = next(spec.name for f, spec in event_families(load_topics()).items()
                if f == "contacts")


def item(deadline: str, key: str, rule: str = "contact_decision") -> dict[str, object]:
    return {"deadline": deadline, "state": "due_today", "working_hours_left": 2.5,
            "rule": rule, "team": "rfs", "key": key}


def due_body(owned: list[tuple[str, int]], items: list[dict[str, object]],
             recovering: bool = False, fingerprint: str = "f1",
             stale: dict[str, int] | None = None) -> dict[str, object]:
    return {"now": "2026-12-03T09:00:00+00:00", "owned": [list(tp) for tp in owned],
            "recovering": recovering, "fingerprint": fingerprint, "items": items,
            "horizon_workdays": 20.0, "stale": stale or {"contact_decision": 0}}


def due(argv: list[str], settings: Settings | None = None) -> int:
    return run_due(parse_args(add_arguments, argv), settings or Settings())


def test_merge_keeps_the_first_due_over_every_worker() -> None:
    a = [item("2026-12-03T10:00", "a1"), item("2026-12-05T10:00", "a2")]
    b = [item("2026-12-04T10:00", "b1"), item("2026-12-03T10:00", "b0", rule="a_rule")]
    assert [i["key"] for i in merge([a, b], 3)] == ["b0", "a1", "b1"]


def test_partial_rendering_names_what_is_missing_at_the_top() -> None:
    found = Gaps(missing={"cspa.contacts": [1, 4]}, unreachable=["http://w3 (timed out)"])
    lines = render_table([item("2026-12-03T10:00", "k1")], found).splitlines()
    assert lines[0] == "PARTIAL: missing partitions: cspa.contacts[1], cspa.contacts[4]"
    assert lines[1] == "PARTIAL: workers not answering: http://w3 (timed out)"
    assert lines[2].startswith("deadline") and lines[3].endswith(" k1")
    assert not render_table([], Gaps()).startswith("PARTIAL")
    doc = json.loads(render_json([], found))
    assert doc["complete"] is False and doc["missing"] == [["cspa.contacts", 1],
                                                           ["cspa.contacts", 4]]
    assert json.loads(render_json([], Gaps()))["complete"] is True


def test_refusal_is_one_line_naming_partitions() -> None:
    text = refusal(gaps([], ["http://w (URLError: refused)"], {"t": 2}))
    assert "\n" not in text
    assert "missing partitions: t[0], t[1]" in text and "--partial" in text


def test_complete_list_from_two_workers(workers: CannedWorkers,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    half = len(ALL) // 2
    workers.due["a"] = due_body(ALL[:half], [item("2026-12-04T10:00", "a1")])
    workers.due["b"] = due_body(ALL[half:], [item("2026-12-03T10:00", "b1")])
    assert due(["--workers", f"{workers.url('a')},{workers.url('b')}", "--limit", "7"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("deadline") and out[1].endswith(" b1") and out[2].endswith(" a1")
    assert all(path.endswith("/due?limit=7") for path in workers.asked)


def test_a_missing_partition_refuses_and_partial_marks_it(
        workers: CannedWorkers, capsys: pytest.CaptureFixture[str]) -> None:
    gone = (CONTACTS, 1)
    workers.due["a"] = due_body([tp for tp in ALL if tp != gone],
                                   [item("2026-12-03T10:00", "a1")])
    assert due(["--workers", workers.url("a")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert f"missing partitions: {CONTACTS}[1]" in captured.err
    assert due(["--workers", workers.url("a"), "--partial"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"PARTIAL: missing partitions: {CONTACTS}[1]"
    assert out[-2].endswith(" a1")


def test_recovering_or_differently_judged_workers_refuse(
        workers: CannedWorkers, capsys: pytest.CaptureFixture[str]) -> None:
    half = len(ALL) // 2
    workers.due["a"] = due_body(ALL[:half], [])
    workers.due["b"] = due_body(ALL[half:], [], recovering=True)
    workers.due["c"] = due_body(ALL[half:], [], fingerprint="other")
    urls = [workers.url(n) for n in "abc"]
    assert due(["--workers", f"{urls[0]},{urls[1]}"]) == 2
    assert f"workers still recovering or rebalancing: {urls[1]}" in capsys.readouterr().err
    assert due(["--workers", f"{urls[0]},{urls[2]}"]) == 2
    assert (f"(fingerprints differ): {urls[0]} vs {urls[2]}") in capsys.readouterr().err


def test_unreachable_worker_is_one_line_and_workers_come_from_settings(
        workers: CannedWorkers, capsys: pytest.CaptureFixture[str]) -> None:
    dead = dead_url()
    workers.due["a"] = due_body(ALL, [item("2026-12-03T10:00", "a1")])
    assert due(["--timeout", "2"], Settings(workers=f"{workers.url('a')},{dead}")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"workers not answering: {dead} (URLError: [Errno 111] Connection refused)" in err
    assert due([], Settings(workers=workers.url("a"))) == 0  # CSPA_WORKERS alone
    assert capsys.readouterr().out.splitlines()[-2].endswith(" a1")
    assert due(["--workers", workers.url("a")], Settings(workers=dead)) == 0  # the flag wins
    assert due([], Settings(workers=" , ")) == 2
    assert "CSPA_WORKERS: no worker URL given" in capsys.readouterr().err


def test_stale_counts_are_summed_over_workers_under_the_list(
        workers: CannedWorkers, capsys: pytest.CaptureFixture[str]) -> None:
    half = len(ALL) // 2
    workers.due["a"] = due_body(ALL[:half], [item("2026-12-04T10:00", "a1")],
                                   stale={"contact_decision": 3, "map_enquiry": 0})
    workers.due["b"] = due_body(ALL[half:], [],
                                   stale={"contact_decision": 1, "map_enquiry": 2})
    urls = f"{workers.url('a')},{workers.url('b')}"
    assert due(["--workers", urls]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].endswith(" a1")
    assert out[2] == ("stale: 6 open items past the deadline by more than 20 working days "
                      "(contact_decision 4, map_enquiry 2; not listed: see due --stale)")
    assert all(path.endswith("/due?limit=50") for path in workers.asked)
    assert due(["--workers", urls, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["stale"] == {"contact_decision": 4, "map_enquiry": 2}
    assert doc["stale_total"] == 6 and doc["horizon_workdays"] == 20.0


def test_stale_asks_the_workers_for_their_stale_items(
        workers: CannedWorkers, capsys: pytest.CaptureFixture[str]) -> None:
    workers.due["a"] = due_body(ALL, [item("2024-01-04T10:00", "old")],
                                   stale={"contact_decision": 1})
    assert due(["--workers", workers.url("a"), "--stale", "--limit", "9"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].endswith(" old") and "(contact_decision 1; listed above)" in out[2]
    assert workers.asked[-1].endswith("/due?limit=9&stale=1")


def test_no_stale_items_is_said_too() -> None:
    stale = Stale({"contact_decision": 0}, 20.0)
    assert render_table([], Gaps(), stale).splitlines()[-1] == (
        "stale: 0 open items past the deadline by more than 20 working days")


def test_a_worker_without_stale_counts_is_unreadable(
        workers: CannedWorkers, capsys: pytest.CaptureFixture[str]) -> None:
    body = due_body(ALL, [])
    del body["stale"]  # a worker from before the horizon: its list would hold stale items
    workers.due["a"] = body
    assert due(["--workers", workers.url("a")]) == 2
    assert "(unreadable due list)" in capsys.readouterr().err


def test_a_partner_request_names_the_agency_to_chase() -> None:
    partner = {**item("2026-12-03T11:00", "e1", rule="partner_response"), "agency": "camhs"}
    lines = render_table([item("2026-12-03T10:00", "k1"), partner], Gaps()).splitlines()
    assert lines[1].endswith(" k1") and lines[2].endswith(" e1 (camhs)")
