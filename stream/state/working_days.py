"""Working days and working hours on the calendar of England and Wales.

Working days are Monday to Friday less the bank holidays of England and Wales
(``holidays.country_holidays("GB", subdiv="ENG")``; without ``subdiv`` the library drops
Easter Monday and the August bank holiday) and any extra closures. Dates are local to the
calendar's time zone (Europe/London by default). Instants are timezone-aware datetimes in
any offset; naive ones raise ValueError, as does an end before its start.

Definitions (``a`` start, ``b`` end):

working-day clock
    With ``D`` the local date holding ``t`` and ``index(D)`` the number of working days
    before ``D`` (from an arbitrary epoch; only differences are used)::

        pos(t) = index(D) + (t - start of D) / (length of D)   if D is a working day
        pos(t) = index(D)                                       otherwise

    Times are real elapsed seconds, so the 23 h and 25 h days of a clock change still
    count as one day each. The clock stands still on non-working days: there ``pos`` is
    that of the start of the next working day.
clock_start(t)
    With ``roll_after_hours``: the office start of ``t``'s date if ``t`` is before it on a
    working day; the office start of the next working day if ``t`` is on a non-working day
    or at/after office end; otherwise ``t``. Without it, always ``t``.
working_days_between(a, b) = max(0, pos(b) - pos(clock_start(a)))
    Mon 10:00 -> Mon 16:00 is 0.25; Fri 10:00 -> Mon 10:00 is 1.0; Sat 11:00 -> Mon
    12:00 is 0.5. The floor at 0 covers a ``b`` before a rolled clock start.
add_working_days(a, n)
    The earliest ``t >= clock_start(a)`` with ``pos(t) = pos(clock_start(a)) + n``, in the
    calendar's zone: Fri 10:00 + 1 is Mon 10:00, and a target on the boundary after a
    Friday is that Friday's end (Sat 00:00).
working hours
    Real time inside office hours on working days. ``add_working_hours`` returns the
    earliest instant by which the hours have elapsed, so landing exactly on an office end
    gives that office end.
calendar_days_between(a, b) = real elapsed seconds / 86400
working_day_count(a, b) = max(0, index(date of b) - index(date of clock_start(a)))
    Same working day 0, next working day 1; a non-working date counts as the next
    working day.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays

_HOUR = 3600  # seconds
_DAY = 86400  # seconds in a nominal day: calendar days, and the width of UTC-day buckets
_SNAP_DAYS = 1e-10  # (~9 us) float noise forgiven when a target lands on a day boundary
_SNAP_SECONDS = 1e-6  # float noise forgiven when a target lands on an office end


@dataclass(frozen=True)
class OfficeHours:
    """Local wall-clock office hours, the same on every working day."""

    start: time = time(9, 0)
    end: time = time(17, 0)

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("office hours are local wall-clock times: give naive times")
        if not self.start < self.end:
            raise ValueError(f"office start {self.start} is not before end {self.end}")


@cache
def _bank_holidays(year: int) -> frozenset[date]:
    """England and Wales bank holidays in ``year``, shared by every calendar."""
    return frozenset(holidays.country_holidays("GB", subdiv="ENG", years=year))


def us_rounded(ts: float) -> float:
    """``ts`` rounded to the microsecond exactly as an aware datetime holds it.

    ``datetime.fromtimestamp(ts, tz).timestamp()`` for any zone: the fraction is
    scaled to microseconds and rounded half to even, then whole microseconds are
    divided back (correctly rounded). Figures and deadlines were first defined through
    datetimes; this gives the same floats without making two datetimes (about 1 us).
    """
    frac, whole = math.modf(ts)
    return (int(whole) * 1_000_000 + round(frac * 1e6)) / 1_000_000


def local_month(ts: float, zone: ZoneInfo, memo: dict[int, str]) -> str:
    """Calendar month ("2019-08") of a POSIX time in ``zone``, memoised in ``memo``.

    Memoised per clock hour: the zones of interest change offset on whole hours, so a
    local month never changes within one, and strftime costs more than a fact.
    """
    hour = int(ts // 3600)
    month = memo.get(hour)
    if month is None:
        month = memo[hour] = datetime.fromtimestamp(ts, zone).strftime("%Y-%m")
    return month


def _timestamp(t: datetime) -> float:
    if t.tzinfo is not None:
        try:
            return t.timestamp()
        except TypeError:  # a tzinfo whose utcoffset() is None: naive after all
            pass
    raise ValueError(f"naive datetime {t.isoformat()}: give a timezone-aware one")


def _ordered(start: datetime, end: datetime) -> tuple[float, float]:
    ta, tb = _timestamp(start), _timestamp(end)
    if tb < ta:
        raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
    return ta, tb


def _amount(value: float, what: str) -> float:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be finite and >= 0, got {value}")
    return value


def _ordinal(d: date) -> int:
    if isinstance(d, datetime):  # a datetime's date part would ignore its time zone
        raise TypeError("give a local date, not a datetime")
    return d.toordinal()


class _Day:
    """One local date. Instants are POSIX seconds; [start, end) is the real local day."""

    __slots__ = ("close", "end", "index", "office", "open", "ordinal", "start", "working")
    ordinal: int
    working: bool
    start: float
    end: float
    open: float  # office start and end, counted only if ``working``
    close: float
    index: int  # working days before this date, from the epoch (first year loaded)
    office: float  # office seconds before this date, from the same epoch


class _Days:
    """Per-date facts, built a whole year at a time on first use; loaded years are contiguous."""

    __slots__ = ("_by_ordinal", "_by_utc_day", "_closures", "_hours", "_lock", "_nth", "_span",
                 "_tz")

    def __init__(self, tz: ZoneInfo, hours: OfficeHours, closures: frozenset[date]) -> None:
        self._tz, self._hours, self._closures = tz, hours, closures
        self._by_ordinal: dict[int, _Day] = {}
        self._nth: dict[int, _Day] = {}  # working-day index -> that working day
        self._by_utc_day: dict[int, _Day] = {}  # floor(ts / 86400) -> day holding its start
        self._span: list[int] = []  # [first, last] year loaded
        self._lock = threading.Lock()  # growth chains indices from year to year

    def at(self, ts: float) -> _Day:
        """The local day holding the instant ``ts``."""
        bucket = int(ts // _DAY)
        day = self._by_utc_day.get(bucket)
        if day is None:
            local = datetime.fromtimestamp(bucket * _DAY, self._tz)
            day = self._by_utc_day[bucket] = self.on(local.toordinal())
        while ts >= day.end:  # a UTC day overlaps two local days unless the offset is 0
            day = self.on(day.ordinal + 1)
        return day

    def on(self, ordinal: int) -> _Day:
        """The local date with this ordinal."""
        day = self._by_ordinal.get(ordinal)
        while day is None:
            self._grow(date.fromordinal(ordinal).year)
            day = self._by_ordinal.get(ordinal)
        return day

    def nth(self, k: int) -> _Day:
        """The working day with index ``k`` (some year must already be loaded)."""
        day = self._nth.get(k)
        while day is None:
            first = self._by_ordinal[date(self._span[0], 1, 1).toordinal()]
            self._grow(self._span[0] - 1 if k < first.index else self._span[1] + 1)
            day = self._nth.get(k)
        return day

    def _grow(self, year: int) -> None:
        with self._lock:
            span = self._span
            if not span:
                self._place(self._build(year), 0, 0.0)
                span[:] = [year, year]
            while year > span[1]:
                last = self._by_ordinal[date(span[1], 12, 31).toordinal()]
                office = last.office + (last.close - last.open) * last.working
                self._place(self._build(span[1] + 1), last.index + last.working, office)
                span[1] += 1
            while year < span[0]:
                first = self._by_ordinal[date(span[0], 1, 1).toordinal()]
                days = self._build(span[0] - 1)
                work = [d for d in days if d.working]
                office = sum(d.close - d.open for d in work)
                self._place(days, first.index - len(work), first.office - office)
                span[0] -= 1

    def _build(self, year: int) -> list[_Day]:
        closed, tz = _bank_holidays(year) | self._closures, self._tz
        first = date(year, 1, 1)
        dates = [first + timedelta(i) for i in range((date(year + 1, 1, 1) - first).days + 1)]
        # Midnight exists in Europe/London; where clocks jump forward at midnight, fold=0
        # resolves the missing midnight to the jump, which is where that day starts.
        starts = [datetime.combine(d, time(0), tz).timestamp() for d in dates]
        days: list[_Day] = []
        for d, start, end in zip(dates, starts, starts[1:], strict=False):
            day = _Day()
            day.ordinal, day.start, day.end = d.toordinal(), start, end
            day.working = d.weekday() < 5 and d not in closed
            day.open = datetime.combine(d, self._hours.start, tz).timestamp()
            day.close = datetime.combine(d, self._hours.end, tz).timestamp()
            days.append(day)
        return days

    def _place(self, days: list[_Day], index: int, office: float) -> None:
        for day in days:  # one year in date order, numbered on from the running totals
            day.index, day.office = index, office
            self._by_ordinal[day.ordinal] = day
            if day.working:
                self._nth[index] = day
                index += 1
                office += day.close - day.open


def _fraction(day: _Day, ts: float) -> float:
    """How much of its working day ``day`` has passed at ``ts`` (0 on a closed day).

    Positions are taken apart from the day's index: ``index + fraction`` rounds by the
    index's magnitude, and indices count from the first year a process loaded, so two
    processes (a worker and the one restoring its checkpoint) would round a duration
    differently and a figure cell would not take back exactly what it was given.
    """
    return (ts - day.start) / (day.end - day.start) if day.working else 0.0


def _in_office(day: _Day, ts: float) -> float:
    """Office seconds of ``day`` gone by at ``ts`` (0 on a closed day)."""
    return min(max(ts - day.open, 0.0), day.close - day.open) if day.working else 0.0


@dataclass(frozen=True, slots=True, init=False)
class WorkingCalendar:
    """Working-day and working-hour arithmetic, as defined in the module docstring.

    Frozen: the configuration never changes. Per-date facts are cached on first use, so
    the hot paths cost a few dict lookups.
    """

    tz: str
    office_hours: OfficeHours
    roll_after_hours: bool
    extra_closures: frozenset[date]
    _zone: ZoneInfo = field(repr=False, compare=False)
    _days: _Days = field(repr=False, compare=False)

    def __init__(self, tz: str = "Europe/London", office_hours: OfficeHours = OfficeHours(),
                 roll_after_hours: bool = False, extra_closures: Iterable[date] = ()) -> None:
        zone, closures = ZoneInfo(tz), frozenset(extra_closures)
        values = {"tz": tz, "office_hours": office_hours, "roll_after_hours": roll_after_hours,
                  "extra_closures": closures, "_zone": zone,
                  "_days": _Days(zone, office_hours, closures)}
        for name, value in values.items():
            object.__setattr__(self, name, value)  # the frozen dataclass's own way in

    def is_working_day(self, d: date) -> bool:
        """Whether the local date ``d`` is a working day."""
        return self._days.on(_ordinal(d)).working

    def next_working_day(self, d: date) -> date:
        """The first working day strictly after the local date ``d``."""
        day = self._days.on(_ordinal(d))
        return date.fromordinal(self._days.nth(day.index + day.working).ordinal)

    def clock_start(self, t: datetime) -> datetime:
        """When the clock starts for something received at ``t``: ``t`` unless rolled."""
        ts = _timestamp(t)
        started = self._start_ts(ts)
        return t if started == ts else self._at(started)

    def clock_start_ts(self, ts: float) -> float:
        """``clock_start`` on POSIX seconds (the version of a rule judging an item)."""
        return self._start_ts(ts)

    def working_days_between(self, start: datetime, end: datetime) -> float:
        """Working days from ``clock_start(start)`` to ``end``, never negative."""
        return self.working_days_between_ts(*_ordered(start, end))

    def working_days_between_ts(self, ta: float, tb: float) -> float:
        """``working_days_between`` on POSIX seconds; ``tb`` must not be before ``ta``."""
        if tb < ta:
            raise ValueError("end is before start")
        start = self._start_ts(ta)
        a, b = self._days.at(start), self._days.at(tb)
        length = a.end - a.start
        if a.working and b.working and b.end - b.start == length:  # (no DST day between)
            # in seconds, so that whole hours come out whole (6 h of a day: exactly 0.25)
            part = ((tb - b.start) - (start - a.start)) / length
        else:
            part = _fraction(b, tb) - _fraction(a, start)
        return max(0.0, (b.index - a.index) + part)

    def add_working_days(self, start: datetime, n: float) -> datetime:
        """The earliest instant ``n`` (>= 0) working days after ``clock_start(start)``."""
        return self._at(self.add_working_days_ts(_timestamp(start), n))

    def add_working_days_ts(self, ts: float, n: float) -> float:
        """``add_working_days`` on POSIX seconds, unrounded (the hot path's form)."""
        origin = self._start_ts(ts)
        if _amount(n, "n") == 0:
            return origin
        first = self._days.at(origin)
        target = _fraction(first, origin) + n  # working days from the index of origin's day
        if abs(target - round(target)) < _SNAP_DAYS:
            target = round(target)
        k = math.ceil(target) - 1  # the working day whose (index, index + 1] holds target
        day = self._days.nth(first.index + k)
        # max: snapping may pull a target a hair past origin back to the boundary before it.
        return max(origin, day.start + (target - k) * (day.end - day.start))

    def working_hours_between(self, start: datetime, end: datetime) -> float:
        """Hours of office time on working days from ``start`` to ``end``."""
        return self.working_hours_between_ts(*_ordered(start, end))

    def working_hours_between_ts(self, ta: float, tb: float) -> float:
        """``working_hours_between`` on POSIX seconds; ``tb`` must not be before ``ta``."""
        if tb < ta:
            raise ValueError("end is before start")
        a, b = self._days.at(ta), self._days.at(tb)
        return ((b.office - a.office) + (_in_office(b, tb) - _in_office(a, ta))) / _HOUR

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The earliest instant by which ``hours`` (>= 0) of office time have elapsed."""
        return self._at(self.add_working_hours_ts(_timestamp(start), hours))

    def add_working_hours_ts(self, ts: float, hours: float) -> float:
        """``add_working_hours`` on POSIX seconds, unrounded (the hot path's form)."""
        if _amount(hours, "hours") == 0:
            return ts
        first = self._days.at(ts)  # start's date if working, else before the next one
        target = _in_office(first, ts) + hours * _HOUR  # office seconds after first.office
        k = first.index  # start's date if working, else the next working day
        day = self._days.nth(k)
        while (day.office - first.office) + (day.close - day.open) < target - _SNAP_SECONDS:
            k += 1
            day = self._days.nth(k)
        # min: snapping may leave a target a hair past close; max: hours below the snap
        # tolerance from an after-hours start would otherwise land on the earlier close.
        return max(ts, min(day.open + (target - (day.office - first.office)), day.close))

    def past_close_ts(self, ts: float, tolerance: float = 1e-3) -> float:
        """The next working day's office start if ``ts`` is a working day's office end
        (within ``tolerance`` seconds); else ``ts``."""
        day = self._days.at(ts)
        if day.working and abs(ts - day.close) < tolerance:
            return self._days.nth(day.index + 1).open
        return ts

    def calendar_days_between(self, start: datetime, end: datetime) -> float:
        """Real elapsed time from ``start`` to ``end`` in days of 86400 s."""
        ta, tb = _ordered(start, end)
        return (tb - ta) / _DAY

    def working_day_count(self, start: datetime, end: datetime) -> int:
        """Working days from the working date of ``clock_start(start)`` to ``end``'s date."""
        ta, tb = _ordered(start, end)
        return max(0, self._days.at(tb).index - self._days.at(self._start_ts(ta)).index)

    def _start_ts(self, ts: float) -> float:
        if not self.roll_after_hours:
            return ts
        day = self._days.at(ts)
        if day.working and ts < day.close:
            return max(ts, day.open)
        return self._days.nth(day.index + day.working).open

    def _at(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, self._zone)
