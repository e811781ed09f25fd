"""Open work against its deadlines, on a real broker, with the worker's clock moved by hand.

The worker reads "now" from ``CSPA_CLOCK_FILE`` (``stream/state/clock.py``); this test rewrites
that file and reads ``/metrics`` (``cspa_open_items{rule,state}``, ``cspa_breaches``) and
``/due``. Each item's deadline and warning instant are written out below by hand from the
calendar of England and Wales, not computed with the worker's code, so the test checks the
worker's working-day arithmetic and its state machine
(on_time -> due_today -> at_risk -> overdue) end to end:

* a weekend: received Fri 27 Nov 2026 14:00 -> due Mon 30 Nov 14:00, at risk from 10:00;
* Christmas 2026: received Thu 24 Dec 15:00 -> Fri 25 (Christmas Day) and Mon 28 (Boxing
  Day, substitute for Sat 26) are bank holidays -> due Tue 29 Dec 15:00;
* the start of BST (Sun 29 Mar 2026): received Fri 27 Mar 14:00 GMT -> due Mon 30 Mar
  14:00 BST, the same wall-clock time (13:00 UTC, not 14:00 UTC);
* a MAP enquiry (1 working day) and an early-help progression awaiting allocation
  (2 working days) alongside the contacts;
* a decision before the deadline removes the item and counts no breach; one after it
  counts a breach in the month of the deadline (and only one: the open-overdue item was
  already counted); an item still open past its deadline counts as a breach too;
* a SIGTERM and restart in the middle loses no open item, deadline or breach.

Event dates. The decoder's future bound uses the *real* clock (``time.time()`` in
``FamilyProcessor.process``), not the clock file, and the dates above are after the real
date this test was written on (Thu 26 Nov 2026). So the worker runs with
``CSPA_MAX_FUTURE_SKEW_SECONDS`` of two years, and the broker with
``log.message.timestamp.after.max.ms`` at its maximum (Kafka 4 rejects, by default,
records whose CreateTime is more than an hour ahead of the broker's clock). The Kafka
timestamp of every event stays its ``occurred_at``, as the producer contract says. Once the
dates are in the past both settings are simply unused.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests import factories as f
from tests.groundtruth import Dataset
from tests.integration.conftest import start_worker
from tests.integration.feed import produce_checked
from tests.integration.harness import WorkerProcess, make_broker, wait_for

pytestmark = pytest.mark.integration

LONDON = ZoneInfo("Europe/London")
STATES = ("on_time", "due_today", "at_risk", "overdue")
#: every open-work rule of config/rules.toml: each exports its series, fed here or not
WATCHED = ("contact_decision", "map_enquiry", "early_help_allocation", "lado_referral",
           "complaint_stage1", "partner_response")
TWO_YEARS = str(2 * 366 * 86400)


def at(text: str) -> datetime:
    """An instant written with its UTC offset, e.g. ``2026-03-30T14:00+01:00``."""
    instant = datetime.fromisoformat(text)
    assert instant.tzinfo is not None
    return instant


@pytest.fixture
def broker(tmp_path: Path):
    """The local broker, accepting record timestamps in the future (see the module doc)."""
    yield from make_broker(tmp_path, extra={
        "log.message.timestamp.after.max.ms": str(2**63 - 1)})


@dataclass(frozen=True)
class Expect:
    """An open item as the test expects it: written by hand, not computed by the worker."""

    rule: str
    deadline: datetime
    warn: datetime

    def state(self, now: datetime) -> str:
        if now >= self.deadline:
            return "overdue"
        if now >= self.warn:
            return "at_risk"
        same_day = now.astimezone(LONDON).date() == self.deadline.astimezone(LONDON).date()
        return "due_today" if same_day else "on_time"


class Scene:
    """The worker, its clock file, the events sent and what the test expects to see."""

    def __init__(self, worker: WorkerProcess, clock: Path, bootstrap: str) -> None:
        self.worker, self.clock, self.bootstrap = worker, clock, bootstrap
        self.now: datetime | None = None
        self.open: dict[str, Expect] = {}  # case key -> expectation
        self.breaches: Counter[tuple[str, str]] = Counter()  # (rule, month) -> count
        self.closed_late: Counter[tuple[str, str]] = Counter()

    # --- acting ----------------------------------------------------------------------
    def set_clock(self, when: datetime) -> None:
        """Move the worker's clock (atomically: a half-written file reads as the real time)."""
        tmp = self.clock.with_suffix(".tmp")
        tmp.write_text(when.isoformat() + "\n")
        os.replace(tmp, self.clock)
        self.now = when

    def send(self, *events: tuple[str, str, dict[str, Any]]) -> None:
        ds = Dataset()
        for family, key, event in events:
            ds.add(family, key, event)
        produce_checked(self.bootstrap, ds.messages)

    def opens(self, key: str, rule: str, deadline: str, warn: str) -> None:
        self.open[key] = Expect(rule, at(deadline), at(warn))

    def closes(self, key: str, when: datetime) -> None:
        item = self.open.pop(key)
        if when > item.deadline:
            month = item.deadline.astimezone(LONDON).strftime("%Y-%m")
            self.closed_late[item.rule, month] += 1

    # --- expecting -------------------------------------------------------------------
    def expected(self) -> tuple[dict[str, tuple[str, str, str]], dict[tuple[str, str], int],
                                dict[tuple[str, str], int]]:
        """(due list by key, open counts by (rule, state), breaches by (rule, month))."""
        assert self.now is not None
        due = {k: (e.rule, e.deadline.astimezone(LONDON).isoformat(), e.state(self.now))
               for k, e in self.open.items()}
        counts = {(r, s): 0 for r in WATCHED for s in STATES}
        breaches = Counter(self.closed_late)
        for e in self.open.values():
            counts[e.rule, e.state(self.now)] += 1
            if self.now >= e.deadline:
                breaches[e.rule, e.deadline.astimezone(LONDON).strftime("%Y-%m")] += 1
        return due, counts, dict(breaches)

    def observed(self) -> tuple[dict[str, tuple[str, str, str]], dict[tuple[str, str], int],
                                dict[tuple[str, str], int], dict[str, Any]]:
        body = self.worker.get_json("/due?limit=5000")
        due = {i["key"]: (i["rule"], i["deadline"], i["state"]) for i in body["items"]}
        counts: dict[tuple[str, str], int] = {}
        breaches: dict[tuple[str, str], int] = {}
        for (name, labels), value in self.worker.samples().items():
            lab = dict(labels)
            if name == "cspa_open_items":
                counts[lab["rule"], lab["state"]] = counts.get((lab["rule"], lab["state"]),
                                                               0) + int(value)
            elif name == "cspa_breaches" and value:
                assert lab["rule_version"] == "1", lab
                key = (lab["rule"], lab["month"])
                breaches[key] = breaches.get(key, 0) + int(value)
        return due, counts, breaches, body

    def check(self, what: str, timeout: float = 30) -> None:
        """Poll until /due and /metrics agree with the expectation (events may be in flight)."""
        want = self.expected()
        seen: list[Any] = []

        def agrees() -> bool:
            got = self.observed()
            seen[:] = [got]
            return got[:3] == want

        try:
            wait_for(agrees, timeout, what, interval=0.2)
        except AssertionError:
            due, counts, breaches, body = seen[0] if seen else ({}, {}, {}, {})
            pytest.fail(f"{what} at {self.now}:\n due list: {due}\n expected: {want[0]}\n"
                        f" open items: {counts}\n expected: {want[1]}\n breaches: {breaches}\n"
                        f" expected: {want[2]}\n worker now: {body.get('now')}")
        assert self.observed()[3]["now"] == self.now.astimezone(LONDON).isoformat()

    def state_of(self, key: str) -> str:
        return self.expected()[0][key][2]


def contact(key: str, when: str, **kw: Any) -> tuple[str, str, dict[str, Any]]:
    return "contacts", key, f.received(key, at(when), **kw)


def decision(key: str, when: str, **kw: Any) -> tuple[str, str, dict[str, Any]]:
    return "contacts", key, f.decided(key, at(when), **kw)


def test_items_move_through_states_across_weekend_christmas_and_bst(broker, workers,
                                                                    tmp_path):
    clock = tmp_path / "clock.txt"
    clock.write_text("2026-03-27T14:30:00+00:00\n")
    worker = start_worker(broker, tmp_path, workers, CSPA_CLOCK_FILE=str(clock),
                          CSPA_MAX_FUTURE_SKEW_SECONDS=TWO_YEARS)
    s = Scene(worker, clock, broker.bootstrap)

    # --- BST starts on Sunday 29 March 2026 ---------------------------------------------
    bst = f.key("bst-contact")
    s.set_clock(at("2026-03-27T14:30+00:00"))
    s.send(contact(bst, "2026-03-27T14:00+00:00"))
    # Fri 14-17 (3 office hours) + Mon 9-14 BST (5): 4 hours left from Mon 10:00 BST.
    s.opens(bst, "contact_decision", "2026-03-30T14:00+01:00", "2026-03-30T10:00+01:00")
    s.check("received on the Friday before BST starts")
    assert s.state_of(bst) == "on_time"
    for when, state in [("2026-03-29T12:00+01:00", "on_time"),    # Sunday, now BST
                        ("2026-03-30T00:00:01+01:00", "due_today"),
                        ("2026-03-30T09:59:59+01:00", "due_today"),
                        ("2026-03-30T10:00+01:00", "at_risk"),
                        # 13:30 BST = 12:30 UTC; also at_risk by a GMT reckoning
                        ("2026-03-30T13:30+01:00", "at_risk"),
                        ("2026-03-30T13:59:59+01:00", "at_risk"),
                        # 14:00 BST = 13:00 UTC: a deadline reckoned as 14:00 GMT (15:00
                        # BST) would still be an hour away
                        ("2026-03-30T14:00+01:00", "overdue")]:
        s.set_clock(at(when))
        s.check(f"BST contact at {when}")
        assert s.state_of(bst) == state
    s.set_clock(at("2026-03-30T14:30+01:00"))
    s.send(decision(bst, "2026-03-30T14:25+01:00"))
    s.closes(bst, at("2026-03-30T14:25+01:00"))
    s.check("decided 25 minutes late: gone from the due list, one breach in March")
    assert s.expected()[2] == {("contact_decision", "2026-03"): 1}

    # --- a weekend: Friday 27 November 2026 ---------------------------------------------
    late, prompt = f.key("weekend-late"), f.key("weekend-prompt")
    enquiry, eh = f.key("weekend-map"), f.key("weekend-early-help")
    s.set_clock(at("2026-11-27T14:30+00:00"))
    s.send(contact(late, "2026-11-27T14:00+00:00"),
           contact(prompt, "2026-11-27T14:00+00:00", channel="phone", source_code="3A"),
           ("map_enquiries", enquiry, f.map_opened(enquiry, at("2026-11-27T14:00+00:00"))),
           # decided in time the day before, then progressed to early help on Friday
           contact(eh, "2026-11-26T10:00+00:00"),
           decision(eh, "2026-11-26T16:00+00:00", outcome="level_2_eh",
                    pathway="progress_to_eh"),
           ("contacts", eh, f.base("contact.progressed", at("2026-11-27T14:00+00:00"),
                                   contact_key=eh, destination="early_help")))
    for key in (late, prompt):
        s.opens(key, "contact_decision", "2026-11-30T14:00+00:00", "2026-11-30T10:00+00:00")
    s.opens(enquiry, "map_enquiry", "2026-11-30T14:00+00:00", "2026-11-30T10:00+00:00")
    # 2 working days: Fri 14:00 -> Tue 1 Dec 14:00; Fri 14-17 + Mon 9-17 + Tue 9-10 = 12 h,
    # so 4 hours left from Tue 10:00.
    s.opens(eh, "early_help_allocation", "2026-12-01T14:00+00:00", "2026-12-01T10:00+00:00")
    s.check("received on Friday afternoon")
    for when in ("2026-11-27T16:59+00:00", "2026-11-28T12:00+00:00",   # Saturday
                 "2026-11-29T23:59:59+00:00",                             # Sunday night
                 "2026-11-30T00:00:01+00:00", "2026-11-30T09:59:59+00:00"):
        s.set_clock(at(when))
        s.check(f"weekend at {when}")
    assert s.state_of(late) == s.state_of(enquiry) == "due_today"
    assert s.state_of(eh) == "on_time"  # due tomorrow

    s.set_clock(at("2026-11-30T10:30+00:00"))
    s.check("Monday 10:30")
    assert s.state_of(late) == s.state_of(prompt) == s.state_of(enquiry) == "at_risk"
    before = s.observed()

    # --- a restart in the middle: nothing open, no deadline and no breach is lost ---------
    worker.stop()  # SIGTERM: a clean shutdown
    worker.start()
    wait_for(lambda: s.observed()[:3] == before[:3], 60, "open work rebuilt after restart")
    s.check("after the restart")

    s.set_clock(at("2026-11-30T11:00+00:00"))
    s.send(decision(prompt, "2026-11-30T11:00+00:00"))
    s.closes(prompt, at("2026-11-30T11:00+00:00"))
    s.check("decided at risk but in time: gone, no breach")

    s.set_clock(at("2026-11-30T14:00+00:00"))
    s.check("Monday 14:00: overdue")
    assert s.state_of(late) == s.state_of(enquiry) == "overdue"
    assert s.expected()[2][("contact_decision", "2026-11")] == 1  # open past its deadline

    s.set_clock(at("2026-11-30T15:30+00:00"))
    s.send(decision(late, "2026-11-30T15:00+00:00"),
           ("map_enquiries", enquiry, f.map_completed(enquiry, at("2026-11-30T15:20+00:00"),
                                                      ["police", "gp"])))
    s.closes(late, at("2026-11-30T15:00+00:00"))
    s.closes(enquiry, at("2026-11-30T15:20+00:00"))
    s.check("decided and completed late: one breach each, in November")
    assert s.expected()[2] == {("contact_decision", "2026-03"): 1,
                               ("contact_decision", "2026-11"): 1,
                               ("map_enquiry", "2026-11"): 1}

    for when, state in [("2026-12-01T09:00+00:00", "due_today"),
                        ("2026-12-01T10:00+00:00", "at_risk")]:
        s.set_clock(at(when))
        s.check(f"early help allocation at {when}")
        assert s.state_of(eh) == state
    s.set_clock(at("2026-12-01T11:00+00:00"))
    s.send(("contacts", eh, f.base("early_help.allocated", at("2026-12-01T11:00+00:00"),
                                   contact_key=eh, source_system="ehm")))
    s.closes(eh, at("2026-12-01T11:00+00:00"))
    s.check("allocated in time: gone, no breach")

    # --- Christmas 2026: Fri 25 Dec and Mon 28 Dec (substitute Boxing Day) closed --------
    xmas = f.key("christmas-eve")
    s.set_clock(at("2026-12-24T15:30+00:00"))
    s.send(contact(xmas, "2026-12-24T15:00+00:00", channel="phone", source_code="6"))
    # Thu 15-17 (2 office hours) + Tue 9-15 (6): 4 hours left from Tue 11:00.
    s.opens(xmas, "contact_decision", "2026-12-29T15:00+00:00", "2026-12-29T11:00+00:00")
    for when, state in [("2026-12-24T16:00+00:00", "on_time"),
                        ("2026-12-25T12:00+00:00", "on_time"),    # Christmas Day
                        # Boxing Day (substitute): not a working day, so not due today
                        ("2026-12-28T12:00+00:00", "on_time"),
                        ("2026-12-28T23:59:59+00:00", "on_time"),
                        ("2026-12-29T00:00:01+00:00", "due_today"),
                        ("2026-12-29T10:59:59+00:00", "due_today"),
                        ("2026-12-29T11:00+00:00", "at_risk"),
                        ("2026-12-29T14:59:59+00:00", "at_risk"),
                        ("2026-12-29T15:00+00:00", "overdue")]:
        s.set_clock(at(when))
        s.check(f"Christmas contact at {when}")
        assert s.state_of(xmas) == state
    due = s.worker.get_json("/due")["items"]
    assert [(i["key"], i["deadline"], i["state"]) for i in due] == [
        (xmas, "2026-12-29T15:00:00+00:00", "overdue")]
    assert s.expected()[2] == {("contact_decision", "2026-03"): 1,
                               ("contact_decision", "2026-11"): 1,
                               ("contact_decision", "2026-12"): 1,  # still open, past due
                               ("map_enquiry", "2026-11"): 1}
