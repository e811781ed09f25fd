"""SIGKILL the worker again and again during a 200,000-event replay: nothing lost, nothing twice.

Everything is produced up front, then one worker consumes it and is killed
(SIGKILL, no clean shutdown) at random moments while consumption is still in
progress, and restarted each time. At the end every figure equals the
independent ground truth and every bad message was dead-lettered.

What makes it hold is in ``stream/state/progress.py`` (progress markers in the state) and
``stream/worker/batches.py`` (the consumer moved to them after every assignment; batches
fetched across a seek dropped and read again). The worker's log and counters say how
often each of those acted; the figures go to ``results/reliability.json``.

Repeat contacts and re-referrals ride the same kills: the contacts agent hops each
contact naming a child to the repartition topic in its batch's changelog flight, and the
children table folds the hops with its own markers (``stream/worker/rekey.py``). A kill
lands between a hop and its fold whenever hops are in flight or on the topic unfolded (the
hop topic's lag is recorded at each kill); the figures ``cspa_child_contacts`` and
``cspa_child_referrals`` must still equal the ground truth: no contact lost or counted
twice although a re-read batch sends its hops again.

The kills come at random points of *progress* (kill i once the worker's own lag has
fallen below a random share of the backlog, about (KILLS - i) / (KILLS + 1) of it), not
of wall time: a restart's recovery time varies, and a fast worker would otherwise finish
the replay before the last kill.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from datetime import date, timedelta

import pytest

from stream.cli import ensure_topics
from stream.settings import Settings
from tests.faults.conftest import (
    b64,
    backlog,
    commit_backlog,
    counted,
    differences,
    read_deadletter,
    wait_caught_up,
    write_result,
)
from tests.groundtruth import TOPICS, expected, generate
from tests.integration.harness import WorkerProcess, produce_sync, total, wait_for
from tests.integration.test_pipeline import assert_figures_match

pytestmark = [pytest.mark.integration, pytest.mark.faults]

SEED = 20_190_801
KILLS = 5
#: Event times must be recent: Kafka's time retention (2 years on the event topics) goes
#: by the record timestamp, which is occurred_at, so older events would be deleted by
#: the broker minutes after they were produced (see the report).
RECENT = date.today() - timedelta(days=430)
#: counters carried over killed incarnations (a killed process takes its own along)
REKEY = TOPICS["children"]
COUNTERS = {"duplicates": "cspa_events_duplicate_total",
            "rejected": "cspa_events_rejected_total",
            "refetches": "cspa_refetches_total",
            "stale_batches": "cspa_stale_batches_total",
            "hops_sent": "cspa_hops_sent_total"}


def _scrape(worker: WorkerProcess, last: dict[str, float]) -> None:
    """Remember this incarnation's latest counters (a killed process takes them along)."""
    try:
        samples = worker.pipeline_samples()
    except OSError:
        return
    for key, metric in COUNTERS.items():
        last[key] = total(samples, metric)


def _consuming(worker: WorkerProcess) -> bool:
    """Whether it has consumed anything yet (a dead worker fails: see ``check_alive``)."""
    return total(worker.pipeline_samples(), "cspa_events_consumed_total") > 0


def _lag(worker: WorkerProcess) -> float | None:
    """The worker's own lag; None for a slow answer (a checkpoint pauses its event loop)."""
    try:
        return total(worker.pipeline_samples(), "cspa_consumer_lag")
    except OSError:  # a dead worker fails instead: see ``check_alive``
        return None


def _exported(samples: dict, names: Iterable[str]) -> set[str]:
    """The metrics among ``names`` that have a sample (a renamed one would read as 0)."""
    return {n for n in names if any(key[0] == n for key in samples)}


def _loaded(log: str) -> bool:
    return "checkpoint loaded" in log


def test_sigkill_during_replay_loses_nothing_and_counts_nothing_twice(broker, workers, tmp_path):
    started = time.monotonic()
    ds = generate(seed=SEED, start=RECENT, days=400, contacts=46_000, calls=72_000,
                  enquiries=9_000, audits=2_000, bad=60)
    assert len(ds.messages) >= 200_000
    truth = expected(ds)
    assert total(truth, "cspa_child_contacts", repeat="yes") > 1000  # repeats are tested
    assert total(truth, "cspa_child_referrals", re_referral="yes") > 100
    bad_values = {m.value for m in ds.messages if m.key == b"bad"}
    assert len(bad_values) == ds.bad

    ensure_topics(Settings(broker=broker.bootstrap))
    sent = produce_sync(broker.bootstrap, ds.messages)
    assert sent == len(ds.messages)
    produced = time.monotonic()
    print(f"\nproduced {sent} events in {produced - started:.0f}s")

    # Checkpoints every 0.5 s: restarts resume from one and read the changelogs' tail
    # (the worker is killed a few seconds after each recovery).
    worker = WorkerProcess(broker.bootstrap, tmp_path / "w1",
                           env={"CSPA_CHECKPOINT_SECONDS": "0.5"})
    workers.append(worker)
    worker.start()
    rng = random.Random(SEED)
    kills = restarts = 0
    ready_in: list[float] = []
    carried = dict.fromkeys(COUNTERS, 0.0)  # counters of killed incarnations
    checkpoint = worker.workdir / "data" / "checkpoint-cspa.pickle"
    #: per restart: (a checkpoint file was there at the kill, that incarnation's log)
    resumed: list[tuple[bool, int]] = []
    hop_lag_at_kills: list[float] = []  # hops on the topic not yet folded, at each kill
    for i in range(KILLS):
        last = dict.fromkeys(COUNTERS, 0.0)
        wait_for(lambda: _consuming(worker), 120, f"incarnation {i + 1} consuming")
        if i == 0:  # at least one restart has a checkpoint to resume from
            wait_for(checkpoint.exists, 120, "the first checkpoint written")
        target = sent * (KILLS - i) / (KILLS + 1) * rng.uniform(0.85, 1.0)
        # /metrics/pipeline, not /metrics: a full scrape of this state takes long enough
        # for the worker to run past the kill point between two polls.
        deadline = time.monotonic() + 600
        while (lag := _lag(worker)) is None or lag > target:
            assert time.monotonic() < deadline, f"lag still {lag} > {target:.0f} after " \
                f"600s before kill {i + 1}: {worker.log_tail()}"
            _scrape(worker, last)
            time.sleep(0.02)
        _scrape(worker, last)
        try:
            hop_lag_at_kills.append(total(worker.pipeline_samples(), "cspa_consumer_lag",
                                          topic=REKEY))
        except OSError:
            hop_lag_at_kills.append(-1.0)
        assert lag > 0, f"consumption finished before kill {i + 1}: make the replay longer"
        worker.kill()
        resumed.append((checkpoint.exists(), worker.log_path.stat().st_size))
        uncommitted = backlog(broker.bootstrap)
        kills += 1
        print(f"kill {kills}: {lag:.0f} messages not yet processed ({uncommitted} not "
              f"committed), {time.monotonic() - produced:.0f}s after the start")
        carried = {k: carried[k] + last[k] for k in carried}
        t0 = time.monotonic()
        final_start = time.time()
        worker.start()
        restarts += 1
        ready_in.append(round(time.monotonic() - t0, 1))
        print(f"restart {restarts}: ready in {ready_in[-1]}s")

    wait_caught_up(worker, timeout=400)
    samples = worker.samples()
    stalled = commit_backlog(broker.bootstrap, 30)
    seconds = time.monotonic() - started
    lost, double = counted(samples, truth)
    log_bytes = worker.log_path.read_bytes()
    log = log_bytes.decode(errors="replace")
    rebuilds = log.count("figures rebuilt")
    duplicates = carried["duplicates"] + total(samples, "cspa_events_duplicate_total")

    # Rejections: every bad message is on the dead-letter topic (deduplicated by its
    # source offset: a replay after a crash may dead-letter it again), and the last
    # incarnation's counter equals what it dead-lettered itself (a counter is per process).
    dead = [d for d in read_deadletter(broker.bootstrap, ds.bad, timeout=60)
            if d["source_topic"] == "cspa.contacts.v1"]
    by_offset = {(d["partition"], d["offset"]): d for d in dead}
    by_last = sum(1 for d in dead if d["rejected_at"] >= final_start)
    rejected_now = total(samples, "cspa_events_rejected_total")

    write_result("reliability.json", {
        "events_replayed": len(ds.messages), "kills": kills, "restarts": restarts,
        "restart_seconds": ready_in,
        "rebalances": rebuilds // 4, "figure_rebuild_lines": rebuilds,
        "restarts_from_checkpoint": log.count("checkpoint loaded"),
        "resume_seeks_back": log.count("(back)"), "resume_seeks_forward": log.count("(forward)"),
        "refetches": int(carried["refetches"] + total(samples, "cspa_refetches_total")),
        "stale_batches_dropped": int(carried["stale_batches"]
                                     + total(samples, "cspa_stale_batches_total")),
        "duplicates_counted": int(duplicates),
        "duplicates_in_dataset": len(ds.messages) - ds.bad - len(
            {m.value for m in ds.messages if m.key != b"bad"}),
        "bad_messages": ds.bad, "deadlettered_distinct": len(by_offset),
        "deadlettered_records": len(dead),
        "rejected_counter_last_incarnation": int(rejected_now),
        "rejected_counter_sum_over_incarnations": int(carried["rejected"] + rejected_now),
        "events_lost": lost, "events_double_counted": double,
        "hops_sent_over_incarnations": int(carried["hops_sent"]
                                           + total(samples, "cspa_hops_sent_total")),
        "hop_lag_at_kills": hop_lag_at_kills,
        "child_contacts": int(total(samples, "cspa_child_contacts")),
        "child_contacts_truth": int(total(truth, "cspa_child_contacts")),
        "seconds": round(seconds, 1), "commit_stalled_partitions": stalled,
    })
    assert {b64(d["value_b64"]) for d in by_offset.values()} == bad_values
    assert len(by_offset) == ds.bad
    assert {d["reason"] for d in dead} == {"invalid_json"}
    assert rejected_now == by_last, (rejected_now, by_last, len(dead))
    assert (lost, double) == (0, 0), differences(samples, truth)
    assert_figures_match(samples, truth)
    assert kills >= 5 and restarts == kills, (kills, restarts)
    # Every restart that found a checkpoint file resumed from it (the first one always
    # finds one: the first kill waits for it).
    sections = [log_bytes[start:end].decode(errors="replace") for (_, start), end in
                zip(resumed, [s for _, s in resumed[1:]] + [len(log_bytes)], strict=True)]
    assert resumed[0][0]
    for n, ((had, _), section) in enumerate(zip(resumed, sections, strict=True), 1):
        assert _loaded(section) or not had, f"restart {n} ignored its checkpoint: {section[-3000:]}"
    # The counters recorded above are exported (a renamed one would read as 0 throughout).
    assert _exported(samples, COUNTERS.values()) == set(COUNTERS.values())
    # Kafka's own lag tools agree with the worker: the group's commits followed the
    # progress markers to the end of every partition.
    assert stalled == {}, stalled
