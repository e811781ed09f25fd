"""What judged the derived state, on a real broker with real worker processes.

* A rule (``contact_decision`` from 1 to 3 working days) and a fold-time setting (the
  out-of-hours roll-over) change between two runs: the restarted worker does not use its
  checkpoint's figures and open work, and serves exactly what a cold rebuild (a fresh
  data directory) serves under the new settings.
* A setting read only when figures are read (the service-level variant) keeps the
  checkpoint: the restart says ``checkpoint loaded`` and refolds nothing.
* Rules versioned in time: contacts straddling a change are judged by the version in
  force when their clock started (expected breaches by ``rule_version`` written by hand
  below), and a cold rebuild serves what the live worker served.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from stream.dev.broker import LocalBroker
from tests import factories as f
from tests.groundtruth import Dataset, generate
from tests.integration.harness import (
    ROOT,
    WorkerProcess,
    consumed,
    produce_sync,
    total,
    wait_for,
)

pytestmark = pytest.mark.integration

RULES = (ROOT / "config" / "rules.toml").read_text()
#: the series of open work and breaches compared between a restart and a cold rebuild
WORK = ("cspa_open_items", "cspa_breaches", "cspa_open_item_oldest_workdays",
        "cspa_progressions")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def out_of_hours(ds: Dataset) -> None:
    """Contacts received in the evening or at a weekend: the roll-over moves their clocks."""
    for i, (rcv, dec) in enumerate([
            ("2019-08-02T18:30+01:00", "2019-08-06T10:00+01:00"),  # Fri evening
            ("2019-08-03T11:00+01:00", "2019-08-06T16:00+01:00"),  # Saturday
            ("2019-08-07T07:00+01:00", "2019-08-08T08:30+01:00"),  # before office hours
            ("2019-08-08T20:00+01:00", None)]):  # still open
        k = f.key(f"ooh-{i}")
        ds.add("contacts", k, f.received(k, at(rcv)))
        if dec:
            ds.add("contacts", k, f.decided(k, at(dec)))


def start(broker: LocalBroker, workers: list[WorkerProcess], workdir: Path,
          env: dict[str, str]) -> WorkerProcess:
    from stream.cli import ensure_topics
    from stream.settings import Settings

    ensure_topics(Settings(broker=broker.bootstrap))
    worker = WorkerProcess(broker.bootstrap, workdir, env=env)
    workers.append(worker)
    return worker.start()


def log_since(worker: WorkerProcess, mark: int) -> str:
    return worker.log_path.read_text(errors="replace")[mark:]


def feed_and_checkpoint(broker: LocalBroker, worker: WorkerProcess, ds: Dataset) -> int:
    """Send the events; wait until they are folded and checkpointed (a checkpoint may
    miss the last writes: a restart reads those from the changelog, as in production)."""
    mark = len(worker.log_path.read_text(errors="replace"))
    sent = produce_sync(broker.bootstrap, ds.messages)
    wait_for(lambda: consumed(worker) >= sent, 120, f"{sent} messages consumed")
    wait_for(lambda: "checkpoint written" in log_since(worker, mark), 60, "a checkpoint")
    return sent


def served(worker: WorkerProcess) -> dict[str, Any]:
    """Figures (/cells), open work (/due) and the open-work series, comparable."""
    body = worker.get_json("/cells")
    assert not body["recovering"]
    cells = {(figure, tuple(labels)): (cell[0], cell[2]) for figure, labels, cell in
             body["cells"]}
    totals = {(figure, tuple(labels)): cell[1] for figure, labels, cell in body["cells"]}
    samples = worker.samples()
    series = {key: v for key, v in samples.items() if key[0] in WORK}
    due = worker.get_json("/due?limit=5000")["items"]
    return {"cells": cells, "totals": totals, "series": series, "due": due}


def assert_same(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got["cells"] == want["cells"]  # counts and value multisets: exact
    assert got["totals"].keys() == want["totals"].keys()
    for key, value in want["totals"].items():  # sums of the same values, maybe reordered
        assert got["totals"][key] == pytest.approx(value, abs=1e-3), key
    assert got["series"] == want["series"]
    assert got["due"] == want["due"]


def test_a_changed_rule_and_fold_setting_refold_what_a_cold_rebuild_gives(
        broker, workers, tmp_path):
    rules, clock = tmp_path / "rules.toml", tmp_path / "clock"
    rules.write_text(RULES)
    clock.write_text("2019-10-10T12:00:00+01:00\n")
    env = {"CSPA_RULES_PATH": str(rules), "CSPA_CLOCK_FILE": str(clock),
           "CSPA_CHECKPOINT_SECONDS": "0.5"}
    ds = generate(seed=23, start=date(2019, 7, 22), days=75, contacts=250, calls=80,
                  enquiries=30, audits=10, bad=0)
    out_of_hours(ds)
    worker = start(broker, workers, tmp_path / "w1", env)
    feed_and_checkpoint(broker, worker, ds)
    before = served(worker)
    fingerprint = worker.get_json("/health")["fingerprint"]
    worker.stop()

    # contact_decision: 1 -> 3 working days; and the out-of-hours roll-over switched on.
    changed = RULES.replace("timescale = 1", "timescale = 3", 1)
    assert changed.count("timescale = 3") == 2
    rules.write_text(changed)
    worker.env["CSPA_ROLL_AFTER_HOURS"] = "true"
    mark = len(worker.log_path.read_text(errors="replace"))
    worker.start()
    log = log_since(worker, mark)
    assert "checkpoint derived state not used reason=fingerprint" in log
    assert "checkpoint records loaded" in log and "checkpoint loaded" not in log
    assert worker.get_json("/health")["fingerprint"] != fingerprint
    restarted = served(worker)
    # The change matters: fewer breaches, and completion times moved by the roll-over.
    assert (total(restarted["series"], "cspa_breaches")
            < total(before["series"], "cspa_breaches"))
    assert restarted["cells"] != before["cells"]
    worker.stop()

    cold = start(broker, workers, tmp_path / "cold", {**env, "CSPA_ROLL_AFTER_HOURS": "true"})
    assert "loaded" not in cold.log_path.read_text(errors="replace")  # nothing to load
    assert_same(restarted, served(cold))


def test_a_setting_read_with_the_figures_keeps_the_checkpoint(broker, workers, tmp_path):
    ds = generate(seed=5, start=date(2019, 7, 22), days=20, contacts=60, calls=80,
                  enquiries=5, audits=5, bad=0)
    worker = start(broker, workers, tmp_path / "w1", {"CSPA_CHECKPOINT_SECONDS": "0.5"})
    feed_and_checkpoint(broker, worker, ds)
    fingerprint = worker.get_json("/health")["fingerprint"]
    cells = served(worker)["cells"]
    worker.stop()
    worker.env["CSPA_SERVICE_LEVEL_VARIANT"] = "answered"
    mark = len(worker.log_path.read_text(errors="replace"))
    worker.start()
    log = log_since(worker, mark)
    assert "checkpoint loaded" in log and "reason=fingerprint" not in log
    assert worker.get_json("/health")["fingerprint"] == fingerprint
    assert served(worker)["cells"] == cells
    # and the setting did take effect where it is read
    info = [labels for (name, labels) in worker.samples()
            if name == "cspa_definition_info"]
    assert info and all(("service_level_variant", "answered") in labels for labels in info)


VERSIONED = RULES.replace(
    'source = "Working Together to Safeguard Children (statutory)"\n',
    'source = "Working Together to Safeguard Children (statutory)"\n\n'
    '[[rule]]\nname = "contact_decision"\nversion = 2\nteam = "rfs"\n'
    'opens = "contact.received"\ncloses = "contact.decided"\nclock = "working_days"\n'
    'timescale = 3\nwarn_working_hours = 4\neffective_from = 2019-09-02\n'
    'source = "local (a council\'s own change, from Monday 2 September 2019)"\n').replace(
    'source = "Working Together (decision on a referral within 1 working day)"\n',
    'source = "Working Together (decision on a referral within 1 working day)"\n\n'
    '[[rule]]\nname = "progression_childrens_social_care"\nversion = 2\nteam = "rfs"\n'
    'opens = "contact.received"\ncloses = "contact.progressed:childrens_social_care"\n'
    'clock = "working_days"\ntimescale = 3\nwarn_working_hours = 4\n'
    'effective_from = 2019-09-02\n')


def straddling() -> Dataset:
    """Contacts received the working day before (Fri 30 Aug 2019) and on the day of the
    change (Mon 2 Sep 2019), each judged by hand below."""
    ds = Dataset()
    contacts = {
        # key: (received, decided or None, progressed to children's social care or None)
        "A": ("2019-08-30T10:00+01:00", "2019-09-03T10:00+01:00", None),  # v1: late
        "B": ("2019-08-30T10:00+01:00", "2019-08-30T15:00+01:00", None),  # v1: in time
        "C": ("2019-09-02T10:00+01:00", "2019-09-04T10:00+01:00", None),  # v2: in time
        "D": ("2019-09-02T10:00+01:00", "2019-09-06T12:00+01:00", None),  # v2: late
        "E": ("2019-08-30T11:00+01:00", None, None),  # v1: open, overdue from Mon 2 Sep
        "F": ("2019-09-02T11:00+01:00", None, None),  # v2: open, overdue from Thu 5 Sep
        "G": ("2019-08-30T10:00+01:00", "2019-08-30T15:00+01:00", "2019-09-03T10:00+01:00"),
        "H": ("2019-09-02T10:00+01:00", "2019-09-02T15:00+01:00", "2019-09-04T10:00+01:00"),
    }
    for name, (rcv, dec, prog) in contacts.items():
        k = f.key(f"straddle-{name}")
        ds.add("contacts", k, f.received(k, at(rcv)))
        if dec:
            ds.add("contacts", k, f.decided(k, at(dec)))
        if prog:
            ds.add("contacts", k, f.base("contact.progressed", at(prog), contact_key=k,
                                         destination="childrens_social_care"))
    return ds


def test_rule_versions_judge_by_the_clock_start_and_a_rebuild_agrees(broker, workers, tmp_path):
    rules, clock = tmp_path / "rules.toml", tmp_path / "clock"
    rules.write_text(VERSIONED)
    clock.write_text("2019-09-20T12:00:00+01:00\n")
    env = {"CSPA_RULES_PATH": str(rules), "CSPA_CLOCK_FILE": str(clock)}
    worker = start(broker, workers, tmp_path / "live", env)
    sent = produce_sync(broker.bootstrap, straddling().messages)
    wait_for(lambda: consumed(worker) >= sent, 60, f"{sent} messages consumed")
    live = served(worker)
    breaches = {dict(labels)["rule_version"]: v for (name, labels), v in live["series"].items()
                if name == "cspa_breaches" and dict(labels)["rule"] == "contact_decision"
                and dict(labels)["month"] == "2019-09"}
    # Deadlines: A Mon 2 Sep 10:00 (decided Tue: late), E Mon 2 Sep 11:00 (open);
    # D Thu 5 Sep 10:00 (decided Fri: late), F Thu 5 Sep 11:00 (open). C, decided after
    # two working days, is late only under version 1: version 2 judged it.
    assert breaches == {"1": 2, "2": 2}
    within = {dict(labels)["within_timescale"]: v for (name, labels), v in
              live["series"].items() if name == "cspa_progressions"
              and dict(labels)["destination"] == "childrens_social_care"}
    # G and H both took two working days: over version 1's one, within version 2's three.
    assert within == {"false": 1, "true": 1}
    assert total(live["series"], "cspa_open_items", rule="contact_decision",
                 state="overdue") == 2
    worker.stop()

    cold = start(broker, workers, tmp_path / "cold", env)
    assert_same(served(cold), live)
