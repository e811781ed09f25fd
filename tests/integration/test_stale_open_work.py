"""A backfill cannot swamp the morning list: a past year's open items are stale.

``make year`` loads a generated 2019 into a worker running years later; the items that year
leaves open are years overdue. This test does the same at a smaller scale, on a real broker
and worker: contacts and MAP enquiries of 2019 (some decided or completed on time, some late,
some never), then today's work, with the worker's clock at Wed 2 Dec 2026 12:00 and the
default horizon (20 working days). Every expectation is worked out here, by hand or from
the event list, never from the worker's code:

* ``due`` lists only the items whose deadline is at most 20 working days past, and prints
  the stale count, by rule, on the line under them; ``due --stale`` lists exactly the others;
* the boundary: a deadline of Wed 4 Nov 12:00 is exactly 20 working days before now (4, 11,
  18, 25 Nov and 2 Dec are Wednesdays; November has no bank holiday), so it is listed; one
  an hour earlier is stale;
* ``cspa_open_items`` counts the listed items only, ``cspa_open_items_stale`` the others,
  with the oldest one's age in working days (weekdays counted by date, less the bank
  holidays of England and Wales);
* ``cspa_breaches`` still counts every item open past its deadline or closed late, stale or
  not, in the month of its deadline.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest

from tests import factories as f
from tests.groundtruth import Dataset
from tests.integration.conftest import start_worker
from tests.integration.feed import produce_checked
from tests.integration.harness import wait_for
from tests.integration.reporting import run_cli

pytestmark = pytest.mark.integration

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 12, 2, 12, tzinfo=LONDON)  # a Wednesday
BANK_HOLIDAYS_2019 = {date(2019, 1, 1), date(2019, 4, 19), date(2019, 4, 22),
                      date(2019, 5, 6), date(2019, 5, 27), date(2019, 8, 26),
                      date(2019, 12, 25), date(2019, 12, 26)}
#: every open-work rule of config/rules.toml: each exports its series, fed here or not
RULES = ("contact_decision", "map_enquiry", "early_help_allocation", "lado_referral",
         "complaint_stage1", "partner_response")


def backfill_days(rng: random.Random, n: int) -> list[datetime]:
    """``n`` office-hours instants of 2019, Monday to Thursday, on the 2nd to 25th of a month
    and on no bank holiday: the next working day (the deadline) is in the same month."""
    days = [d for d in (date(2019, 1, 1) + timedelta(i) for i in range(365))
            if d.weekday() < 4 and 2 <= d.day <= 25 and d not in BANK_HOLIDAYS_2019]
    return sorted(datetime(d.year, d.month, d.day, rng.randint(9, 15), rng.choice((0, 30)),
                           tzinfo=LONDON) for d in rng.sample(days, n))


class Backfill:
    """The events sent and what they must give: open, stale, breaches."""

    def __init__(self) -> None:
        self.ds = Dataset()
        self.live: dict[str, str] = {}  # case key -> rule, within the horizon
        self.stale: dict[str, str] = {}
        self.breaches: Counter[tuple[str, str]] = Counter()  # (rule, deadline month)
        self.oldest_stale_start: datetime | None = None

    def contact(self, name: str, at: datetime, decided: datetime | None,
                deadline_month: str, stale: bool = True) -> None:
        k = f.key(name)
        self.ds.add("contacts", k, f.received(k, at))
        if decided is not None:
            self.ds.add("contacts", k, f.decided(k, decided))
        self._judge(k, "contact_decision", at, decided, deadline_month, stale)

    def enquiry(self, name: str, at: datetime, done: datetime | None,
                deadline_month: str, stale: bool = True) -> None:
        k = f.key(name)
        self.ds.add("map_enquiries", k, f.map_opened(k, at))
        if done is not None:
            self.ds.add("map_enquiries", k, f.map_completed(k, done, ["police"]))
        self._judge(k, "map_enquiry", at, done, deadline_month, stale)

    def _judge(self, k: str, rule: str, at: datetime, closed: datetime | None,
               month: str, stale: bool) -> None:
        # 1 working day; ``at`` is Mon-Thu, so the deadline is the next day, same time
        late = closed is None and NOW > at + timedelta(days=1) or (
            closed is not None and closed > at + timedelta(days=1))
        self.breaches[rule, month] += late
        if closed is None:
            (self.stale if stale else self.live)[k] = rule
            if stale and rule == "contact_decision" and (
                    self.oldest_stale_start is None or at < self.oldest_stale_start):
                self.oldest_stale_start = at


def scene() -> Backfill:
    rng, b = random.Random(27), Backfill()
    for i, at in enumerate(backfill_days(rng, 60)):
        fate = rng.random()
        closed = (None if fate < 0.25 else at + timedelta(days=3) if fate < 0.35
                  else at + timedelta(hours=2))
        month = at.strftime("%Y-%m")
        if i % 3:
            b.contact(f"2019-contact-{i}", at, closed, month)
        else:
            b.enquiry(f"2019-map-{i}", at, closed, month)
    # Today's work and the boundary (the module doc).
    b.contact("exactly-20", datetime(2026, 11, 3, 12, tzinfo=LONDON), None, "2026-11", False)
    b.contact("an-hour-more", datetime(2026, 11, 3, 11, tzinfo=LONDON), None, "2026-11")
    b.contact("overdue-today", datetime(2026, 12, 1, 10, tzinfo=LONDON), None, "2026-12", False)
    b.contact("new", datetime(2026, 12, 2, 11, tzinfo=LONDON), None, "2026-12", False)
    b.enquiry("new-map", datetime(2026, 12, 2, 9, 30, tzinfo=LONDON), None, "2026-12", False)
    b.breaches = Counter({k: n for k, n in b.breaches.items() if n})
    return b


def oldest_age(start: datetime) -> float:
    """Working days from ``start`` (Mon-Thu office hours) to NOW (Wed 12:00), counted by
    date: the rest of the first day, each weekday after it that is no bank holiday, and the
    half of today gone by noon."""
    bank = holidays.country_holidays("GB", subdiv="ENG", years=range(start.year, NOW.year + 1))
    days = (start.date() + timedelta(i) for i in range(1, (NOW.date() - start.date()).days))
    whole = sum(1 for d in days if d.weekday() < 5 and d not in bank)
    rest_of_first = (24 - start.hour - start.minute / 60) / 24
    return float(whole) + rest_of_first + 12 / 24


def rows(out: str) -> list[str]:
    """The case keys of ``due``'s table (the last column of each row)."""
    lines = out.splitlines()
    assert lines[0].startswith("deadline"), out
    return [line.split()[-1] for line in lines[1:-1]]


def test_due_lists_only_work_within_the_horizon_after_a_backfill(broker, workers, tmp_path):
    clock = tmp_path / "clock.txt"
    clock.write_text(NOW.isoformat() + "\n")
    worker = start_worker(broker, tmp_path, workers, CSPA_CLOCK_FILE=str(clock))
    b = scene()
    produce_checked(broker.bootstrap, b.ds.messages)
    opened = len(b.live) + len(b.stale)

    def all_open() -> bool:
        body = worker.get_json("/due?limit=5000")
        return len(body["items"]) + sum(body["stale"].values()) == opened

    wait_for(all_open, 120, f"{opened} open items at the worker", interval=0.5)

    done = run_cli(["due", "--workers", worker.url, "--limit", "1000"])
    assert done.returncode == 0, done.stderr
    assert sorted(rows(done.stdout)) == sorted(b.live)
    stale = Counter(b.stale.values())
    assert done.stdout.splitlines()[-1] == (
        f"stale: {len(b.stale)} open items past the deadline by more than 20 working days "
        f"(contact_decision {stale['contact_decision']}, map_enquiry {stale['map_enquiry']}; "
        "not listed: see due --stale)")
    listed = run_cli(["due", "--workers", worker.url, "--limit", "1000", "--stale"])
    assert listed.returncode == 0, listed.stderr
    assert sorted(rows(listed.stdout)) == sorted(b.stale)

    samples = worker.samples()
    by_rule: dict[str, dict[str, float]] = {}
    breaches: Counter[tuple[str, str]] = Counter()
    for (name, labels), value in samples.items():
        lab = dict(labels)
        if name == "cspa_breaches":
            breaches[lab["rule"], lab["month"]] += int(value)
        elif name.startswith("cspa_open_item"):
            family = by_rule.setdefault(name, {})
            family[lab["rule"]] = family.get(lab["rule"], 0) + value
    assert by_rule["cspa_open_items"] == {r: Counter(b.live.values())[r] for r in RULES}
    assert by_rule["cspa_open_items_stale"] == {r: stale[r] for r in RULES}
    assert b.oldest_stale_start is not None
    assert by_rule["cspa_open_item_stale_oldest_workdays"]["contact_decision"] == \
        pytest.approx(oldest_age(b.oldest_stale_start), abs=1e-6)
    # The listed items' oldest: "exactly-20", received Tue 3 Nov 12:00, 21 working days ago.
    assert by_rule["cspa_open_item_oldest_workdays"]["contact_decision"] == pytest.approx(21)
    assert +breaches == b.breaches
