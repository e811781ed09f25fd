"""The simulator's feedback: what reaches the front door, the quotes approved from it.

Volumes are in ``stream.upstream.profile`` ("Feedback"). Every quote is an invented short
text (``QUOTES``), never real feedback. The events ``generate`` yields carry a stand-in
sealed quote (bytes derived from the seed, which open under no key), so the stream stays
the same for a seed; ``simulator.run`` sends each approval through
``EventProducer.approve_quote`` with the invented text of ``quote_for``, sealed under a
fresh key of its own that goes to the key topic, and each withdrawal through
``withdraw_quote``, which tombstones that key.
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from stream.contract import events as ev
from stream.contract.quotes import PREFIX
from stream.upstream import profile as prof

#: invented quotes by attribution (taxonomy ``quote_attribution``): short, no names
QUOTES: Mapping[str, tuple[str, ...]] = {
    "parent_feedback": (
        "The advisor listened and explained what would happen next.",
        "I was worried about calling, but I was treated with kindness.",
        "Someone rang me back the same day, as promised.",
    ),
    "young_person_feedback": (
        "They asked what I thought and actually wrote it down.",
        "It was less scary than I expected.",
    ),
    "family_centre": (
        "The referral arrived the same day and matched our conversation.",
        "It felt like a partnership to find the best fit for the family.",
    ),
    "police_colleagues": (
        "Decisions are clearer and we hear back sooner.",
        "It feels like we are working in partnership now.",
    ),
    "health_colleagues": (
        "The enquiry form is clearer about what is being asked of us.",
        "We feel more involved in decision making.",
    ),
    "education_colleagues": (
        "Schools get a clear answer about next steps.",
        "The consultation line gave us practical advice.",
    ),
    "partner_agencies": (
        "Information sharing is quicker and more focused.",
        "The process is easier to follow than before.",
    ),
    "cspa_social_workers": (
        "The structure is better and the processes clearer.",
        "We get more appropriate cases and greater consistency.",
    ),
    "cspa_staff": (
        "The team pulls together on busy days.",
        "Supervision now makes time for reflection.",
    ),
}
TZ = ZoneInfo("Europe/London")
_HEALTH = frozenset({"gp", "health_visiting", "school_nursing", "camhs", "acute_health"})


class Emitter(Protocol):
    """What the simulator offers this module (``simulator._Sim``)."""

    def key(self, kind: str) -> str: ...
    def emit(self, ts: float, model: type[ev.Event], **fields: Any) -> None: ...
    def day(self, d: date) -> tuple[bool, float, float, float, float]: ...
    def add_working_days(self, ts: float, n: float) -> float: ...


def quote_for(feedback_key: str, attribution: str) -> str:
    """The invented quote of one approval (the same for the same feedback)."""
    texts = QUOTES[attribution]
    pick = hashlib.blake2b(feedback_key.encode(), digest_size=4).digest()
    return texts[int.from_bytes(pick, "big") % len(texts)]


def stand_in_seal(seed: int, feedback_key: str) -> str:
    """A sealed form that opens under no key, the same for a seed (see module doc)."""
    raw = hashlib.blake2b(f"{seed}:quote:{feedback_key}".encode(), digest_size=48).digest()
    return PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def attribution_of(from_whom: str, agency: str | None, rng: random.Random) -> str:
    """How a quote from this giver is attributed in the report (a group, never a person)."""
    if from_whom == "partner_agency":
        if agency == "police":
            return "police_colleagues"
        if agency in _HEALTH:
            return "health_colleagues"
        if agency == "education":
            return "education_colleagues"
        return rng.choice(("family_centre", "partner_agencies"))
    return {"parent_carer": "parent_feedback", "young_person": "young_person_feedback",
            "staff": rng.choice(("cspa_social_workers", "cspa_staff"))}[from_whom]


class FeedbackSource:
    """A working day's feedback, on its own random stream (other events stay as they were)."""

    def __init__(self, seed: int, scale: float) -> None:
        self.seed, self.scale = seed, scale
        self.rng = random.Random(seed * 7919 + 61)
        #: complaints' answers on a stream of their own: the feedback itself stays the same
        self.answers = random.Random(seed * 7919 + 67)
        self.choose: dict[str, Callable[[random.Random], str]] = {
            name: prof.Choice(weights) for name, weights in (
                ("from", prof.FEEDBACK_FROM), ("agency", prof.FEEDBACK_AGENCIES),
                ("kind", prof.FEEDBACK_KINDS), ("channel", prof.FEEDBACK_CHANNELS),
                ("approver", prof.QUOTE_APPROVERS))}

    def day(self, sim: Emitter, d: date) -> None:
        """Emit the feedback received on working day ``d`` and what follows from it."""
        rng, open_ = self.rng, sim.day(d)[3]
        per_day = prof.FEEDBACK_PER_MONTH * 3 / prof.REF_WORKING_DAYS * self.scale
        for _ in range(prof.poisson(rng, per_day)):
            from_whom = self.choose["from"](rng)
            agency = self.choose["agency"](rng) if from_whom == "partner_agency" else None
            key, kind, at = sim.key("feedback"), self.choose["kind"](rng), open_ + rng.uniform(
                0, 8 * 3600)
            sim.emit(at, ev.FeedbackReceived, event_type="feedback.received",
                     feedback_key=key, from_whom=from_whom, agency=agency, kind=kind,
                     channel=self.choose["channel"](rng))
            if kind == "compliment" and rng.random() < prof.QUOTE_SHARE_OF_COMPLIMENTS:
                self.approve(sim, key, at, attribution_of(from_whom, agency, rng))
            if kind == "complaint":
                self.answer(sim, key, at)

    def approve(self, sim: Emitter, key: str, received: float, attribution: str) -> None:
        rng = self.rng
        approved = self.later(sim, received, prof.QUOTE_DELAY_WORKING_DAYS)
        consent = rng.random() < prof.QUOTE_CONSENT_SHARE
        sim.emit(approved, ev.FeedbackQuoteApproved, event_type="feedback.quote_approved",
                 feedback_key=key, sealed_quote=stand_in_seal(self.seed, key),
                 attribution=attribution, consent_to_publish=consent,
                 approver_role=self.choose["approver"](rng))
        if consent and rng.random() < prof.WITHDRAWN_SHARE:
            withdrawn = self.later(sim, approved, prof.WITHDRAWAL_DELAY_WORKING_DAYS)
            sim.emit(withdrawn, ev.FeedbackWithdrawn, event_type="feedback.withdrawn",
                     feedback_key=key)

    def answer(self, sim: Emitter, key: str, received: float) -> None:
        """A complaint's stage 1 answer, some extended first (``prof.COMPLAINT_*``)."""
        rng, days = self.answers, prof.COMPLAINT_RESPONSE_WORKING_DAYS
        if rng.random() < prof.COMPLAINT_EXTENDED_SHARE:
            extended = self.later(sim, received, prof.COMPLAINT_EXTENSION_WORKING_DAYS, rng)
            sim.emit(extended, ev.ComplaintExtended, event_type="complaint.extended",
                     feedback_key=key)
            days = prof.COMPLAINT_EXTENDED_RESPONSE_WORKING_DAYS
        sim.emit(self.later(sim, received, days, rng), ev.ComplaintResponded,
                 event_type="complaint.responded", feedback_key=key)

    def later(self, sim: Emitter, ts: float, days: tuple[int, int],
              rng: random.Random | None = None) -> float:
        """In office hours on the working day a whole number of ``days`` after ``ts``."""
        rng = rng or self.rng
        when = sim.add_working_days(ts, rng.randint(*days))
        start = sim.day(datetime.fromtimestamp(when, TZ).date())[3]
        return start + rng.uniform(3600, 7 * 3600)
