"""Working-day calendar for statutory deadlines (Asia/Shanghai dates, State Council 调休).

See ``core`` for the rules and ``data/README.md`` for the operator data-file format.

``core`` (the calendar data of every year) and ``loader`` (YAML) are imported on first use of
one of their names: "today in Shanghai" (``local``) is needed by every command-line start,
the working-day tables only by the commands that count days.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gongkai.calendar.local import SHANGHAI, day_end, day_start, local_date, today

if TYPE_CHECKING:
    from gongkai.calendar.core import (
        ENV_VAR,
        PACKAGE_DATA_DIR,
        WorkingCalendar,
        WorkingDayResult,
        YearInfo,
    )
    from gongkai.calendar.loader import CalendarDataError, YearData, load_year_file

_LAZY = {
    "ENV_VAR": "core",
    "PACKAGE_DATA_DIR": "core",
    "WorkingCalendar": "core",
    "WorkingDayResult": "core",
    "YearInfo": "core",
    "CalendarDataError": "loader",
    "YearData": "loader",
    "load_year_file": "loader",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "ENV_VAR",
    "PACKAGE_DATA_DIR",
    "SHANGHAI",
    "CalendarDataError",
    "WorkingCalendar",
    "WorkingDayResult",
    "YearData",
    "YearInfo",
    "day_end",
    "day_start",
    "load_year_file",
    "local_date",
    "today",
]
