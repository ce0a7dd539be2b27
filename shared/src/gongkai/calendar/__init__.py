"""Working-day calendar for statutory deadlines (Asia/Shanghai dates, State Council 调休).

See ``core`` for the rules and ``data/README.md`` for the operator data-file format.
"""

from gongkai.calendar.core import (
    ENV_VAR,
    PACKAGE_DATA_DIR,
    WorkingCalendar,
    WorkingDayResult,
    YearInfo,
)
from gongkai.calendar.loader import CalendarDataError, YearData, load_year_file
from gongkai.calendar.local import SHANGHAI, local_date, today

__all__ = [
    "ENV_VAR",
    "PACKAGE_DATA_DIR",
    "SHANGHAI",
    "CalendarDataError",
    "WorkingCalendar",
    "WorkingDayResult",
    "YearData",
    "YearInfo",
    "load_year_file",
    "local_date",
    "today",
]
