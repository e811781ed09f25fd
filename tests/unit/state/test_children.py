"""A child's record (stream/state/children.py): repeats, re-referrals, the 12-month window.

Expected figures are counted here by a plain loop over every hop ever sent (``_truth``),
never from a record, so settling (deleting old entries) is checked not to change them.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta

from stream.state import children as ch
from stream.state.facts import FactContext
from tests.conftest import LONDON

T0 = datetime(2019, 1, 10, 10, 0, tzinfo=LONDON)
GRACE = 92.0


def _hop(key: str, when: datetime, group: str = "police", referred: datetime | None = None,
         version: str = "v1") -> ch.Hop:
    ts = when.timestamp()
    contact = [ts, [ts, ts, version], group]
    referral = None
    if referred is not None:
        rts = referred.timestamp()
        referral = [rts, [rts, rts, version, ts, ts, version], group]
    return ch.Hop(key, contact, referral)


def _fold(hops: list[ch.Hop], ctx: FactContext, grace: float = GRACE) -> tuple[
        dict[str, object] | None, int]:
    record, passed = None, 0
    for hop in hops:
        new, late = ch.merge(record, hop, 0, grace, ctx)
        passed += late
        record = new if new is not None else record
    return record, passed


def _figures(record: dict[str, object] | None, ctx: FactContext) -> Counter[tuple[object, ...]]:
    return Counter((f, *labels) for f, labels, _ in ch.child_facts(record or {}, ctx))


def _truth(hops: list[ch.Hop], ctx: FactContext) -> Counter[tuple[object, ...]]:
    """Plain loops: each contact against every other contact of the child."""
    out: Counter[tuple[object, ...]] = Counter()
    for figure, part in (("child_contacts", "contact"), ("child_referrals", "referral")):
        seen = {h.contact_key: getattr(h, part) for h in hops if getattr(h, part) is not None}
        for key, entry in seen.items():
            ts = entry[0]
            start = datetime.fromtimestamp(ts, LONDON)
            start = start.replace(year=start.year - 1,
                                  day=min(start.day, 28) if start.month == 2 else start.day)
            repeat = any((other[0], k) < (ts, key) and other[0] >= start.timestamp()
                         for k, other in seen.items() if k != key)
            out[(figure, ctx.month(ts), entry[2], "yes" if repeat else "no")] += 1
    return out


def test_a_second_contact_within_twelve_months_is_a_repeat(ctx: FactContext) -> None:
    hops = [_hop("a", T0), _hop("b", T0 + timedelta(days=300)),
            _hop("c", T0 + timedelta(days=300 + 400))]
    record, _ = _fold(hops, ctx, grace=10_000)
    assert _figures(record, ctx) == Counter({
        ("child_contacts", "2019-01", "police", "no"): 1,
        ("child_contacts", "2019-11", "police", "yes"): 1,
        ("child_contacts", "2020-12", "police", "no"): 1})


def test_twelve_months_are_calendar_months_inclusive(ctx: FactContext) -> None:
    same_day = T0.replace(year=2020)  # exactly a year later: within
    record, _ = _fold([_hop("a", T0), _hop("b", same_day)], ctx)
    assert _figures(record, ctx)[("child_contacts", "2020-01", "police", "yes")] == 1
    record, _ = _fold([_hop("a", T0), _hop("b", same_day + timedelta(seconds=1))], ctx)
    assert _figures(record, ctx)[("child_contacts", "2020-01", "police", "no")] == 1


def test_re_referral_follows_referrals_not_contacts(ctx: FactContext) -> None:
    hops = [_hop("a", T0, referred=T0 + timedelta(days=2)),
            _hop("b", T0 + timedelta(days=30)),
            _hop("c", T0 + timedelta(days=60), referred=T0 + timedelta(days=61))]
    record, _ = _fold(hops, ctx)
    figures = _figures(record, ctx)
    assert figures[("child_referrals", "2019-01", "police", "no")] == 1
    assert figures[("child_referrals", "2019-03", "police", "yes")] == 1


def test_a_hop_twice_or_out_of_order_counts_once(ctx: FactContext) -> None:
    hops = [_hop("a", T0), _hop("b", T0 + timedelta(days=5), referred=T0 + timedelta(days=6))]
    once, _ = _fold(hops, ctx)
    twice, _ = _fold([*reversed(hops), *hops, hops[1]], ctx)
    assert _figures(once, ctx) == _figures(twice, ctx)
    assert ch.merge(once, hops[0], 0, GRACE, ctx) == (None, False)


def test_a_corrected_receipt_moves_its_referral_group(ctx: FactContext) -> None:
    first = _hop("a", T0, "police", referred=T0 + timedelta(days=1))
    corrected = _hop("a", T0, "schools", referred=T0 + timedelta(days=1), version="v2")
    record, _ = _fold([corrected, first], ctx)
    assert set(_figures(record, ctx)) == {("child_contacts", "2019-01", "schools", "no"),
                                          ("child_referrals", "2019-01", "schools", "no")}


def test_a_withdrawal_takes_the_contact_and_its_referral_out_and_moves_later_repeats(
        ctx: FactContext) -> None:
    first = _hop("a", T0, "police", referred=T0 + timedelta(days=1))
    later = _hop("b", T0 + timedelta(days=30), "schools", referred=T0 + timedelta(days=31))
    both, _ = _fold([first, later], ctx)
    assert _figures(both, ctx)[("child_contacts", "2019-02", "schools", "yes")] == 1
    # "a" was corrected to name another child: withdrawn at the correction's rank (v2)
    gone = _hop("a", T0, "police", referred=T0 + timedelta(days=1), version="v2").withdrawn()
    record, passed = _fold([first, later, gone], ctx)
    assert not passed and record is not None
    assert _figures(record, ctx) == _truth([later], ctx)  # as if "a" had never been this child's
    assert _figures(record, ctx)[("child_contacts", "2019-02", "schools", "no")] == 1
    # the withdrawal is final against the version it withdrew, sent again in any order
    again, _ = _fold([gone, first, later, first, gone], ctx)
    assert again is not None and _figures(again, ctx) == _figures(record, ctx)
    # a later correction naming this child again wins over the withdrawal
    back = _hop("a", T0 + timedelta(days=2), "police", version="v3")
    record, _ = _fold([first, later, gone, back], ctx)
    assert _figures(record, ctx) == _truth([back, later], ctx)


def test_a_withdrawal_of_a_contact_never_held_changes_nothing(ctx: FactContext) -> None:
    record, _ = _fold([_hop("b", T0)], ctx)
    gone = _hop("a", T0 - timedelta(days=900), version="v2").withdrawn()
    assert ch.merge(record, gone, 0, GRACE, ctx) == (None, False)  # not held: not passed
    assert ch.merge(None, gone, 0, GRACE, ctx) == (None, False)


def test_withdrawn_entries_are_dropped_when_settled_not_tallied(ctx: FactContext) -> None:
    gone = _hop("a", T0, version="v2").withdrawn()
    record, _ = _fold([_hop("a", T0), gone, _hop("b", T0 + timedelta(days=700))], ctx)
    assert record is not None and ch.held_entries(record) == 1  # "a" settled away
    assert _figures(record, ctx) == _truth([_hop("b", T0 + timedelta(days=700))], ctx)
    assert ch.TALLY not in record


def test_settling_keeps_figures_and_bounds_the_record(ctx: FactContext) -> None:
    hops = [_hop(f"k{i:03d}", T0 + timedelta(days=45 * i),
                 referred=T0 + timedelta(days=45 * i + 1) if i % 3 == 0 else None)
            for i in range(40)]
    record, passed = _fold(hops, ctx)
    assert passed == 0
    assert record is not None
    assert _figures(record, ctx) == _truth(hops, ctx)
    assert ch.held_entries(record) <= 2 * (365 + GRACE) / 45 + 2  # the window, not 40 contacts
    first = datetime.fromtimestamp(record[ch.LATEST], LONDON)  # type: ignore[arg-type]
    oldest = min(e[0] for e in record[ch.CONTACTS].values())  # type: ignore[attr-defined]
    assert oldest >= ch.year_back(first.timestamp(), LONDON) - GRACE * ch.DAY


def test_a_hop_older_than_the_window_passes_it(ctx: FactContext) -> None:
    record, _ = _fold([_hop("new", T0 + timedelta(days=600))], ctx)
    new, passed = ch.merge(record, _hop("old", T0), 0, GRACE, ctx)
    assert (new, passed) == (None, True)
    within = T0 + timedelta(days=600 - 365 - GRACE + 2)
    new, passed = ch.merge(record, _hop("late", within), 0, GRACE, ctx)
    assert new is not None and not passed


def test_any_order_within_the_grace_gives_the_truth(ctx: FactContext) -> None:
    rng = random.Random(29)
    for _ in range(40):
        hops = [_hop(f"k{i}", T0 + timedelta(days=rng.randrange(0, 900), hours=i),
                     rng.choice(["police", "schools"]),
                     referred=T0 + timedelta(days=rng.randrange(0, 900))
                     if rng.random() < 0.3 else None) for i in range(12)]
        hops.sort(key=lambda h: h.contact[0])  # in time order, then jittered a little
        order = sorted(range(len(hops)), key=lambda i: i + rng.uniform(-1.5, 1.5))
        shuffled = [hops[i] for i in order]
        record, passed = _fold(shuffled + shuffled[:3], ctx, grace=10_000)
        assert passed == 0
        assert _figures(record, ctx) == _truth(hops, ctx)


def test_hop_json_round_trip_and_refusal() -> None:
    hop = _hop("a", T0, referred=T0 + timedelta(days=1))
    assert ch.Hop.from_json(hop.to_json()) == hop
    assert ch.Hop.from_json(hop.withdrawn().to_json()) == hop.withdrawn()
    for bad in ({"c": "a"}, {"c": 1, "t": hop.contact}, {"c": "a", "t": [1, "x", "g"]},
                {"c": "a", "t": [1, [1], 7]}):
        try:
            ch.Hop.from_json(bad)
        except (KeyError, TypeError, ValueError):
            continue
        raise AssertionError(f"accepted {bad}")


def test_retention_settles_entries_before_its_cut_off_with_the_same_facts(
        ctx: FactContext) -> None:
    hops = [_hop("old", T0, referred=T0 + timedelta(days=1)),
            _hop("new", T0 + timedelta(days=200))]
    record, _ = _fold(hops, ctx)
    assert record is not None
    kept = ch.erased(record, (T0 + timedelta(days=100)).timestamp(), ctx)
    assert kept is not None and "old" not in str(kept)  # no contact key before the cut-off
    assert _figures(kept, ctx) == _figures(record, ctx) == _truth(hops, ctx)
    assert ch.erased(kept, (T0 + timedelta(days=100)).timestamp(), ctx) is None


def test_within_a_year_by_bounds_agrees_with_year_back_in_any_zone() -> None:
    # The bounds answer without year_back away from the year's edge: near it, on it,
    # either side of 29 February, summer-time changes and Samoa's skipped day
    # (Pacific/Apia, 30 December 2011), the answer is exactly the comparison's.
    from zoneinfo import ZoneInfo

    rng = random.Random(7)
    zones = [ZoneInfo(z) for z in ("Europe/London", "Pacific/Apia", "Australia/Lord_Howe",
                                   "America/St_Johns", "UTC")]
    edges = [datetime(2012, 12, 30, 12), datetime(2024, 2, 29, 9), datetime(2025, 3, 1, 0, 30),
             datetime(2026, 3, 29, 1, 30), datetime(2026, 10, 25, 1, 30)]
    for tz in zones:
        times = [e.replace(tzinfo=tz).timestamp() for e in edges]
        times += [rng.uniform(946_684_800, 2_208_988_800) for _ in range(400)]
        for ts in times:
            back = ch.year_back(ts, tz)
            for delta in (0.0, -1e-6, 1e-6, -1.0, 1.0, -3600.0, 3600.0, -ch.DAY, ch.DAY,
                          -3 * ch.DAY, 3 * ch.DAY, rng.uniform(-6, 6) * ch.DAY,
                          -400 * ch.DAY, 400 * ch.DAY):
                previous = back + delta
                assert ch.within_year(previous, ts, tz) == (previous >= back), (tz, ts, delta)
    assert ch.within_year(None, T0.timestamp(), LONDON) is False


def test_before_the_cutoff_by_bounds_agrees_with_the_cutoff() -> None:
    rng = random.Random(8)
    for grace in (0.0, GRACE):
        for _ in range(300):
            record = {ch.LATEST: rng.uniform(946_684_800, 2_208_988_800)}
            cut = ch.cutoff(record, grace, LONDON)
            for delta in (0.0, -1e-6, 1e-6, -3600.0, 3600.0, -2 * ch.DAY, 2 * ch.DAY,
                          rng.uniform(-8, 8) * ch.DAY, -30 * ch.DAY, 30 * ch.DAY):
                ts = cut + delta
                assert ch.before_cutoff(record, ts, grace, LONDON) == (ts < cut), delta
