"""The working-day calendar behind every statutory deadline (工作日).

Working days follow the State Council's yearly arrangement, make-up working days (调休)
included. Sources, in order of precedence for a given year:

1. operator data files (see ``data/README.md``) — they win over the library, because a
   file for a year the library already knows can only be a deliberate correction;
2. the ``chinesecalendar`` library (2004 up to its latest release);
3. otherwise the year is *provisional*: Monday–Friday working, weekends off. Every result
   that depended on a provisional year carries ``provisional=True`` and the years involved,
   so a deadline computed before the official arrangement is known is never silently wrong.

Each year is expanded once, on first use, into a flag per day, a running count and the
ordinals of its working days; after that every query is index arithmetic (no library calls),
since deadlines are recomputed for every unit and column on every projection rebuild.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Generic, TypeVar

import chinese_calendar

from gongkai.calendar.loader import YearData, load_directory

__all__ = [
    "ENV_VAR",
    "PACKAGE_DATA_DIR",
    "WorkingCalendar",
    "WorkingDayResult",
    "YearInfo",
]

ENV_VAR = "GONGKAI_CALENDAR_DIR"
PACKAGE_DATA_DIR = Path(__file__).resolve().parent / "data"

# Years listed as provisional after the latest official one, so an operator sees which
# arrangement is due next; further-out years are provisional too, just not listed.
_LISTED_PROVISIONAL_YEARS = 2
# The library raises for unknown years but has no API that says which years it knows.
_LIBRARY_PROBE_RANGE = range(1990, 2200)

T = TypeVar("T", date, int)


@dataclass(frozen=True)
class WorkingDayResult(Generic[T]):
    """A computed date or count, and whether it relied on a year with no official calendar."""

    value: T
    provisional: bool
    provisional_years: tuple[int, ...] = ()


@dataclass(frozen=True)
class YearInfo:
    year: int
    source: str  # "library", "data:<path>" or "weekends-only"
    official: bool
    overrides_library: bool = False


@functools.cache
def _library_knows(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


@functools.cache
def _library_years() -> tuple[int, ...]:
    return tuple(y for y in _LIBRARY_PROBE_RANGE if _library_knows(y))


def _library_is_working_day(d: date) -> bool:
    return bool(chinese_calendar.is_workday(d))


def _weekday_is_working_day(d: date) -> bool:
    return d.weekday() < 5


@dataclass(frozen=True, slots=True)
class _Year:
    official: bool
    jan1: int  # ordinal of 1 January
    ndays: int
    flags: bytes  # flags[i] == 1 when day i of the year is a working day
    cum: tuple[int, ...]  # cum[i] == number of working days among days 0 .. i-1
    ordinals: tuple[int, ...]  # ordinals of the working days, ascending

    @property
    def total(self) -> int:
        return len(self.ordinals)


def _build_year(year: int, official: bool, is_working: Callable[[date], bool]) -> _Year:
    jan1 = date(year, 1, 1).toordinal()
    ndays = date(year, 12, 31).toordinal() - jan1 + 1
    flags = bytearray(ndays)
    cum = [0] * (ndays + 1)
    ordinals: list[int] = []
    for i in range(ndays):
        if is_working(date.fromordinal(jan1 + i)):
            flags[i] = 1
            ordinals.append(jan1 + i)
        cum[i + 1] = len(ordinals)
    return _Year(official, jan1, ndays, bytes(flags), tuple(cum), tuple(ordinals))


def _check_date(d: date) -> None:
    # A datetime here is almost always a UTC timestamp whose calendar date differs from
    # Asia/Shanghai's for eight hours a day; make the caller convert explicitly.
    if isinstance(d, datetime):
        raise TypeError("pass an Asia/Shanghai calendar date (datetime.date), not a datetime")


class WorkingCalendar:
    """Working-day arithmetic over library data, operator data and provisional years.

    ``data_dirs`` are read (and validated) once, here; later directories override earlier
    ones year by year. The constructor is the only place that does I/O.
    """

    def __init__(self, data_dirs: Sequence[Path | str] = (), *, use_library: bool = True) -> None:
        if isinstance(data_dirs, str | os.PathLike):
            raise TypeError("data_dirs must be a sequence of directories, not a single path")
        self._data: dict[int, YearData] = {}
        for directory in data_dirs:
            self._data.update(load_directory(Path(directory)))
        self._use_library = use_library
        self._years: dict[int, _Year] = {}

    @classmethod
    def default(cls, extra_dirs: Sequence[Path | str] = ()) -> WorkingCalendar:
        """Package data, then ``$GONGKAI_CALENDAR_DIR``, then ``extra_dirs`` (last wins)."""
        dirs: list[Path | str] = [PACKAGE_DATA_DIR]
        env_dir = os.environ.get(ENV_VAR, "").strip()
        if env_dir:
            dirs.append(Path(env_dir))
        dirs.extend(extra_dirs)
        return cls(dirs)

    # -- per-year tables -------------------------------------------------------------------

    def _year(self, year: int) -> _Year:
        table = self._years.get(year)
        if table is None:
            table = self._years[year] = self._build(year)
        return table

    def _build(self, year: int) -> _Year:
        data = self._data.get(year)
        if data is not None:
            return _build_year(year, True, data.is_working_day)
        if self._use_library and _library_knows(year):
            return _build_year(year, True, _library_is_working_day)
        return _build_year(year, False, _weekday_is_working_day)

    # -- queries ---------------------------------------------------------------------------

    def is_official(self, year: int) -> bool:
        """True when the library or loaded data knows ``year``'s arrangement."""
        return year in self._data or (self._use_library and _library_knows(year))

    def is_working_day(self, d: date) -> bool:
        """Plain answer; check ``is_official(d.year)`` if the year may be provisional."""
        _check_date(d)
        table = self._year(d.year)
        return table.flags[d.toordinal() - table.jan1] == 1

    def add_working_days(self, start: date, n: int) -> WorkingDayResult[date]:
        """The ``n``-th working day after ``start`` ("within n working days" of a trigger).

        Day 1 is the first working day strictly after ``start``; ``n == 0`` returns ``start``.
        Provisional when any day in (start, result] lies in a provisional year.
        """
        _check_date(start)
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if n == 0:
            return WorkingDayResult(start, False)
        year = start.year
        table = self._year(year)
        idx = start.toordinal() - table.jan1
        provisional: list[int] = []
        if not table.official and idx + 1 < table.ndays:
            provisional.append(year)
        k = table.cum[idx + 1] + n  # 1-based rank of the answer among this year's working days
        while k > table.total:
            k -= table.total
            year += 1
            if year > 9999:
                raise OverflowError("result would be after 9999-12-31")
            table = self._year(year)
            if not table.official:
                provisional.append(year)
        result = date.fromordinal(table.ordinals[k - 1])
        return WorkingDayResult(result, bool(provisional), tuple(provisional))

    def working_days_between(self, start: date, end: date) -> WorkingDayResult[int]:
        """Number of working days d with start < d <= end (0 when end <= start).

        ``working_days_between(t, add_working_days(t, n).value) == n``, so "days waited" and
        "days overdue" use the same counting as the deadline itself.
        """
        _check_date(start)
        _check_date(end)
        if end <= start:
            return WorkingDayResult(0, False)
        provisional: list[int] = []
        first = self._year(start.year)
        i_start = start.toordinal() - first.jan1
        if start.year == end.year:
            count = first.cum[end.toordinal() - first.jan1 + 1] - first.cum[i_start + 1]
            if not first.official:
                provisional.append(start.year)
            return WorkingDayResult(count, bool(provisional), tuple(provisional))
        count = first.total - first.cum[i_start + 1]
        if not first.official and i_start + 1 < first.ndays:
            provisional.append(start.year)
        for year in range(start.year + 1, end.year):
            table = self._year(year)
            count += table.total
            if not table.official:
                provisional.append(year)
        last = self._year(end.year)
        count += last.cum[end.toordinal() - last.jan1 + 1]
        if not last.official:
            provisional.append(end.year)
        return WorkingDayResult(count, bool(provisional), tuple(provisional))

    def next_working_day(self, d: date) -> date:
        """First working day strictly after ``d``; use ``add_working_days(d, 1)`` for the flag."""
        return self.add_working_days(d, 1).value

    def years(self) -> list[YearInfo]:
        """Every official year, plus provisional entries for gaps between official years and
        for the two years after the latest official one (the arrangements due next)."""
        library = set(_library_years()) if self._use_library else set()
        infos: dict[int, YearInfo] = {y: YearInfo(y, "library", True) for y in library}
        for year, data in self._data.items():
            infos[year] = YearInfo(
                year, f"data:{data.path}", True, overrides_library=year in library
            )
        if infos:
            for year in range(min(infos), max(infos) + _LISTED_PROVISIONAL_YEARS + 1):
                if year not in infos:
                    infos[year] = YearInfo(year, "weekends-only", False)
        return [infos[y] for y in sorted(infos)]
