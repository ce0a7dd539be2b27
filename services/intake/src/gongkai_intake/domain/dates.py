"""Deadlines and "today" are Asia/Shanghai calendar dates; timestamps are UTC."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

# Asia/Shanghai has had no daylight saving since 1991: a fixed offset needs no tz database in
# the container image.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")


def local_date(at: datetime) -> date:
    return at.astimezone(SHANGHAI).date()
