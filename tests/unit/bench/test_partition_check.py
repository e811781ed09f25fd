"""The partition check's bench replays every event once a round, as the fetcher hands it over."""

from __future__ import annotations

import json

from bench import dataset
from bench.partition_check import fetched, main, runs
from stream.contract.partitioner import partition_of
from stream.contract.topics import event_families, load_topics


def test_runs_hold_every_event_once_in_its_contract_partition() -> None:
    msgs = dataset.backlog(1000)
    work = runs(msgs, 100)
    partitions = {s.name: s.partitions for s in event_families(load_topics()).values()}
    offsets = sorted(o for *_, run in work for o, _ in run)
    assert offsets == list(range(len(msgs)))
    for _, topic, partition, run in work:
        assert len(run) <= 100
        assert {partition_of(m.key, partitions[topic]) for _, m in run} == {partition}


def test_a_fetched_batch_has_records_of_its_own() -> None:
    msgs = dataset.backlog(500)
    run = runs(msgs, 50)[0]
    batch = fetched(run)
    assert [(r.offset, r.key, r.value) for r in batch.records] == \
        [(o, m.key, m.value) for o, m in run[3]]
    assert all(r.key is not m.key for r, (_, m) in zip(batch.records, run[3], strict=True))
    assert (batch.tp.topic, batch.tp.partition) == run[1:3]


def test_the_bench_reports_each_share(capsys) -> None:
    assert main(["--events", "1000", "--batch", "200", "--rounds", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["compiled"] is True and out["events"] == 1000  # the worker's own check
    assert out["median_check_over_apply"] >= 0 and out["median_python_check_over_apply"] >= 0
