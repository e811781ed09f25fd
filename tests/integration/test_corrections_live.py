"""Corrections on a real broker and a real worker (issue 14, part 4).

A decision re-recorded days later (``recorded_at``) changes the outcome cells and
leaves the duration, the month and the timeliness where the business time puts
them; a correction that arrives before the original still wins; sending either
again changes nothing. Expected figures are worked out here by hand.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from stream.contract.events import Event
from stream.contract.taxonomy import load_taxonomy
from stream.upstream.producer import EventValidator
from tests.factories import decided, key, received
from tests.integration.conftest import start_worker
from tests.integration.feed import message, produce_checked
from tests.integration.harness import consumed, total, wait_for

pytestmark = pytest.mark.integration
LONDON = ZoneInfo("Europe/London")
VALIDATOR = EventValidator(load_taxonomy())


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2019, 9, day, hour, minute, tzinfo=LONDON)


def contact(name: str, rcv_at: datetime, dec_at: datetime, fixed_at: datetime) -> list[Event]:
    """[received, decided "Information", the same decision re-recorded as "MAP Enquiry"]."""
    k = key(name)
    fix = decided(k, dec_at, "map", "map_enquiry")
    fix["recorded_at"] = fixed_at  # Python form: the API takes datetimes as they are
    docs = [received(k, rcv_at, source_code="6"), decided(k, dec_at, "level_1", "information"),
            fix]
    return [VALIDATOR.build("contacts", doc) for doc in docs]


def figures(worker) -> dict[str, float]:
    s = worker.samples()
    days, secs = "cspa_contact_completion_workdays", "cspa_contact_completion_seconds"
    return {
        "info": total(s, days + "_count", month="2019-09", pathway="information"),
        "map": total(s, days + "_count", month="2019-09", pathway="map_enquiry"),
        "workdays": round(total(s, days + "_sum", month="2019-09"), 4),
        # kept as days to 1e-4 (stream.state.aggregates), exported as seconds
        "calendar_days": round(total(s, secs + "_sum", month="2019-09") / 86400, 4),
        "level_1": total(s, "cspa_contacts_decided", month="2019-09", outcome="level_1"),
        "decided_map": total(s, "cspa_contacts_decided", month="2019-09", outcome="map"),
        "breaches": total(s, "cspa_breaches", rule="contact_decision"),
        "duplicates": total(s, "cspa_events_duplicate_total"),
    }


def send(broker, worker, events: list[Event], expect_consumed: float) -> dict[str, float]:
    produce_checked(broker.bootstrap, [message(e) for e in events])
    wait_for(lambda: consumed(worker) >= expect_consumed, 60, f"{expect_consumed} consumed")
    return figures(worker)


def test_corrections_keep_business_time_in_any_order(broker, workers, tmp_path):
    worker = start_worker(broker, tmp_path, workers)
    # A: received Monday 16 Sep 09:30, decided 11:30 (2 h = 2/24 working day),
    # re-recorded Thursday 19 Sep 14:00.
    a_rcv, a_dec, a_fix = contact("live-a", at(16, 9, 30), at(16, 11, 30), at(19, 14))
    # B: received Tuesday 17 Sep 16:00, decided Wednesday 10:00 (18 h = 0.75 working
    # day), re-recorded Monday 23 Sep 09:00.
    b_rcv, b_dec, b_fix = contact("live-b", at(17, 16), at(18, 10), at(23, 9))
    # Same weekdays, no holiday: working and calendar days agree here. Cells keep 1e-4.
    a_days, b_days = round(2 / 24, 4), round(18 / 24, 4)

    got = send(broker, worker, [a_rcv, a_dec], 2)
    assert got == {"info": 1, "map": 0, "workdays": a_days, "calendar_days": a_days,
                   "level_1": 1, "decided_map": 0, "breaches": 0, "duplicates": 0}

    got = send(broker, worker, [a_fix], 3)  # the correction, days later
    assert got == {"info": 0, "map": 1, "workdays": a_days, "calendar_days": a_days,
                   "level_1": 0, "decided_map": 1, "breaches": 0, "duplicates": 0}

    got = send(broker, worker, [b_fix, b_rcv, b_dec], 6)  # correction before the original
    both = {"info": 0, "map": 2, "workdays": round(a_days + b_days, 4),
            "calendar_days": round(a_days + b_days, 4), "level_1": 0, "decided_map": 2,
            "breaches": 0}
    assert got == {**both, "duplicates": 1}  # b_dec came after b_fix: no effect

    everything = [a_rcv, a_dec, a_fix, b_rcv, b_dec, b_fix]
    got = send(broker, worker, everything[::-1], 12)  # all of it again, reversed
    assert got == {**both, "duplicates": 7}


def child_figures(worker) -> dict[str, float]:
    s = worker.samples()
    return {flag: total(s, "cspa_child_contacts", month="2019-09", repeat=flag)
            for flag in ("yes", "no")}


def test_a_correction_naming_another_child_moves_the_contact(broker, workers, tmp_path):
    """Contact 1 is first sent about child X, then re-recorded as about child Y: X keeps
    only contact 2 (no longer a repeat), Y gets contact 1, and contact 3 about Y repeats
    it. Sent again in reverse, nothing moves."""
    worker = start_worker(broker, tmp_path, workers)
    x, y = key("child-x"), key("child-y")
    c1, c2, c3 = key("moved-1"), key("moved-2"), key("moved-3")
    wrong = received(c1, at(2, 10), child=x)
    fixed = {**received(c1, at(2, 10), child=y), "recorded_at": at(12, 9)}
    build = [VALIDATOR.build("contacts", doc) for doc in
             (wrong, received(c2, at(10, 10), child=x), fixed, received(c3, at(20, 10), child=y))]

    send(broker, worker, build[:2], 2)
    assert child_figures(worker) == {"yes": 1, "no": 1}  # contact 2 repeats contact 1, for X
    send(broker, worker, build[2:3], 3)
    assert child_figures(worker) == {"yes": 0, "no": 2}  # X: contact 2 alone; Y: contact 1
    send(broker, worker, build[3:], 4)
    assert child_figures(worker) == {"yes": 1, "no": 2}  # contact 3 repeats contact 1, for Y
    send(broker, worker, build[::-1], 8)
    assert child_figures(worker) == {"yes": 1, "no": 2}
