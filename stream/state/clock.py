"""What time it is, for everything judged against the clock.

Deadlines and live windows ask a ``Clock``. In production it is the system
clock; rehearsals and the timeliness integration tests point
``CSPA_CLOCK_FILE`` at a file holding an ISO 8601 instant, and move time by
rewriting it (the worker re-reads it at every evaluation).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo


class Clock:
    """The system clock, in the configured time zone."""

    def __init__(self, tz: str) -> None:
        self.tz = ZoneInfo(tz)

    def now(self) -> datetime:
        return datetime.now(self.tz)

    def time(self) -> float:
        """POSIX seconds."""
        return self.now().timestamp()


class FileClock(Clock):
    """A clock read from a file (tests and rehearsals only); falls back to the system clock."""

    def __init__(self, tz: str, path: Path) -> None:
        super().__init__(tz)
        self.path = path

    def now(self) -> datetime:
        try:
            text = self.path.read_text().strip()
            instant = datetime.fromisoformat(text)
        except (OSError, ValueError):
            return super().now()
        if instant.tzinfo is None:
            raise ValueError("the clock file must hold an instant with its UTC offset")
        return instant.astimezone(self.tz)


def make_clock(tz: str, clock_file: Path | None) -> Clock:
    return FileClock(tz, clock_file) if clock_file else Clock(tz)
