"""What the command line prints for people: tables, names beside codes, Beijing time.

Tables go through ``rich`` (imported on first use: the parsers must start fast), which measures
Chinese characters as two columns, so a table of unit names lines up. Piped output keeps every
row on one line and carries no colour or box drawing beyond spaces, so ``grep`` and ``awk``
work on it; ``--json`` remains the form for programs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from gongkai.calendar.local import SHANGHAI

if TYPE_CHECKING:
    from rich.console import Console

#: How a time is labelled wherever a person reads it (DESIGN.md §6: Beijing time, zone shown).
ZONE = "北京时间"
#: Piped output is not wrapped at 80 columns: a row stays one line.
PIPE_WIDTH = 400


def console(stream: IO[str] | None = None) -> Console:
    """A rich console on ``stream`` (standard output): plain text when it is not a terminal."""
    from rich.console import Console

    out = stream or sys.stdout
    tty = out.isatty()
    return Console(
        file=out,
        width=None if tty else PIPE_WIDTH,
        color_system="auto" if tty else None,
        markup=False,
        emoji=False,
        highlight=False,
        soft_wrap=not tty,
    )


def table(
    headings: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str | None = None,
    stream: IO[str] | None = None,
) -> None:
    """Print ``rows`` under ``headings``: columns separated by spaces, no box lines."""
    from rich import box
    from rich.table import Table

    cells = [["" if c is None else str(c) for c in r] for r in rows]
    if not cells:
        # Headings over nothing read like a failed query; say there is nothing.
        print(f"{title}: 无 (none)" if title else "无 (none)", file=stream or sys.stdout)
        return
    t = Table(*headings, title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for r in cells:
        t.add_row(*r)
    console(stream).print(t)


def beijing(value: datetime | str | None, *, seconds: bool = False) -> str:
    """``2026-03-01 13:05 北京时间``: an instant from the log as a reader in the county says it."""
    if value is None or value == "":
        return ""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    if at.tzinfo is None:
        # The log writes UTC with its offset; a bare time is taken as UTC, never as local.
        at = at.replace(tzinfo=UTC)
    fmt = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return f"{at.astimezone(SHANGHAI).strftime(fmt)} {ZONE}"


def named(name: str | None, code: str | None) -> str:
    """``财政局(finance)``: the name a person knows, the code a command takes."""
    if not code:
        return name or ""
    if not name or name == code:
        return code
    return f"{name}({code})"


class Progress:
    """Progress of a long command on standard error: ``progress(done, total)``.

    On a terminal, a rich bar (count, rate, time left) redrawn in place; piped, a plain line at
    each tenth, so a log file shows it advancing without a line per item. ``quiet`` prints
    nothing. ``close`` ends the bar (a ``with`` block does it).
    """

    def __init__(self, what: str, *, quiet: bool = False, stream: IO[str] | None = None) -> None:
        self.what = what
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._shown = -1
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, done: int, total: int) -> None:
        if self.quiet or total <= 0:
            return
        if not self.tty:
            tenth = 10 * done // total
            if tenth != self._shown:
                self._shown = tenth
                print(f"{self.what}: {done:,}/{total:,}", file=self.stream, flush=True)
            return
        if self._bar is None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TaskProgressColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as Bar

            self._bar = Bar(
                "{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TimeRemainingColumn(),
                console=console(self.stream),
            )
            self._bar.start()
            self._task = self._bar.add_task(self.what, total=total)
        self._bar.update(self._task, completed=done, total=total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
