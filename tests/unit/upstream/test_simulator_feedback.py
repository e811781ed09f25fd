"""The simulator's feedback (report section 6): volumes, mix, quotes and withdrawals.

Counted directly from the generated events of the first half of 2019 (seed 1). The
volumes are the ones chosen in ``stream.upstream.profile`` ("Feedback"): about 30 pieces
of feedback a month, about five approved quotes a quarter (the seed's section 6).
"""

from __future__ import annotations

from datetime import date

import pytest

from stream.contract.events import (
    ComplaintExtended,
    ComplaintResponded,
    Event,
    FeedbackQuoteApproved,
    FeedbackReceived,
    FeedbackWithdrawn,
)
from stream.contract.quotes import new_key, unseal
from stream.contract.taxonomy import load_taxonomy
from stream.state.working_days import WorkingCalendar
from stream.upstream.feedback import QUOTES, quote_for
from stream.upstream.producer import encode
from stream.upstream.simulator import TZ, generate

TAXONOMY = load_taxonomy()
MONTHS = 6


@pytest.fixture(scope="module")
def feedback() -> list[Event]:
    return [e for e in generate(date(2019, 1, 1), 181, seed=1, taxonomy=TAXONOMY)
            if e.event_type.startswith("feedback.")]  # type: ignore[attr-defined]


def of(events: list[Event], kind: type[Event]) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, kind)]


def test_feedback_volumes_and_mix(feedback):
    received = of(feedback, FeedbackReceived)
    assert 20 * MONTHS <= len(received) <= 40 * MONTHS  # about 30 a month
    assert {e.from_whom for e in received} == set(TAXONOMY.ordered("feedback_from"))
    assert {e.kind for e in received} == set(TAXONOMY.ordered("feedback_kind"))
    assert len({e.channel for e in received}) >= 4
    partners = [e for e in received if e.from_whom == "partner_agency"]
    assert all(e.agency for e in partners) and len({e.agency for e in partners}) >= 6
    assert all(e.agency is None for e in received if e.from_whom != "partner_agency")
    calendar = WorkingCalendar()
    assert all(calendar.is_working_day(e.occurred_at.astimezone(TZ).date()) for e in feedback)
    assert all(9 <= e.occurred_at.astimezone(TZ).hour < 17 for e in feedback)


def test_a_few_quotes_approved_mostly_with_consent_and_a_rare_withdrawal(feedback):
    received = {e.feedback_key: e for e in of(feedback, FeedbackReceived)}
    approved = of(feedback, FeedbackQuoteApproved)
    assert 4 <= len(approved) <= 20  # about five a quarter
    assert all(received[e.feedback_key].kind == "compliment" for e in approved)
    assert all(received[e.feedback_key].occurred_at < e.occurred_at for e in approved)
    assert sum(e.consent_to_publish for e in approved) >= 0.7 * len(approved)
    assert {e.attribution for e in approved} <= set(TAXONOMY.ordered("quote_attribution"))
    parents = [e for e in approved if received[e.feedback_key].from_whom == "parent_carer"]
    assert all(e.attribution == "parent_feedback" for e in parents)
    police = [e for e in approved if received[e.feedback_key].agency == "police"]
    assert all(e.attribution == "police_colleagues" for e in police)
    consented = {e.feedback_key: e for e in approved if e.consent_to_publish}
    withdrawn = of(feedback, FeedbackWithdrawn)
    assert len(withdrawn) <= len(consented) / 4
    assert all(consented[e.feedback_key].occurred_at < e.occurred_at for e in withdrawn)


def test_quotes_are_invented_and_generated_ones_open_under_no_key(feedback):
    """``generate`` carries a stand-in sealed form; ``run`` seals the invented text."""
    for e in of(feedback, FeedbackQuoteApproved):
        assert unseal(e.sealed_quote, new_key(), e.feedback_key) is None
        text = quote_for(e.feedback_key, e.attribution)
        assert text in QUOTES[e.attribution] and len(text) < 120
        assert quote_for(e.feedback_key, e.attribution) == text
    assert set(QUOTES) == set(TAXONOMY.ordered("quote_attribution"))


def test_feedback_is_deterministic_for_a_seed():
    def run() -> list[bytes]:
        return [encode(e) for e in generate(date(2019, 3, 1), 61, seed=3,
                                            taxonomy=TAXONOMY)
                if e.event_type.startswith("feedback.")]  # type: ignore[attr-defined]

    first = run()
    assert any(b"sealed_quote" in e for e in first) and first == run()


def _working_days_after(calendar: WorkingCalendar, start: Event, end: Event) -> int:
    """Whole working days from one event's local date to another's, counted day by day."""
    a, b = (e.occurred_at.astimezone(TZ).date() for e in (start, end))
    return sum(calendar.is_working_day(date.fromordinal(n))
               for n in range(a.toordinal() + 1, b.toordinal() + 1))


def test_every_complaint_answered_once_some_extended_first_and_some_late():
    events = list(generate(date(2019, 1, 1), 181, seed=1, taxonomy=TAXONOMY))
    complaints = {e.feedback_key: e for e in of(events, FeedbackReceived)
                  if e.kind == "complaint"}
    answers = {e.feedback_key: e for e in of(events, ComplaintResponded)}
    extensions = {e.feedback_key: e for e in of(events, ComplaintExtended)}
    assert len(of(events, ComplaintResponded)) == len(answers)  # one answer each
    assert answers.keys() <= complaints.keys() and extensions.keys() <= answers.keys()
    # every complaint answered, but those the run ended before their answer was due
    last = max(e.occurred_at for e in events)
    unanswered = [c for k, c in complaints.items() if k not in answers]
    assert all((last - c.occurred_at).days < 35 for c in unanswered), len(unanswered)
    calendar = WorkingCalendar()
    days = {k: _working_days_after(calendar, complaints[k], a) for k, a in answers.items()}
    for k, extended in extensions.items():
        assert 4 <= _working_days_after(calendar, complaints[k], extended) <= 9
        assert extended.occurred_at < answers[k].occurred_at and 11 <= days[k] <= 22
    plain = [d for k, d in days.items() if k not in extensions]
    assert all(2 <= d <= 12 for d in plain)
    late = [d for d in plain if d > 10]
    assert 0 < len(late) < len(plain) / 3  # most on time, some breaches to show
    assert 0.05 * len(complaints) <= len(extensions) <= 0.3 * len(complaints)
