"""``gongkai calendar`` — inspect the working-day calendar an operator has loaded.

``register`` only builds parsers; the main ``gongkai`` CLI wires it in and calls
``args.func(args)``, whose return value is the exit code.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gongkai.calendar.core import WorkingCalendar

__all__ = ["MAX_N", "register"]

MAX_N = 3650  # about fourteen years of working days; anything larger is a typo
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_POSITIVE_INT = re.compile(r"[0-9]+")


def _fail(command: str, message: str) -> SystemExit:
    # One line, like argparse's own errors, but without the usage dump that would bury it.
    print(f"gongkai calendar {command}: error: {message}", file=sys.stderr)
    return SystemExit(2)


def _calendar(args: argparse.Namespace, command: str) -> WorkingCalendar:
    # Here, not at the top: the parsers are built on every `gongkai` start.
    from gongkai.calendar.core import WorkingCalendar
    from gongkai.calendar.loader import CalendarDataError

    extra: list[Path] = args.data_dir or []
    for directory in extra:
        if not directory.is_dir():
            raise _fail(command, f"--data-dir {directory}: not a directory")
    try:
        return WorkingCalendar.default(extra)
    except CalendarDataError as exc:
        print(f"gongkai calendar {command}: error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def _cmd_years(args: argparse.Namespace) -> int:
    cal = _calendar(args, "years")
    rows = [
        (
            str(info.year),
            "official" if info.official else "provisional",
            info.source + (" (overrides library)" if info.overrides_library else ""),
        )
        for info in cal.years()
    ]
    header = ("year", "status", "source")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(2)]
    for row in [header, *rows]:
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}")
    return 0


def _parse_date(text: str) -> date | None:
    # fromisoformat alone also takes 20260210 and week dates on 3.11; be strict on input.
    if not _ISO_DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _cmd_add(args: argparse.Namespace) -> int:
    start = _parse_date(args.date)
    if start is None:
        raise _fail("add", f"invalid date {args.date!r} (expected YYYY-MM-DD)")
    n = int(args.n) if _POSITIVE_INT.fullmatch(args.n) else 0
    if not 1 <= n <= MAX_N:
        raise _fail("add", f"N must be an integer from 1 to {MAX_N}, got {args.n!r}")
    cal = _calendar(args, "add")
    try:
        result = cal.add_working_days(start, n)
    except OverflowError as exc:
        raise _fail("add", str(exc)) from None
    line = result.value.isoformat()
    if result.provisional:
        years = ", ".join(str(y) for y in result.provisional_years)
        line += f" (provisional: no official calendar for {years})"
    print(line)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``calendar years`` and ``calendar add DATE N`` to the main CLI."""
    parser = subparsers.add_parser(
        "calendar",
        help="working-day calendar (statutory deadlines)",
        description="Working days per the State Council arrangement, with operator data files.",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        action="append",
        metavar="DIR",
        help="extra directory of YYYY.yaml/YYYY.json arrangements (overrides the others)",
    )
    commands = parser.add_subparsers(dest="calendar_command", metavar="COMMAND", required=True)

    years = commands.add_parser("years", help="list known years and where each comes from")
    years.set_defaults(func=_cmd_years)

    add = commands.add_parser("add", help="the Nth working day after DATE")
    add.add_argument("date", metavar="DATE", help="trigger date, YYYY-MM-DD (Asia/Shanghai)")
    add.add_argument("n", metavar="N", help=f"number of working days, 1..{MAX_N}")
    add.set_defaults(func=_cmd_add)
