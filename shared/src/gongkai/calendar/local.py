"""Asia/Shanghai calendar dates: the days every deadline and "today" are counted in.

Events carry UTC instants; the notice's deadlines are calendar dates in China. This is the one
place an instant becomes such a date.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

__all__ = ["SHANGHAI", "local_date", "today"]

#: China has kept UTC+8 without daylight saving since 1991: a fixed offset needs no tz
#: database in the container image, and a date printed on an archived form cannot change
#: with the host's tzdata.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")


def local_date(at: datetime) -> date:
    """The Asia/Shanghai calendar date of an instant (an aware datetime)."""
    return at.astimezone(SHANGHAI).date()


def today(now: datetime | None = None) -> date:
    """Today in Asia/Shanghai: the day of ``now`` (a clock's reading), else of the wall clock."""
    return local_date(datetime.now(UTC) if now is None else now)
