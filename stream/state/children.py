"""The children family: repeat contacts and re-referrals, from each child's record.

A contact is a *repeat* when the same child had another contact in the 12 months before
it; a referral (a contact progressed to children's social care, as section 7 counts it)
is a *re-referral* when the child had another referral in the 12 months before it (the
DfE's children-in-need definition). Twelve months are event time: a contact at local
time ``t`` repeats an earlier one at ``t'`` when ``t' >= t`` less one calendar year
(``year_back``), never the wall clock, so a rebuild gives the live figures.

A child's record (table key ``child:<child_key>``, folded from the hops of
``stream.worker.rekey``) keeps, per contact key, the contact's receipt and its referral
as *entries* ``[occurred_at (POSIX s), rank, source group]``; ``rank`` orders versions
(``Hop``), so a hop delivered twice, or an older version after a newer one, changes
nothing. Ties in time are broken by contact key: of two contacts at the same second,
the one with the greater key is the repeat.

State stays bounded: entries older than ``year_back(latest) - grace`` (``latest`` the
child's greatest event time) are *settled*: their contribution moves into the record's
tally ``s`` and they are deleted, and the latest settled time is kept (``lc``, ``lr``)
so a later entry is still judged against it. Settling moves a fact from an entry to the
tally with the same labels, so the figures do not change. A hop older than the cutoff
that is not already held can no longer be judged: ``merge`` says it passed the window
(the worker dead-letters it, ``child_window_passed``).

* ``child_contacts`` (month received, source group, repeat ``yes``/``no``).
* ``child_referrals`` (month referred, source group, re_referral ``yes``/``no``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from stream.state.facts import Count, Fact, FactContext, Family
from stream.state.records import Record

KIND = "child"
#: the record's maps: contacts and referrals, contact key -> entry
CONTACTS, REFERRALS = "c", "r"
#: the latest settled (deleted) entry's time of each map, and the settled tally
SETTLED_AT = {CONTACTS: "lc", REFERRALS: "lr"}
TALLY = "s"
LATEST = "m"
FIGURE = {CONTACTS: "child_contacts", REFERRALS: "child_referrals"}
YES, NO = "yes", "no"
DAY = 86_400.0

#: entry: [occurred_at (POSIX s), rank (list: greatest wins), source group]; its fields
#: are read by name (an ``itemgetter`` each), as record slots are
Entry = list[Any]
at: Callable[[Entry], float] = itemgetter(0)
rank: Callable[[Entry], list[Any]] = itemgetter(1)
source_group: Callable[[Entry], str] = itemgetter(2)


@dataclass(frozen=True)
class Hop:
    """What one contact tells its child's record (``stream.worker.rekey`` builds it).

    ``contact`` and ``referral`` are entries; a referral's rank extends the receipt's,
    so a corrected receipt (another source group) moves its referral too. A *withdrawal*
    (``withdrawn``) has entries without a source group: a corrected receipt names another
    child, and this child's record keeps the contact as withdrawn at the correction's rank.
    """

    contact_key: str
    contact: Entry
    referral: Entry | None = None
    #: the earliest time an earlier version of the receipt gave this child, when before
    #: the contact's (``records.first_at``): that version may be settled here
    first: float | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"c": self.contact_key, "t": self.contact}
        if self.referral is not None:
            out["r"] = self.referral
        if self.first is not None:
            out["f"] = self.first
        return out

    def withdrawn(self) -> Hop:
        """The withdrawal of this hop's contact from another child, at the same ranks."""
        referral = None if self.referral is None else [*self.referral[:2], None]
        return Hop(self.contact_key, [*self.contact[:2], None], referral)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Hop:
        """The hop of a decoded value; raises (KeyError, TypeError, ValueError) if malformed."""
        key, contact, referral, first = raw["c"], raw["t"], raw.get("r"), raw.get("f")
        for entry in (contact, referral):
            if entry is not None and not (isinstance(entry, list) and len(entry) == 3
                                          and isinstance(entry[0], int | float)
                                          and isinstance(entry[1], list)
                                          and isinstance(entry[2], str | None)):
                raise ValueError("malformed entry")
        if not isinstance(key, str):
            raise TypeError("contact key")
        if first is not None and not isinstance(first, int | float):
            raise TypeError("first time")
        return cls(key, contact, referral, first)


def year_back(ts: float, tz: ZoneInfo) -> float:
    """The same local wall-clock time one calendar year earlier (29 February: the 28th)."""
    local = datetime.fromtimestamp(ts, tz)
    day = min(local.day, 28) if local.month == 2 else local.day
    return local.replace(year=local.year - 1, day=day).timestamp()


#: one calendar year back is 365 or 366 days of local time, and the zone's offsets on the
#: two dates differ by an hour or so (a summer-time change; Samoa once skipped a whole
#: day): so a time this close before ``ts`` is surely within the year, and one this far
#: surely beyond it, with days to spare either way
_SURELY_WITHIN, _SURELY_BEYOND = 363 * DAY, 368 * DAY


def within_year(previous: float | None, ts: float, tz: ZoneInfo) -> bool:
    """Whether an earlier time ``previous`` is at or after ``year_back(ts)``: a repeat.

    ``year_back`` (about 2 us) runs only in the few days either side of a year, where
    the bounds cannot tell; elsewhere the answer is the same without it.
    """
    if previous is None or previous < ts - _SURELY_BEYOND:
        return False
    return previous >= ts - _SURELY_WITHIN or previous >= year_back(ts, tz)


def cutoff(record: Record, grace_days: float, tz: ZoneInfo) -> float:
    """Entries before this time are settled, hops before it have passed the window."""
    return year_back(record[LATEST], tz) - grace_days * DAY


def before_cutoff(record: Record, ts: float, grace_days: float, tz: ZoneInfo) -> bool:
    """Whether ``ts`` is before the record's ``cutoff`` (the record has a ``LATEST``);
    ``year_back`` runs only within days of it, as in ``within_year``."""
    latest, grace = record[LATEST], grace_days * DAY
    if ts >= latest - _SURELY_WITHIN - grace:
        return False
    return ts < latest - _SURELY_BEYOND - grace or ts < cutoff(record, grace_days, tz)


def withdrawn(entry: Entry) -> bool:
    """A contact no longer this child's (a corrected receipt names another child)."""
    return entry[2] is None


def flags(record: Record, which: str, tz: ZoneInfo) -> list[tuple[str, Entry, str]]:
    """(contact key, entry, ``yes``/``no``) of one map's live (not withdrawn) entries, in
    time order: repeat or not."""
    entries = sorted(((k, e) for k, e in record.get(which, {}).items() if e[2] is not None),
                     key=lambda kv: (at(kv[1]), kv[0]))
    previous: float | None = record.get(SETTLED_AT[which])
    out = []
    for key, entry in entries:
        ts = at(entry)
        out.append((key, entry, YES if within_year(previous, ts, tz) else NO))
        previous = ts
    return out


def child_facts(record: Record, ctx: FactContext) -> list[Fact]:
    """The facts of a child's record: its live entries and its settled tally."""
    facts: list[Fact] = []
    for which in (CONTACTS, REFERRALS):
        figure = FIGURE[which]
        for _key, entry, flag in flags(record, which, ctx.tz):
            facts.append((figure, (ctx.month(at(entry)), source_group(entry), flag), None))
    for figure, month, group, flag, n in record.get(TALLY, ()):
        facts.extend([(figure, (month, group, flag), None)] * n)
    return facts


def merge(record: Record | None, hop: Hop, partition: int, grace_days: float,
          ctx: FactContext) -> tuple[Record | None, bool]:
    """(the record with ``hop`` merged and settled, or None if unchanged; whether a part
    of the hop passed the window). Commutative and idempotent over hops within it."""
    new = _copy(record, partition)
    results = [_put(new, which, hop.contact_key, entry, grace_days, ctx.tz,
                    hop.first if which == CONTACTS else None)
               for which, entry in ((CONTACTS, hop.contact), (REFERRALS, hop.referral))
               if entry is not None]
    if _CHANGED not in results:
        return None, _PASSED in results
    settle(new, grace_days, ctx)
    return new, _PASSED in results


_CHANGED, _PASSED, _SAME = "changed", "passed", "same"


def _copy(record: Record | None, partition: int) -> Record:
    """A copy to change (its maps copied too: the stored record is never touched)."""
    if record is None:
        return {"k": KIND, "p": partition, CONTACTS: {}, REFERRALS: {}}
    return {**record, CONTACTS: dict(record.get(CONTACTS, {})),
            REFERRALS: dict(record.get(REFERRALS, {}))}


def _put(record: Record, which: str, key: str, entry: Entry, grace_days: float,
         tz: ZoneInfo, first: float | None = None) -> str:
    """Merge one part: the greater rank wins; a part not held and before the cutoff passed.

    A withdrawal replaces only a part held (a contact never held, or settled, is not
    this child's to withdraw) and leaves ``LATEST`` as it was: it only grows, so what
    was settled stays final. A contact not held whose earlier version for this child was
    before the cutoff (``first``) was settled into the tally, or passed the window
    itself: either way its correction passes too, so it is never counted twice (the
    tally keeps the old version's month)."""
    held = record[which].get(key)
    if held is not None and rank(held) >= rank(entry):
        return _SAME  # the same version, or an older one
    if withdrawn(entry):
        if held is None:
            return _SAME
        record[which][key] = entry
        return _CHANGED
    earliest = at(entry) if first is None else min(at(entry), first)
    if held is None and LATEST in record and before_cutoff(record, earliest, grace_days, tz):
        return _PASSED
    record[which][key] = entry
    record[LATEST] = max(record.get(LATEST, at(entry)), at(entry))
    return _CHANGED


def settle(record: Record, grace_days: float, ctx: FactContext) -> None:
    """Move entries before the cutoff into the tally (in place): same facts, less state.

    Nothing moves while the oldest entry is not before the cutoff: the common case, told
    without ``cutoff``'s ``year_back`` nor ``settle_before``'s sort of every entry."""
    oldest = min((at(e) for which in (CONTACTS, REFERRALS) for e in record[which].values()),
                 default=math.inf)
    if LATEST in record and not before_cutoff(record, oldest, grace_days, ctx.tz):
        return
    settle_before(record, cutoff(record, grace_days, ctx.tz), ctx)


def erased(record: Record, before: float, ctx: FactContext) -> Record | None:
    """The record without its entries before ``before`` (the retention schedule's cut-off:
    their facts kept in the tally, no contact key kept), or None if it has none."""
    if not any(at(e) < before for which in (CONTACTS, REFERRALS)
               for e in record.get(which, {}).values()):
        return None
    out = {**record, CONTACTS: dict(record.get(CONTACTS, {})),
           REFERRALS: dict(record.get(REFERRALS, {}))}
    settle_before(out, before, ctx)
    return out


def settle_before(record: Record, limit: float, ctx: FactContext) -> None:
    """Move entries before ``limit`` (POSIX s) into the tally, in place."""
    tally = {(f, m, g, fl): n for f, m, g, fl, n in record.get(TALLY, ())}
    for which in (CONTACTS, REFERRALS):
        for key in [k for k, e in record[which].items() if withdrawn(e) and at(e) < limit]:
            del record[which][key]  # counted nowhere: dropped, not tallied
        for key, entry, flag in flags(record, which, ctx.tz):
            if at(entry) >= limit:
                break  # in time order: the rest are within the window
            label = (FIGURE[which], ctx.month(at(entry)), source_group(entry), flag)
            tally[label] = tally.get(label, 0) + 1
            record[SETTLED_AT[which]] = max(at(entry), record.get(SETTLED_AT[which], at(entry)))
            del record[which][key]
    if tally:
        record[TALLY] = [[*label, n] for label, n in sorted(tally.items())]


def held_entries(record: Record) -> int:
    """Entries a child's record keeps (the bound the window holds it to)."""
    return len(record.get(CONTACTS, {})) + len(record.get(REFERRALS, {}))


CHILDREN = Family(
    KIND, child_facts,
    counts=(
        Count("child_contacts", "cspa_child_contacts", ("month", "source_group", "repeat"),
              "Contacts with a child key received in the month, by whether the child had "
              "another contact in the 12 months before (event time)."),
        Count("child_referrals", "cspa_child_referrals",
              ("month", "source_group", "re_referral"),
              "Referrals (progressions to children's social care) with a child key in the "
              "month, by whether the child had another referral in the 12 months before."),
    ),
)
