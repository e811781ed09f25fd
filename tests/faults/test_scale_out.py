"""Two workers share the topics: after every rebalance, sum() over both equals the truth,
each worker equals the truth of exactly the partitions it owns (nothing stale left behind),
and when one stops the other alone equals the truth."""

from __future__ import annotations

import threading
import time
from datetime import date, timedelta

import pytest

from tests.faults.conftest import (
    PARTITIONS,
    SOURCE_TOPICS,
    counted,
    differences,
    figures_state,
    owned_truth,
    produce_tracked,
    summed,
    wait_caught_up,
    write_result,
)
from tests.groundtruth import Dataset, expected, generate
from tests.integration.harness import wait_for
from tests.integration.test_pipeline import assert_figures_match

pytestmark = [pytest.mark.integration, pytest.mark.faults]

ALL = {(t, p) for t in SOURCE_TOPICS for p in range(PARTITIONS[t])}
SCRAPES = 3


def settled(*ws):
    """The workers' owned sets once they cover every partition exactly once, none recovering."""
    def check():
        states = [figures_state(w) for w in ws]
        owned = [o for o, _ in states]
        if any(recovering for _, recovering in states):
            return None
        if sum(len(o) for o in owned) != len(ALL) or set().union(*owned) != ALL:
            return None
        return owned
    return wait_for(check, 120, "rebalance settled", interval=0.5)


def lag_of(samples):
    return sum(v for (name, _), v in samples.items() if name == "cspa_consumer_lag")


def check_split(ws, sent, places, label):
    """At several scrapes: each worker equals the truth of its partitions; the sum, all of it."""
    report = []
    for _ in range(SCRAPES):
        owned = settled(*ws)
        samples = [w.samples() for w in ws]
        if settled(*ws) != owned:  # a rebalance slipped in between: look again
            continue
        for w, mine, got in zip(ws, owned, samples, strict=True):
            truth = owned_truth(sent, places, mine)
            if counted(got, truth) != (0, 0):
                time.sleep(10)  # transient (a view behind) or lost for good?
                later = w.samples()
                raise AssertionError(
                    f"{label}: worker {w.port} owning {sorted(mine)}: (lost, double) "
                    f"{counted(got, truth)}, 10 s later {counted(later, truth)}; "
                    f"lag then {lag_of(later)}; "
                    f"{differences(got, truth)}; 10 s later {differences(later, truth)}")
            assert_figures_match(got, truth)
        total = summed(*samples)
        assert_figures_match(total, expected(Dataset(list(sent))))
        report.append([len(o) for o in owned])
        time.sleep(1.0)
    assert report, f"{label}: never a quiet moment between rebalances"
    print(f"\n{label}: partitions per worker at each scrape {report}")
    return report


def test_second_worker_joins_mid_stream_then_first_leaves(broker, fresh_worker):
    ds = generate(seed=99, start=date.today() - timedelta(days=200), days=180, contacts=5000,
                  calls=6000, enquiries=1000, audits=300, bad=0)
    n = len(ds.messages)
    first, middle, rest = (ds.messages[: n // 3], ds.messages[n // 3: 2 * n // 3],
                           ds.messages[2 * n // 3:])

    w1 = fresh_worker("w1")
    places = produce_tracked(broker.bootstrap, first)
    wait_caught_up(w1, timeout=120)
    result = {"events": n, "w1_alone": check_split([w1], first, places, "w1 alone")}

    # w2 joins while the middle third is still being produced and consumed: the
    # rebalance lands mid-stream.
    joining: dict = {}
    thread = threading.Thread(target=lambda: joining.setdefault("w2", fresh_worker("w2")))
    thread.start()
    chunks = [middle[i:i + 500] for i in range(0, len(middle), 500)]
    for chunk in chunks:
        places += produce_tracked(broker.bootstrap, chunk)
        time.sleep(20 / len(chunks))
    thread.join(120)
    w2 = joining["w2"]
    sent = first + middle
    wait_caught_up(w1, w2, timeout=180)
    result["after_join"] = check_split([w1, w2], sent, places, "after w2 joined")

    places += produce_tracked(broker.bootstrap, rest)  # both consume the rest
    wait_caught_up(w1, w2, timeout=180)
    result["both"] = check_split([w1, w2], ds.messages, places, "both, all events")

    w1.stop()  # SIGTERM: leaves the group cleanly
    wait_for(lambda: figures_state(w2) == (ALL, False), 120, "w2 owns every partition")
    wait_caught_up(w2, timeout=120)
    result["after_leave"] = check_split([w2], ds.messages, places, "w1 stopped")
    assert_figures_match(w2.samples(), expected(ds))
    assert counted(w2.samples(), expected(ds)) == (0, 0)
    result["w1_rebuilds"] = w1.log_path.read_text().count("figures rebuilt")
    result["w2_rebuilds"] = w2.log_path.read_text().count("figures rebuilt")
    write_result("scale_out.json", result)
