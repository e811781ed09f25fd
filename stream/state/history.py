"""The months of history behind a monthly count's expected range.

The committee report judges a month's count against the mean ± 2 SD of the 12
calendar months just before it (``stream.report.expected_range``), and the worker
exports the same windows (``cspa_expected_range_window``) so Prometheus can form
the band from the months' counts (``cspa:expected_range_*`` recording rules). Both
read the window from here, so the report and the dashboards judge one history.

A window is judged only when it starts on or after the first month of the count's
data: before that a zero means "not recorded yet", not "none came".
"""

from __future__ import annotations

from collections.abc import Iterable

#: months of history behind a band
WINDOW = 12
#: the figures whose windows the worker exports: the monthly counts the dashboards band
#: (contacts received, MAP enquiries completed); the report judges these and the RFS counts
BANDED = ("contacts_received", "map_completed")


def shift(month: str, by: int) -> str:
    """``month`` ("YYYY-MM") moved ``by`` calendar months (negative: earlier)."""
    year, mon = (int(part) for part in month.split("-"))
    index = year * 12 + (mon - 1) + by
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def window(month: str) -> list[str]:
    """The ``WINDOW`` months before ``month``, oldest first."""
    return [shift(month, -k) for k in range(WINDOW, 0, -1)]


def judged(month: str, first_month: str | None) -> bool:
    """Whether ``month`` has a whole window of recorded history (``first_month``: the
    earliest month of the count's data; None: no data, so nothing is judged)."""
    return first_month is not None and window(month)[0] >= first_month


def windows(months: Iterable[str], first_month: str | None) -> list[tuple[str, str]]:
    """(month, previous month) for every judged month of ``months``, in order."""
    return [(month, previous) for month in sorted(set(months))
            if judged(month, first_month) for previous in window(month)]
