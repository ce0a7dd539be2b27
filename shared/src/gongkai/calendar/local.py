"""Asia/Shanghai calendar dates: the days every deadline and "today" are counted in.

Events carry UTC instants; the notice's deadlines are calendar dates in China. This is the one
place an instant becomes such a date, and a date the instants that bound it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

__all__ = ["SHANGHAI", "day_end", "day_start", "local_date", "today"]

#: China has kept UTC+8 without daylight saving since 1991: a fixed offset needs no tz
#: database in the container image, and a date printed on an archived form cannot change
#: with the host's tzdata.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")


def local_date(at: datetime) -> date:
    """The Asia/Shanghai calendar date of an instant (an aware datetime)."""
    return at.astimezone(SHANGHAI).date()


def day_start(day: date) -> datetime:
    """The first instant of an Asia/Shanghai calendar day (its midnight, +08:00)."""
    return datetime.combine(day, time(0), SHANGHAI)


def day_end(day: date) -> datetime:
    """The end of an Asia/Shanghai calendar day, as the next day's first instant: what happened
    by the end of ``day`` happened before it."""
    return day_start(day + timedelta(days=1))


def today(now: datetime | None = None) -> date:
    """Today in Asia/Shanghai: the day of ``now`` (a clock's reading), else of the wall clock."""
    return local_date(datetime.now(UTC) if now is None else now)
