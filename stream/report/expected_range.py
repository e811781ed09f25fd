"""The expected range of a monthly count: mean ± 2 SD of its previous 12 months.

Councils' analysts read contact trends against an expected range (as the Front
Door Data Collaboration's analysis draws it): a month whose count lies outside
the band of its own recent history is worth a question. The report marks such
months in every format and shades the band on its charts of monthly counts.

Conventions (where the sector's description is silent; ``docs/figures.md``):

- **Window**: the 12 calendar months just before the month judged, never the
  month itself. A month is judged only when all 12 of them lie on or after the
  first month of the count's data (the earliest month of any cell of its
  figures the workers hold; for calls offered, any call): before
  that a zero means "not recorded yet", not "none came", and a shorter window
  (6 months, say) would flag ordinary variation. So the band starts 12 months
  after the data does.
- **Standard deviation**: population (divide by 12, not 11). The 12 months are the
  whole window described, not a sample of it; and it is what PromQL's
  ``stddev_over_time`` computes, so a dashboard band over the same months agrees.
- **Edges**: ``low = max(0, mean - 2 SD)`` (a count is never negative, so clamping
  changes no verdict); ``high = mean + 2 SD``. A count exactly on an edge is
  inside. With an SD of 0 (12 equal months) the band is that one value: any
  other count is outside.
- **Counts judged**: the report's headline monthly counts (``tables._ranges``): calls
  offered, emails resolved, total enquiries, contacts received and MAP enquiries
  completed; category rows (by outcome, channel, agency...) are not judged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from stream.state.history import WINDOW, judged, shift, window

__all__ = ["LEGEND", "MARKERS", "WINDOW", "Band", "Judgement", "band", "history_months",
           "judge", "shift", "window"]

Verdict = Literal["above", "below", "inside"]

#: SDs either side of the mean
WIDTH = 2.0
#: the marker printed after an outside count, and the legend line explaining them
MARKERS: Mapping[Verdict, str] = {"above": "↑", "below": "↓", "inside": ""}
LEGEND = ("↑ / ↓: the month's count is above / below its expected range, the mean "
          "± 2 standard deviations (population) of the previous 12 months' counts")


@dataclass(frozen=True)
class Band:
    """The expected range of one month's count, from its previous 12 months."""

    mean: float
    sd: float  # population standard deviation

    @property
    def low(self) -> float:
        """Lower edge, clamped at 0 (a count is never negative)."""
        return max(0.0, self.mean - WIDTH * self.sd)

    @property
    def high(self) -> float:
        return self.mean + WIDTH * self.sd

    def verdict(self, count: float) -> Verdict:
        """Above, below or inside; a count on an edge is inside."""
        if count > self.high:
            return "above"
        if count < self.low:
            return "below"
        return "inside"


@dataclass(frozen=True)
class Judgement:
    """A month's count, its band and where it lies."""

    count: int
    band: Band
    verdict: Verdict


def band(history: Sequence[int]) -> Band:
    """The band of exactly ``WINDOW`` months' counts (mean ± 2 population SD)."""
    if len(history) != WINDOW:
        raise ValueError(f"a band needs {WINDOW} months of history, got {len(history)}")
    mean = sum(history) / WINDOW
    variance = sum((n - mean) ** 2 for n in history) / WINDOW
    return Band(mean, math.sqrt(variance))


def history_months(months: Sequence[str]) -> list[str]:
    """The months whose counts the bands of ``months`` need: their windows and themselves."""
    return [*window(months[0]), *months] if months else []


def judge(series: Mapping[str, int], months: Sequence[str],
          first_month: str | None) -> dict[str, Judgement | None]:
    """month -> its judgement, or None while fewer than 12 months of history exist.

    ``series``: month -> count (missing months count 0); ``first_month``: the earliest
    month of data (None: no data at all, so nothing is judged).
    """
    out: dict[str, Judgement | None] = {}
    for month in months:
        if not judged(month, first_month):
            out[month] = None
            continue
        b = band([series.get(m, 0) for m in window(month)])
        count = series.get(month, 0)
        out[month] = Judgement(count, b, b.verdict(count))
    return out
