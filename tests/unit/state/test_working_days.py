"""Tests for stream.state.working_days; expected values are worked out by hand in the comments."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from stream.state.working_days import OfficeHours, WorkingCalendar, us_rounded

LONDON = ZoneInfo("Europe/London")
PLUS1 = timezone(timedelta(hours=1))
CAIRO_SUMMER, CAIRO_WINTER = timezone(timedelta(hours=3)), timezone(timedelta(hours=2))

CAL = WorkingCalendar()
ROLL = WorkingCalendar(roll_after_hours=True)


def lon(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    """A London wall-clock instant."""
    return datetime(y, m, d, hh, mm, tzinfo=LONDON)


# A plain week: Mon 2 Mar 2026 .. Fri 6 Mar, weekend 7-8 Mar, Mon 9 Mar (all GMT).
MON, TUE, WED, THU, FRI, SAT, SUN, NEXT_MON = (2, 3, 4, 5, 6, 7, 8, 9)


def mar(day: int, hh: int = 0, mm: int = 0) -> datetime:
    return lon(2026, 3, day, hh, mm)


# -- bank holidays ------------------------------------------------------------------------


def test_christmas_2026_with_boxing_day_substitute() -> None:
    # Fri 25 Dec Christmas, Sat 26 Boxing Day -> substitute Mon 28 Dec; Sun 27 weekend.
    working = {d: CAL.is_working_day(date(2026, 12, d)) for d in range(24, 30)}
    assert working == {24: True, 25: False, 26: False, 27: False, 28: False, 29: True}
    assert CAL.next_working_day(date(2026, 12, 24)) == date(2026, 12, 29)
    assert CAL.add_working_days(lon(2026, 12, 24, 10), 1) == lon(2026, 12, 29, 10)
    assert CAL.working_days_between(lon(2026, 12, 24, 10), lon(2026, 12, 29, 10)) == 1.0
    assert CAL.working_day_count(lon(2026, 12, 24, 10), lon(2026, 12, 29, 8)) == 1


def test_easter_2024() -> None:
    # Good Friday 29 Mar, Easter Monday 1 Apr; BST also starts on Sun 31 Mar.
    assert not CAL.is_working_day(date(2024, 3, 29))
    assert not CAL.is_working_day(date(2024, 4, 1))
    assert CAL.is_working_day(date(2024, 3, 28)) and CAL.is_working_day(date(2024, 4, 2))
    # Thu 12:00 GMT + 1 working day = Tue 12:00 BST, 5 days less an hour of real time.
    received, due = lon(2024, 3, 28, 12), lon(2024, 4, 2, 12)
    assert CAL.add_working_days(received, 1) == due
    assert CAL.working_days_between(received, due) == 1.0
    assert CAL.calendar_days_between(received, due) == pytest.approx(5 - 1 / 24)


def test_coronation_bank_holiday_2023() -> None:
    assert not CAL.is_working_day(date(2023, 5, 8))  # Mon 8 May 2023
    assert not CAL.is_working_day(date(2023, 5, 1))  # and the early May bank holiday
    assert CAL.add_working_days(lon(2023, 5, 5, 10), 1) == lon(2023, 5, 9, 10)  # Fri -> Tue


def test_august_bank_holiday_proves_england_subdivision() -> None:
    # The GB calendar without subdiv lacks it, so finding it means subdiv="ENG" is used.
    assert date(2024, 8, 26) not in holidays.country_holidays("GB", years=2024)
    assert not CAL.is_working_day(date(2024, 8, 26))  # Mon 26 Aug 2024
    assert not CAL.is_working_day(date(2026, 8, 31))  # Mon 31 Aug 2026
    assert CAL.add_working_days(lon(2024, 8, 23, 10), 1) == lon(2024, 8, 27, 10)


def test_extra_closures() -> None:
    cal = WorkingCalendar(extra_closures=[date(2026, 3, TUE)])
    assert not cal.is_working_day(date(2026, 3, TUE))
    assert cal.extra_closures == frozenset({date(2026, 3, TUE)})
    assert cal.add_working_days(mar(MON, 10), 1) == mar(WED, 10)


# -- clock changes ------------------------------------------------------------------------


def test_bst_start_2026() -> None:
    # Sun 29 Mar 2026 lasts 23 h; it is not a working day, so the clock stands still.
    assert CAL.calendar_days_between(lon(2026, 3, 28), lon(2026, 3, 30)) == 47 / 24
    fri, mon = lon(2026, 3, 27, 10), lon(2026, 3, 30, 10)  # 10:00 GMT, 10:00 BST: 71 h
    assert CAL.working_days_between(fri, mon) == 1.0
    assert CAL.add_working_days(fri, 1) == datetime(2026, 3, 30, 9, tzinfo=UTC)
    # Fri 16-17 and Mon 09-10 BST.
    assert CAL.working_hours_between(lon(2026, 3, 27, 16), mon) == 2.0
    assert CAL.add_working_hours(lon(2026, 3, 27, 16), 2) == mon


def test_bst_end_2026() -> None:
    # Sun 25 Oct 2026 lasts 25 h.
    assert CAL.calendar_days_between(lon(2026, 10, 24), lon(2026, 10, 26)) == 49 / 24
    fri, mon = lon(2026, 10, 23, 10), lon(2026, 10, 26, 10)  # 10:00 BST, 10:00 GMT: 73 h
    assert CAL.add_working_days(fri, 1) == mon == datetime(2026, 10, 26, 10, tzinfo=UTC)
    assert CAL.working_days_between(fri, mon) == 1.0
    # Received in the repeated hour of the Sunday: the clock starts Mon 00:00.
    assert CAL.working_days_between(lon(2026, 10, 25, 1, 30), lon(2026, 10, 26, 6)) == 0.25


def test_23_and_25_hour_working_days_count_as_one_day() -> None:
    # London changes clocks on Sundays only; Cairo's 2023 changes fell on working days.
    cal = WorkingCalendar(tz="Africa/Cairo")
    # Fri 28 Apr 2023 starts at 01:00 (+03) and lasts 23 h; 12:30 is 11.5 h in: half.
    thu = datetime(2023, 4, 27, tzinfo=CAIRO_WINTER)
    fri_half = datetime(2023, 4, 28, 12, 30, tzinfo=CAIRO_SUMMER)
    assert cal.working_days_between(thu, fri_half) == pytest.approx(1.5)
    assert cal.add_working_days(thu, 1.5) == fri_half
    # Thu 26 Oct 2023 runs 00:00 (+03) to 24:00 (+02), 25 h; 12:30 (+03) is 12.5 h in.
    start = datetime(2023, 10, 26, tzinfo=CAIRO_SUMMER)
    end = datetime(2023, 10, 27, tzinfo=CAIRO_WINTER)
    assert cal.working_days_between(start, end) == 1.0
    assert cal.calendar_days_between(start, end) == 25 / 24
    half = datetime(2023, 10, 26, 12, 30, tzinfo=CAIRO_SUMMER)
    assert cal.working_days_between(start, half) == pytest.approx(0.5)


# -- working days -------------------------------------------------------------------------


def test_weekends_stop_the_clock() -> None:
    assert CAL.working_days_between(mar(FRI, 10), mar(NEXT_MON, 10)) == 1.0
    assert CAL.working_days_between(mar(SAT, 11), mar(NEXT_MON, 12)) == 0.5  # from Mon 00:00
    assert CAL.working_days_between(mar(SAT, 11), mar(SUN, 15)) == 0.0
    assert CAL.working_days_between(mar(FRI, 10), mar(SAT, 15)) == pytest.approx(14 / 24)
    assert CAL.add_working_days(mar(FRI, 10), 1) == mar(NEXT_MON, 10)
    assert CAL.add_working_days(mar(SAT, 11), 0.5) == mar(NEXT_MON, 12)
    assert CAL.next_working_day(date(2026, 3, FRI)) == date(2026, 3, NEXT_MON)
    assert not CAL.is_working_day(date(2026, 3, SAT))


def test_same_day_fractions() -> None:
    assert CAL.working_days_between(mar(MON, 10), mar(MON, 16)) == 0.25
    assert CAL.working_days_between(mar(MON), mar(MON, 6)) == 0.25
    assert CAL.working_days_between(mar(MON, 10), mar(MON, 10)) == 0.0
    assert CAL.add_working_days(mar(MON, 10), 0.25) == mar(MON, 16)
    assert CAL.add_working_days(mar(MON, 10), 1) == mar(TUE, 10)
    assert CAL.add_working_days(mar(MON, 10), 0) == mar(MON, 10)


def test_target_on_the_boundary_before_a_weekend_is_fridays_end() -> None:
    # Thu 00:00 + 2 ends with Friday: the earliest such instant is Sat 00:00, not Mon.
    assert CAL.add_working_days(mar(THU), 2) == mar(SAT)
    assert CAL.add_working_days(mar(THU), 2.25) == mar(NEXT_MON, 6)


def test_working_day_count() -> None:
    assert CAL.working_day_count(mar(MON, 10), mar(MON, 16)) == 0
    assert CAL.working_day_count(mar(MON, 16), mar(TUE, 9)) == 1
    assert CAL.working_day_count(mar(MON, 10), mar(NEXT_MON, 9)) == 5
    assert CAL.working_day_count(mar(FRI, 10), mar(SAT, 9)) == 1  # Sat counts as Mon
    assert CAL.working_day_count(mar(SAT, 10), mar(NEXT_MON, 9)) == 0


def test_calendar_days_between() -> None:
    assert CAL.calendar_days_between(mar(MON, 10), mar(TUE, 16)) == 1.25
    assert CAL.calendar_days_between(mar(FRI, 12), mar(NEXT_MON, 12)) == 3.0


# -- roll-over after hours ----------------------------------------------------------------


def test_roll_after_hours_on() -> None:
    assert ROLL.clock_start(mar(MON, 18)) == mar(TUE, 9)
    assert ROLL.clock_start(mar(MON, 17)) == mar(TUE, 9)  # office end itself rolls
    assert ROLL.clock_start(mar(MON, 7)) == mar(MON, 9)
    assert ROLL.clock_start(mar(SAT, 11)) == mar(NEXT_MON, 9)
    assert ROLL.clock_start(mar(MON, 16, 59)) == mar(MON, 16, 59)
    assert ROLL.clock_start(mar(MON, 9)) == mar(MON, 9)
    assert ROLL.clock_start(lon(2026, 12, 24, 17, 30)) == lon(2026, 12, 29, 9)
    assert ROLL.clock_start(lon(2026, 3, 27, 18)) == lon(2026, 3, 30, 9)  # into BST
    assert ROLL.working_days_between(mar(MON, 18), mar(TUE, 15)) == 0.25  # from Tue 09:00
    assert ROLL.add_working_days(mar(MON, 18), 1) == mar(WED, 9)
    assert ROLL.working_days_between(mar(SAT, 11), mar(SAT, 12)) == 0.0  # before the start
    assert ROLL.working_day_count(mar(MON, 18), mar(TUE, 10)) == 0
    assert ROLL.working_day_count(mar(MON, 18), mar(MON, 19)) == 0
    early = WorkingCalendar(office_hours=OfficeHours(time(8, 30), time(16, 30)),
                            roll_after_hours=True)
    assert early.clock_start(mar(MON, 16, 45)) == mar(TUE, 8, 30)


def test_roll_after_hours_off() -> None:
    late = mar(MON, 18)
    assert CAL.clock_start(late) is late
    assert CAL.working_days_between(late, mar(TUE, 15)) == pytest.approx(21 / 24)
    assert CAL.add_working_days(late, 1) == mar(TUE, 18)
    assert CAL.working_day_count(late, mar(TUE, 10)) == 1


# -- working hours ------------------------------------------------------------------------


def test_working_hours_between() -> None:
    assert CAL.working_hours_between(mar(MON, 10), mar(MON, 16)) == 6.0
    assert CAL.working_hours_between(mar(MON, 16), mar(TUE, 10)) == 2.0
    assert CAL.working_hours_between(mar(FRI, 16), mar(NEXT_MON, 10)) == 2.0
    assert CAL.working_hours_between(mar(MON, 7), mar(MON, 8)) == 0.0
    assert CAL.working_hours_between(mar(SAT, 7), mar(SUN, 20)) == 0.0
    assert CAL.working_hours_between(mar(MON, 8), mar(NEXT_MON, 8)) == 40.0


def test_add_working_hours() -> None:
    assert CAL.add_working_hours(mar(MON, 15), 4) == mar(TUE, 11)
    assert CAL.add_working_hours(mar(MON, 13), 4) == mar(MON, 17)  # exactly office end
    assert CAL.add_working_hours(mar(MON, 9), 8) == mar(MON, 17)
    assert CAL.add_working_hours(mar(MON, 9), 8.5) == mar(TUE, 9, 30)
    assert CAL.add_working_hours(mar(MON, 18), 4) == mar(TUE, 13)
    assert CAL.add_working_hours(mar(SAT, 11), 1) == mar(NEXT_MON, 10)
    assert CAL.add_working_hours(mar(MON, 10), 0) == mar(MON, 10)
    assert CAL.add_working_hours(lon(2026, 12, 24, 15), 4) == lon(2026, 12, 29, 11)


# -- input handling -----------------------------------------------------------------------

NAIVE = datetime(2026, 3, 2, 10)
CALLS: list[Callable[[datetime], Any]] = [
    CAL.clock_start,
    ROLL.clock_start,
    lambda t: CAL.working_days_between(t, mar(TUE)),
    lambda t: CAL.working_days_between(mar(MON), t),
    lambda t: CAL.add_working_days(t, 1),
    lambda t: CAL.working_hours_between(t, mar(TUE)),
    lambda t: CAL.add_working_hours(t, 1),
    lambda t: CAL.calendar_days_between(t, mar(TUE)),
    lambda t: CAL.working_day_count(t, mar(TUE)),
]


@pytest.mark.parametrize("call", CALLS)
def test_naive_datetimes_raise(call: Callable[[datetime], Any]) -> None:
    with pytest.raises(ValueError, match="naive"):
        call(NAIVE)


@pytest.mark.parametrize("name", ["working_days_between", "working_hours_between",
                                  "calendar_days_between", "working_day_count"])
def test_end_before_start_raises(name: str) -> None:
    with pytest.raises(ValueError, match="before start"):
        getattr(CAL, name)(mar(TUE), mar(MON))


@pytest.mark.parametrize("amount", [-1.0, float("nan"), float("inf")])
def test_bad_amounts_raise(amount: float) -> None:
    with pytest.raises(ValueError):
        CAL.add_working_days(mar(MON), amount)
    with pytest.raises(ValueError):
        CAL.add_working_hours(mar(MON), amount)


def test_configuration_is_validated_and_immutable() -> None:
    with pytest.raises(ValueError):
        OfficeHours(time(17), time(9))
    with pytest.raises(AttributeError):
        CAL.roll_after_hours = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        CAL.is_working_day(mar(MON))


def test_utc_and_plus_one_inputs_give_the_same_answers() -> None:
    # Mon 6 Jul 2026 10:00 BST, three ways; Fri 10 Jul 15:30 BST as the end.
    starts = [lon(2026, 7, 6, 10), datetime(2026, 7, 6, 9, tzinfo=UTC),
              datetime(2026, 7, 6, 10, tzinfo=PLUS1)]
    ends = [lon(2026, 7, 10, 15, 30), datetime(2026, 7, 10, 14, 30, tzinfo=UTC),
            datetime(2026, 7, 10, 15, 30, tzinfo=PLUS1)]
    for start in starts:
        for end in ends:
            assert CAL.working_days_between(start, end) == pytest.approx(4 + 5.5 / 24)
            # Mon 10-17, Tue-Thu 3 x 8, Fri 9-15:30.
            assert CAL.working_hours_between(start, end) == pytest.approx(37.5)
            assert ROLL.working_day_count(start, end) == 4
        due = CAL.add_working_days(start, 1)
        assert due == lon(2026, 7, 7, 10) and due.tzinfo == LONDON
        assert CAL.add_working_hours(start, 4) == lon(2026, 7, 6, 14)


# -- properties ---------------------------------------------------------------------------

INSTANTS = st.datetimes(min_value=datetime(2019, 1, 1), max_value=datetime(2026, 12, 31, 23, 59),
                        timezones=st.just(UTC))
CALENDARS = st.sampled_from([CAL, ROLL])
TOLERANCE = 1e-6  # results are rounded to the microsecond


def _on_working_day(t: datetime) -> bool:
    return CAL.is_working_day(t.astimezone(LONDON).date())


@settings(deadline=None)
@given(cal=CALENDARS, start=INSTANTS, n=st.floats(0, 30))
def test_add_working_days_inverts_working_days_between(
        cal: WorkingCalendar, start: datetime, n: float) -> None:
    assume(_on_working_day(start))
    end = cal.add_working_days(start, n)
    assert end >= start
    assert cal.working_days_between(start, end) == pytest.approx(n, abs=TOLERANCE)


@settings(deadline=None)
@given(cal=CALENDARS, start=INSTANTS, later=st.timedeltas(timedelta(0), timedelta(days=60)))
def test_add_working_days_gives_the_earliest_instant(
        cal: WorkingCalendar, start: datetime, later: timedelta) -> None:
    end = start + later
    again = cal.add_working_days(start, cal.working_days_between(start, end))
    # Never later than end, unless end came before a rolled clock start (answer 0 days).
    assert again <= max(end, cal.clock_start(start)) + timedelta(microseconds=1)


@settings(deadline=None)
@given(cal=CALENDARS, start=INSTANTS, a=st.timedeltas(timedelta(0), timedelta(days=60)),
       b=st.timedeltas(timedelta(0), timedelta(days=60)))
def test_working_days_between_is_monotonic_in_end(
        cal: WorkingCalendar, start: datetime, a: timedelta, b: timedelta) -> None:
    near, far = start + min(a, b), start + max(a, b)
    assert cal.working_days_between(start, near) <= cal.working_days_between(start, far)
    assert cal.working_day_count(start, near) <= cal.working_day_count(start, far)


@settings(deadline=None)
@given(start=INSTANTS, a=st.timedeltas(timedelta(0), timedelta(days=30)),
       b=st.timedeltas(timedelta(0), timedelta(days=30)))
def test_working_days_add_up(start: datetime, a: timedelta, b: timedelta) -> None:
    mid, end = start + a, start + a + b
    total = CAL.working_days_between(start, mid) + CAL.working_days_between(mid, end)
    assert total == pytest.approx(CAL.working_days_between(start, end), abs=1e-9)


@settings(deadline=None)
@given(start=INSTANTS, hours=st.floats(0, 200))
def test_add_working_hours_inverts_working_hours_between(start: datetime, hours: float) -> None:
    end = CAL.add_working_hours(start, hours)
    assert end >= start
    assert CAL.working_hours_between(start, end) == pytest.approx(hours, abs=TOLERANCE)


@settings(deadline=None)
@given(start=INSTANTS, later=st.timedeltas(timedelta(0), timedelta(days=60)))
def test_add_working_hours_gives_the_earliest_instant(start: datetime, later: timedelta) -> None:
    end = start + later
    again = CAL.add_working_hours(start, CAL.working_hours_between(start, end))
    assert start <= again <= end + timedelta(microseconds=1)


@settings(deadline=None)
@given(start=INSTANTS, a=st.timedeltas(timedelta(0), timedelta(days=60)),
       b=st.timedeltas(timedelta(0), timedelta(days=60)))
def test_working_hours_between_is_monotonic_in_end(
        start: datetime, a: timedelta, b: timedelta) -> None:
    near, far = start + min(a, b), start + max(a, b)
    assert CAL.working_hours_between(start, near) <= CAL.working_hours_between(start, far)


@settings(deadline=None)
@given(cal=CALENDARS, start=INSTANTS, later=st.timedeltas(timedelta(0), timedelta(days=60)))
def test_answers_do_not_depend_on_the_input_offset(
        cal: WorkingCalendar, start: datetime, later: timedelta) -> None:
    end = start + later
    as_london = (start.astimezone(LONDON), end.astimezone(LONDON))
    as_plus1 = (start.astimezone(PLUS1), end.astimezone(PLUS1))
    for name in ("working_days_between", "working_hours_between", "working_day_count"):
        answer = getattr(cal, name)(start, end)
        assert getattr(cal, name)(*as_london) == answer == getattr(cal, name)(*as_plus1)


# Whole seconds over 2019-2027 with the fractions where rounding to the microsecond
# can go either way: exact ties (an odd multiple of 1/128 s is k + 0.5 microseconds,
# even k and odd k), float noise either side of a tie, and the top of a second.
_FRACTIONS = [0.0, 1 / 128, 3 / 128, 5 / 128, 0.5 + 1 / 128, 1e-7, 4.999e-7, 5e-7, 5.0001e-7,
              2.5e-6, 0.4999995, 0.5, 0.9999995, 0.9999999]


@settings(max_examples=600, deadline=None)
@given(whole=st.integers(min_value=1_546_300_800, max_value=1_830_297_600),
       frac=st.sampled_from(_FRACTIONS) | st.floats(min_value=0, max_value=1, exclude_max=True))
def test_us_rounded_is_what_a_datetime_holds(whole: int, frac: float) -> None:
    ts = whole + frac
    assert us_rounded(ts) == datetime.fromtimestamp(ts, UTC).timestamp()
    assert us_rounded(ts) == datetime.fromtimestamp(ts, LONDON).timestamp()


@settings(max_examples=600, deadline=None)
@given(start=st.floats(min_value=1_546_300_800, max_value=1_830_297_600),
       hours=st.floats(min_value=0, max_value=24 * 40), rolling=st.booleans())
def test_working_days_on_posix_seconds_equal_the_datetime_form(start: float, hours: float,
                                                               rolling: bool) -> None:
    cal = WorkingCalendar(roll_after_hours=rolling)
    end = start + hours * 3600
    by_datetime = cal.working_days_between(datetime.fromtimestamp(start, LONDON),
                                           datetime.fromtimestamp(end, LONDON))
    assert cal.working_days_between_ts(us_rounded(start), us_rounded(end)) == by_datetime


def test_results_do_not_depend_on_the_year_a_process_loaded_first():
    # Day indices count from the first year a calendar loads. A worker restoring a
    # checkpoint (or keeping a standby's cells) withdraws facts another process added:
    # a duration must come out bit for bit the same, or a cell would not take back
    # exactly what it was given (0.1 % of durations rounded differently at 4 decimals).
    import random

    early, late = WorkingCalendar(), WorkingCalendar()
    early.is_working_day(date(2000, 1, 3))
    late.is_working_day(date(2031, 1, 2))
    rng = random.Random(7)
    t0 = datetime(2023, 1, 1, tzinfo=LONDON).timestamp()
    for _ in range(20_000):
        ta = round(t0 + rng.uniform(0, 360 * 86400))
        tb = ta + rng.uniform(0, 20 * 86400)
        n, hours = rng.uniform(0, 25), rng.uniform(0, 120)
        for f, args in ((WorkingCalendar.working_days_between_ts, (ta, tb)),
                        (WorkingCalendar.working_hours_between_ts, (ta, tb)),
                        (WorkingCalendar.add_working_days_ts, (ta, n)),
                        (WorkingCalendar.add_working_hours_ts, (ta, hours))):
            assert f(early, *args) == f(late, *args), (f.__name__, args)
