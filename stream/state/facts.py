"""Facts, and how a figure family declares its figures.

A fact is ``(figure, labels, value)``: one unit of a count, optionally with a
measured value (working days, seconds, agencies consulted). Every figure of
the report is a sum over facts, so a record's contribution can be withdrawn
and re-added exactly when the record changes (``stream.state.aggregates``).

Each figure family (``stream.state.families`` lists them) has one module that says
which events count, the facts a record gives, and its figures: their label sets,
numerators, denominators and thresholds (``Count``, ``Distribution``, ``Recent``).
The worker exposes what those declare and the report lays them out; neither defines
a figure.

Months are calendar months of the configured time zone, taken from event time:
a backfilled event lands in the month it happened in. Every label value comes
from the taxonomy or from fixed sets defined in the family modules, never from an
identifier.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from zoneinfo import ZoneInfo

from stream.contract.taxonomy import Taxonomy, load_taxonomy
from stream.settings import Settings
from stream.state.records import Progression, Record
from stream.state.rules import Rule, Versions, load_rules
from stream.state.working_days import OfficeHours, WorkingCalendar, local_month, us_rounded

Fact = tuple[str, tuple[str, ...], float | None]

#: histogram buckets of the figures' distributions, in the unit each is exposed in
DAY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 45.0)
DAY = 86_400.0
SECOND_BUCKETS = tuple(b * DAY for b in DAY_BUCKETS)


@dataclass(frozen=True)
class FactContext:
    """What fact extraction needs: the calendar, the taxonomy and the timescales."""

    calendar: WorkingCalendar
    taxonomy: Taxonomy
    rules: Mapping[str, Versions]
    tz: ZoneInfo
    _months: dict[int, str] = field(default_factory=dict, compare=False, repr=False)

    def month(self, ts: float) -> str:
        """Calendar month ("2019-08") of a POSIX time in the configured zone."""
        return local_month(ts, self.tz, self._months)

    @staticmethod
    def hour(ts: float) -> str:
        """The clock hour of a POSIX time, as whole hours since the epoch (DST-proof).

        Hourly cells feed the live windows (``window_hours``).
        """
        return str(int(ts // 3600))

    def working_days(self, start: float, end: float) -> float:
        """Working days between two POSIX times, at a datetime's microsecond precision."""
        if end <= start:
            return 0.0  # out-of-order clocks upstream: never a negative duration
        return self.calendar.working_days_between_ts(us_rounded(start), us_rounded(end))

    def rule(self, name: str, start: float) -> Rule | None:
        """The version of rule ``name`` judging work received at ``start`` (POSIX s): the
        one in force when its clock started, after the out-of-hours roll-over (None: no
        such rule then)."""
        versions = self.rules.get(name)
        if versions is None:
            return None
        single = versions.single  # the fast path: one version, since always
        return single if single is not None else versions.at(
            self.calendar.clock_start_ts(start))

    def calendar_days(self, start: float, end: float) -> float:
        return max(0.0, (end - start) / 86_400.0)

    @cached_property
    def progressions(self) -> tuple[tuple[str, str], ...]:
        """(destination, its progression's slot key) in the taxonomy's order, made once:
        every contact record asks (a frozen dataclass still takes a cached property)."""
        return tuple((d, Progression.key(d)) for d in self.taxonomy.ordered("destination"))


def fact_context(settings: Settings) -> FactContext:
    """Calendar, taxonomy and rules as the settings configure them."""
    calendar = WorkingCalendar(settings.timezone,
                               OfficeHours(settings.office_start, settings.office_end),
                               roll_after_hours=settings.roll_after_hours)
    return FactContext(calendar, load_taxonomy(settings.taxonomy_path),
                       load_rules(settings.rules_path, settings.timezone),
                       ZoneInfo(settings.timezone))


def durations(ctx: FactContext, figure: str, labels: tuple[str, ...], start: float,
              end: float) -> list[Fact]:
    """The two facts of one measured duration: working days and calendar days."""
    return [(figure + "_working_days", labels, ctx.working_days(start, end)),
            (figure + "_calendar_days", labels, ctx.calendar_days(start, end))]


@dataclass(frozen=True)
class Count:
    """A figure that is a count of facts per label set (a gauge per month)."""

    figure: str
    metric: str
    labels: tuple[str, ...]
    help: str


@dataclass(frozen=True)
class Distribution:
    """A figure whose facts carry a value (a histogram per label set).

    ``scale`` turns the facts' unit into the metric's (days to seconds); ``buckets``
    are in the metric's unit.
    """

    figure: str
    metric: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...]
    help: str
    scale: float = 1.0


def duration_figures(figure: str, metric: str, labels: tuple[str, ...],
                     what: str) -> tuple[Distribution, Distribution]:
    """The two distributions ``durations`` feeds: working days, and calendar seconds.

    Working days have no conversion to seconds (the clock stops on weekends), so their
    unit is "workdays"; calendar durations use the base unit, seconds.
    """
    return (Distribution(f"{figure}_working_days", f"{metric}_workdays", labels, DAY_BUCKETS,
                         f"{what}, in working days of England and Wales."),
            Distribution(f"{figure}_calendar_days", f"{metric}_seconds", labels,
                         SECOND_BUCKETS, f"{what}, in elapsed (calendar) seconds.", DAY))


@dataclass(frozen=True)
class Recent:
    """An hourly figure counted over the live windows (``window_hours``)."""

    figure: str
    metric: str
    what: str


@dataclass(frozen=True)
class Family:
    """One figure family: the record kind it reads, its facts, the figures it declares.

    Every fact's figure is declared once, with its label names: as a ``Count`` or a
    ``Distribution``, or in ``cells`` (facts no metric exposes one to one: hourly cells,
    call outcomes whose parts are exposed instead). The first label of a monthly
    figure is its month, of an hourly one its hour.
    """

    kind: str
    facts: Callable[[Record, FactContext], list[Fact]]
    counts: tuple[Count, ...] = ()
    distributions: tuple[Distribution, ...] = ()
    recent: tuple[Recent, ...] = ()
    cells: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def labels(self) -> dict[str, tuple[str, ...]]:
        """figure -> its label names, for every figure the family's facts carry."""
        return {**{c.figure: c.labels for c in self.counts},
                **{d.figure: d.labels for d in self.distributions}, **self.cells}


#: the live windows, in the order they are exposed
WINDOWS = ("this_hour", "last_24_hours", "today")


def window_hours(now: datetime) -> dict[str, set[str]]:
    """The hour keys (``FactContext.hour``) in each live window at ``now``.

    ``today`` starts at local midnight (always a whole hour in Europe/London).
    """
    current = int(now.timestamp() // 3600)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    first_today = int(midnight.timestamp() // 3600)
    return {"this_hour": {str(current)},
            "last_24_hours": {str(h) for h in range(current - 23, current + 1)},
            "today": {str(h) for h in range(first_today, current + 1)}}
