"""Operator-supplied holiday arrangements: one YAML/JSON file per year, strictly validated.

The State Council publishes each year's arrangement (国务院办公厅关于部分节假日安排的通知)
around November; until the ``chinesecalendar`` library ships it, an operator loads it as data.
A wrong file would silently move statutory deadlines, so anything doubtful is refused with
the file path and the reason rather than guessed at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import yaml

__all__ = ["DATA_SUFFIXES", "CalendarDataError", "YearData", "load_directory", "load_year_file"]

DATA_SUFFIXES = (".yaml", ".yml", ".json")

_FILE_NAME = re.compile(r"([0-9]{4})\.(?:yaml|yml|json)", re.IGNORECASE)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_REQUIRED_KEYS = frozenset({"year", "holidays", "makeup_workdays"})
_ALLOWED_KEYS = _REQUIRED_KEYS | {"notice"}


class CalendarDataError(ValueError):
    """A calendar data file (or directory) is unusable; ``path`` says which one."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class YearData:
    year: int
    holidays: frozenset[date]
    makeup_workdays: frozenset[date]
    path: Path
    notice: str | None = None

    def is_working_day(self, d: date) -> bool:
        if d in self.makeup_workdays:
            return True
        return d.weekday() < 5 and d not in self.holidays


def _parse_day(path: Path, key: str, text: str) -> date:
    # date.fromisoformat alone would also accept 20270101 and week dates on 3.11;
    # operators should write exactly what the notice says, so only YYYY-MM-DD is allowed.
    if not _ISO_DATE.fullmatch(text):
        raise CalendarDataError(
            path, f"{key}: {text!r} is not a date (expected YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD)"
        )
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise CalendarDataError(path, f"{key}: {text!r} is not a valid date ({exc})") from None


def _expand(path: Path, key: str, entries: object) -> list[date]:
    if not isinstance(entries, list):
        raise CalendarDataError(
            path, f"{key} must be a list of dates, got {type(entries).__name__}"
        )
    days: list[date] = []
    for entry in entries:
        # YAML turns unquoted 2027-10-01 into a date but "2027-10-01 00:00" into a datetime,
        # which is a date subclass; a time of day has no meaning here, so refuse it.
        if isinstance(entry, datetime):
            raise CalendarDataError(path, f"{key}: {entry!r} has a time of day; list plain dates")
        if isinstance(entry, date):
            days.append(entry)
            continue
        if not isinstance(entry, str):
            raise CalendarDataError(
                path, f"{key}: {entry!r} is not a date (expected YYYY-MM-DD or a range)"
            )
        text = entry.strip()
        if ".." in text:
            first_text, _, last_text = text.partition("..")
            first = _parse_day(path, key, first_text.strip())
            last = _parse_day(path, key, last_text.strip())
            if last < first:
                raise CalendarDataError(path, f"{key}: range {text!r} ends before it starts")
            days.extend(first + timedelta(days=i) for i in range((last - first).days + 1))
        else:
            days.append(_parse_day(path, key, text))
    return days


def _parse_document(path: Path, text: str) -> object:
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        detail = " ".join(str(exc).split())
        raise CalendarDataError(path, f"malformed file: {detail}") from None


def _check_in_year(path: Path, key: str, year: int, days: Iterable[date]) -> None:
    for d in sorted(days):
        if d.year != year:
            raise CalendarDataError(path, f"{key}: {d.isoformat()} is outside year {year}")


def load_year_file(path: Path) -> YearData:
    """Read and validate one ``YYYY.yaml`` / ``YYYY.yml`` / ``YYYY.json`` file."""
    match = _FILE_NAME.fullmatch(path.name)
    if match is None:
        raise CalendarDataError(
            path, "file name must be the year plus .yaml, .yml or .json (e.g. 2027.yaml)"
        )
    name_year = int(match.group(1))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CalendarDataError(path, f"cannot read file: {exc}") from None

    doc = _parse_document(path, text)
    if not isinstance(doc, Mapping):
        raise CalendarDataError(
            path, f"malformed file: expected a mapping at top level, got {type(doc).__name__}"
        )
    keys = set(doc)
    if not all(isinstance(k, str) for k in keys):
        raise CalendarDataError(path, "malformed file: every top-level key must be a string")
    missing = _REQUIRED_KEYS - keys
    if missing:
        raise CalendarDataError(path, f"missing key(s): {', '.join(sorted(missing))}")
    unknown = keys - _ALLOWED_KEYS
    if unknown:
        # Usually a typo such as "makeup_workday"; ignoring it would drop the make-up days.
        raise CalendarDataError(
            path,
            f"unknown key(s): {', '.join(sorted(unknown))} "
            f"(allowed: {', '.join(sorted(_ALLOWED_KEYS))})",
        )

    year = doc["year"]
    if isinstance(year, bool) or not isinstance(year, int):
        raise CalendarDataError(path, f"year must be an integer, got {year!r}")
    if year != name_year:
        raise CalendarDataError(path, f"wrong year: file says {year} but is named for {name_year}")
    if not 1 <= year <= 9999:
        raise CalendarDataError(path, f"year {year} is out of range")

    notice = doc.get("notice")
    if notice is not None and not isinstance(notice, str):
        raise CalendarDataError(path, f"notice must be text, got {type(notice).__name__}")

    holidays = frozenset(_expand(path, "holidays", doc["holidays"]))
    makeup = frozenset(_expand(path, "makeup_workdays", doc["makeup_workdays"]))
    _check_in_year(path, "holidays", year, holidays)
    _check_in_year(path, "makeup_workdays", year, makeup)
    for d in sorted(makeup):
        if d.weekday() < 5:
            raise CalendarDataError(
                path,
                f"makeup_workdays: {d.isoformat()} is a {d.strftime('%A')}, "
                "not a weekend day (weekdays are working days already)",
            )
    both = sorted(holidays & makeup)
    if both:
        listed = ", ".join(d.isoformat() for d in both)
        raise CalendarDataError(path, f"listed as both holiday and make-up working day: {listed}")
    return YearData(year=year, holidays=holidays, makeup_workdays=makeup, path=path, notice=notice)


def load_directory(directory: Path) -> dict[int, YearData]:
    """Load every year file in ``directory``; other files (README.md, dotfiles) are skipped."""
    if not directory.is_dir():
        raise CalendarDataError(directory, "calendar data directory does not exist")
    found: dict[int, YearData] = {}
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in DATA_SUFFIXES:
            continue
        if not path.is_file():
            continue
        data = load_year_file(path)
        if data.year in found:
            # Two files for one year in one place: which is the correction is unknowable.
            raise CalendarDataError(
                path, f"year {data.year} is also defined by {found[data.year].path.name}"
            )
        found[data.year] = data
    return found
