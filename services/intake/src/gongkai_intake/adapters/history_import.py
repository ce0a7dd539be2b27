"""``gongkai import``: a CMS export read, checked row by row, and recorded as history.

The file is CSV (a header row) or JSON Lines, one item per row: ``unit``, ``column``,
``title``, ``url``, ``online_at`` and, optionally, ``content_digest`` (docs/intake.md). A row
that cannot be read, or that the decider refuses, is reported with its line number and
records nothing; every other row is decided by intake's history decider and recorded as one
``PublicationImported`` on a new aggregate (``gongkai.decider.record``, pipelined, each append
expecting the aggregate empty), its ids derived from the item, so a second import of the same
file records nothing new.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from gongkai.calendar import SHANGHAI
from gongkai.decider import Decided, Log, record
from gongkai.eventlog import EventLog
from gongkai.events import Actor, EventPayload
from gongkai.refusal import Refusal
from gongkai.rules import Catalog
from gongkai_intake.adapters.directory_log import read_directory
from gongkai_intake.domain import history as h

FIELDS = ("unit", "column", "title", "url", "online_at", "content_digest")
REQUIRED = FIELDS[:5]
#: Items decided and appended at once: independent aggregates, so their round trips overlap.
#: Items whose appends are in flight together.
BATCH = 500


class HistoryFileError(ValueError):
    """The file as a whole cannot be read (missing, no header, unknown format)."""


@dataclass(frozen=True)
class Row:
    line: int
    cmd: h.ImportPublication


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str


@dataclass
class ImportReport:
    imported: int = 0
    present: int = 0
    refused: list[RowError] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.imported + self.present + len(self.refused)


def parse_time(text: str) -> datetime:
    """ISO 8601 date-time or date; without a zone it is Beijing time (the CMS's clock)."""
    text = text.strip()
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        at = datetime.combine(date.fromisoformat(text), time(0))  # ValueError if neither
    return at if at.tzinfo is not None else at.replace(tzinfo=SHANGHAI)


def _row(line: int, raw: Mapping[str, Any]) -> Row | RowError:
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        return RowError(line, f"unknown field {unknown[0]!r} (fields: {', '.join(FIELDS)})")
    values: dict[str, str] = {}
    for name in FIELDS:
        v = raw.get(name)
        if v is None or (isinstance(v, str) and not v.strip()):
            if name in REQUIRED:
                return RowError(line, f"{name} is missing")
            continue
        if not isinstance(v, str):
            return RowError(line, f"{name}: expected text, got {type(v).__name__}")
        values[name] = v.strip()
    try:
        online_at = parse_time(values["online_at"])
    except ValueError:
        return RowError(
            line, f"online_at {values['online_at']!r} is not an ISO 8601 date or date-time"
        )
    digest = values.get("content_digest")
    if digest is not None:
        digest = digest.lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            return RowError(line, "content_digest: 64 hexadecimal characters (sha256)")
    return Row(
        line,
        h.ImportPublication(
            unit=values["unit"],
            column=values["column"],
            title=values["title"],
            url=values["url"],
            online_at=online_at,
            content_digest=digest,
        ),
    )


def parse_history(text: str, fmt: str) -> list[Row | RowError]:
    """Every item of an export, or why its line cannot be read. ``fmt``: csv or jsonl."""
    out: list[Row | RowError] = []
    if fmt == "jsonl":
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                out.append(RowError(n, f"not JSON: {exc.msg}"))
                continue
            if not isinstance(raw, dict):
                out.append(RowError(n, "expected a JSON object"))
                continue
            out.append(_row(n, raw))
        return out
    if fmt != "csv":
        raise HistoryFileError(f"unknown format {fmt!r}: csv or jsonl")
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    header = [h_.strip() for h_ in reader.fieldnames or ()]
    missing = [f for f in REQUIRED if f not in header]
    if missing:
        raise HistoryFileError(
            f"the CSV header lacks {', '.join(missing)} (header: {', '.join(FIELDS)})"
        )
    reader.fieldnames = header
    for raw in reader:
        at = reader.line_num
        if None in raw:
            out.append(RowError(at, "more values than the header has fields"))
            continue
        out.append(_row(at, {k: v for k, v in raw.items() if v is not None}))
    return out


def read_history_file(path: Path, fmt: str | None = None) -> list[Row | RowError]:
    """``parse_history`` of a file; the format from ``fmt`` or the file's suffix."""
    fmt = fmt or ("jsonl" if path.suffix.lower() in (".jsonl", ".ndjson") else "csv")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HistoryFileError(f"{path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise HistoryFileError(f"{path}: not UTF-8 text") from None
    return parse_history(text, fmt)


def _explain(r: Refusal) -> str:
    return f"{r.field}: {r.detail}" if r.field else r.detail


async def import_history(
    evlog: EventLog | Log,
    rows: Iterable[Row | RowError],
    *,
    catalog: Catalog,
    actor: Actor,
    now: datetime,
    units: Mapping[str, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Record every readable row as a ``PublicationImported``; one report of what happened.

    ``units``: unit code -> kind (default: the directory as the log holds it). A row may name
    its unit by code or by its directory name, and its column by code or by its Chinese name
    in the catalog (a CMS exports names).
    """
    if units is None:
        assert isinstance(evlog, EventLog)
        directory = await read_directory(evlog)
        by_code = {c: u for c, u in directory.units.items() if u.exists}
        units = {c: u.kind for c, u in by_code.items()}
        names = {u.name: c for c, u in by_code.items()}
    else:
        names = {}
    columns = {col.zh: code for code, col in catalog.columns.items()}
    report = ImportReport()
    items = list(rows)
    # Each item is decided on its own (new) aggregate by the pure decider, then recorded in
    # pipelined batches with the expectation "this aggregate is new" — what handle(new=True)
    # does one append at a time. Ids derive from the item, so an item recorded before comes
    # back as a duplicate (inside JetStream's window) or a standing conflict (after it): both
    # mean "already present". A year of a county's site (3,783 items) took 68 s one read and one
    # append at a time, 32 s one append at a time, and a few seconds this way.
    pending: list[tuple[int, Decided]] = []
    for item in items:
        if isinstance(item, RowError):
            report.refused.append(item)
            continue
        cmd = item.cmd
        unit = cmd.unit if cmd.unit in units else names.get(cmd.unit, cmd.unit)
        column = columns.get(cmd.column, cmd.column)
        cmd = h.ImportPublication(
            unit, column, cmd.title, cmd.url, cmd.online_at, cmd.content_digest
        )
        ctx = h.Context(now=now, unit_kind=units.get(unit), catalog=catalog)
        pid = h.publication_id(cmd)
        try:
            payloads = h.HISTORY.decide(h.HISTORY.fold(pid, []), h.Import(cmd, ctx))
        except Refusal as r:
            report.refused.append(RowError(item.line, _explain(r)))
            continue
        for p in payloads:
            assert isinstance(p, EventPayload)  # the history decider returns payloads only
            pending.append(
                (
                    item.line,
                    Decided.of(
                        p,
                        aggregate_id=pid,
                        actor=actor,
                        command_id=h.command_id(cmd),
                        recorded_at=now,
                        cause=None,  # a command that answers no event starts its own chain
                        expected=0,
                        # The item's own time: it speaks for the day it was online.
                        business_time=cmd.online_at,
                    ),
                )
            )
    done = len(items) - len(pending)
    for start in range(0, len(pending), BATCH):
        batch = pending[start : start + BATCH]
        for (line, _), rec in zip(
            batch, await record(evlog, [d for _, d in batch], pipelined=True), strict=True
        ):
            if rec.outcome == "recorded":
                report.imported += 1
            elif rec.outcome in ("duplicate", "stands"):
                report.present += 1
            else:
                report.refused.append(
                    RowError(line, f"not recorded ({rec.error}); import the file again")
                )
        done += len(batch)
        if progress is not None:
            progress(done, len(items))
    report.refused.sort(key=lambda e: e.line)
    return report
