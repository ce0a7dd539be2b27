"""Every day's read model from one pass over the log: what the console asks of any day.

``fold_log(until=D)`` folds the events an as-of view includes (``fold.as_of_day``) in log order.
Asked per request, that is a fold of the whole log each time: a minute at a million events.
``Days`` folds the log once, as it grows, and keeps the tables the inspectors' views read
(units, columns, cases, findings, violations, alerts) as they stood at the end of each day:

- the log is, but for clock skew, in the order of the days it was recorded on. When the first
  event of a later day arrives, the tables as they stand are the answer for the day before
  (and for every day up to the next one with events). The tables are copied shallowly: the
  fold is handed copies of the rows it reads, so a row once kept never changes;
- imported history (``fold.HISTORY``) is known by its own business day, not where it sits in
  the log. It commutes with everything else the views read (a publication of its own, a
  column's past episode, the day a unit is first known), so it is kept aside and laid over a
  day's tables when that day is asked;
- publications are kept once, each with the day it became known and the day it was removed,
  and indexed by unit and column, newest first: "the latest item online as of D" reads a few;
- posts are not kept: a post page reads its post by subject (``adapters.trail``).

A non-history event recorded on a day already passed (a clock behind the others) makes the
kept days from its day on inexact: those are answered by ``fold_log`` as before. Exactness is
the point: a page must answer what ``gongkai audit as-of`` answers.
"""

from __future__ import annotations

import bisect
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson

from gongkai.access import masked_event
from gongkai.calendar import local_date
from gongkai.events import Envelope
from gongkai_accountability.domain.fold import HISTORY, RELEVANT, actor_of, as_of_day, evolve
from gongkai_accountability.domain.rows import MemoryRows, R, Row, Table

#: The tables kept for every day.
KEPT = ("unit", "column", "case", "finding", "violation", "alert")
#: What changes only posts (and the obligations the service decides on, never a view): not
#: read. A publication, finding or violation that names a post still is.
POSTS_ONLY = frozenset(
    {"PostSubmitted", "PostRevised", "PostWithdrawn", "ReviewSigned", "ReviewConcluded"}
)
#: The event types the pass reads.
READ = frozenset(RELEVANT - POSTS_ONLY)


def _copy(row: Any) -> Any:
    # A typed row (``domain.tables``) is immutable: kept as it is.
    if not isinstance(row, dict):
        return row
    out: Row = orjson.loads(orjson.dumps(row))
    return out


@dataclass(slots=True)
class Publication:
    publication_id: str
    unit: str
    column: str
    online_at: str
    #: The first day an as-of view includes it, and the day its removal is included from.
    known: date
    #: Who reported it online (its trail's first step: a confirmed finding names them).
    by: tuple[str, str, str]
    removed: date | None = None

    def row(self, day: date | None = None) -> Row:
        """The fields of its read-model row the views and the fold read, as of ``day``."""
        gone = self.removed is not None and (day is None or self.removed <= day)
        person, role, unit = self.by
        return {
            "publication_id": self.publication_id,
            "unit": self.unit,
            "column": self.column,
            "online_at": self.online_at,
            "removed": gone,
            "trail": [{"person": person, "role": role, "unit": unit}],
        }


class Publications:
    """Every publication once, with its days, indexed by (unit, column), latest online first."""

    def __init__(self) -> None:
        self.by_id: dict[str, Publication] = {}
        # (unit, column) -> [(-online timestamp, id)], sorted: the latest first.
        self._order: dict[tuple[str, str], list[tuple[float, str]]] = {}

    def put(self, row: Row, day: date) -> None:
        pid = row["publication_id"]
        known = self.by_id.get(pid)
        if known is not None:
            if row.get("removed") and known.removed is None:
                known.removed = day
            return
        first = row["trail"][0]
        by = (sys.intern(first["person"]), sys.intern(first["role"]), sys.intern(first["unit"]))
        pub = Publication(
            pid, sys.intern(row["unit"]), sys.intern(row["column"]), row["online_at"], day, by
        )
        if row.get("removed"):
            pub.removed = day
        self.by_id[pid] = pub
        stamp = -datetime.fromisoformat(pub.online_at).timestamp()
        bisect.insort(self._order.setdefault((pub.unit, pub.column), []), (stamp, pid))

    def latest(self, day: date) -> dict[tuple[str, str], datetime]:
        """Per (unit, column), the latest item online by the end of ``day`` and not removed as
        of it (as ``forms._last_publications`` and ``views.homepage_idle_days`` count)."""
        out: dict[tuple[str, str], datetime] = {}
        for key, entries in self._order.items():
            for _stamp, pid in entries:
                p = self.by_id[pid]
                if p.known > day or (p.removed is not None and p.removed <= day):
                    continue
                on = datetime.fromisoformat(p.online_at)
                if local_date(on) <= day:
                    out[key] = on
                    break
        return out


class _Pass:
    """The rows the pass folds into: the kept tables (handing out copies), publications by
    their days; posts and obligations are not kept."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, Any]] = {t: {} for t in KEPT}
        self.pubs = Publications()
        self.day = date.min

    def get(self, table: Table[R], key: str) -> R | None:
        if table == "publication":
            p = self.pubs.by_id.get(key)
            return p.row() if p is not None else None  # type: ignore[return-value]
        found = self.tables.get(table, {}).get(key)
        return _copy(found) if found is not None else None  # type: ignore[no-any-return]

    def put(self, table: Table[R], key: str, row: R) -> None:
        if table == "publication":
            self.pubs.put(row, self.day)  # type: ignore[arg-type]
        elif table in self.tables:
            self.tables[table][key] = row

    def delete(self, table: Table[Any], key: str) -> None:
        if table in self.tables:
            self.tables[table].pop(key, None)

    def scan(self, table: Table[R]) -> Iterator[tuple[str, R]]:
        yield from sorted(self.tables.get(table, {}).items())


class DayRows:
    """The read model as of the end of one day, for the views (read only)."""

    def __init__(
        self,
        day: date,
        tables: dict[str, dict[str, Any]],
        pubs: Publications,
    ) -> None:
        self.day = day
        self.tables = tables
        self.pubs = pubs

    def get(self, table: Table[R], key: str) -> R | None:
        if table == "publication":
            p = self.pubs.by_id.get(key)
            return p.row(self.day) if p is not None and p.known <= self.day else None  # type: ignore[return-value]
        return self.tables.get(table, {}).get(key)

    def put(self, table: Table[R], key: str, row: R) -> None:
        raise TypeError("a day's rows are read only")

    def delete(self, table: Table[Any], key: str) -> None:
        raise TypeError("a day's rows are read only")

    def scan(self, table: Table[R]) -> Iterator[tuple[str, R]]:
        if table == "publication":
            for pid in sorted(self.pubs.by_id):
                p = self.pubs.by_id[pid]
                if p.known <= self.day:
                    yield pid, p.row(self.day)  # type: ignore[misc]
            return
        yield from sorted(self.tables.get(table, {}).items())

    def latest_publications(self, day: date) -> dict[tuple[str, str], datetime]:
        return self.pubs.latest(min(day, self.day))


class Days:
    """The pass and the days it kept. Feed it the log's events in order (``feed``); ask it
    any day (``rows``; None: that day must be folded from the log)."""

    def __init__(self) -> None:
        self._fold = _Pass()
        #: Days at whose end the tables were kept, ascending, and what was kept.
        self._days: list[date] = []
        self._kept: dict[date, dict[str, dict[str, Any]]] = {}
        #: The day of the events being folded: everything before it is kept.
        self.current = date.min
        #: From this day on (up to ``current``) the kept days missed an event: not answered.
        self.inexact_from: date | None = None
        self.position = 0
        self.events = 0
        #: Changes whenever a kept day's answer may change (history laid over it, a day
        #: made inexact): what a cache of answers about kept days keys on.
        self.version = 0
        self._was_stale: list[tuple[date, int, Envelope[Any]]] = []
        self._history_from: dict[str, str] = {}

    def feed(self, seq: int, env: Envelope[Any]) -> None:
        """Fold one event (at stream sequence ``seq``, after every one fed before it)."""
        if seq <= self.position:
            return
        self.position = seq
        if env.type not in READ:
            return
        self.events += 1
        day = as_of_day(env)
        if env.type in HISTORY:
            self._history(seq, env, day)
            return
        if day > self.current:
            if self.current != date.min:
                self._days.append(self.current)
                self._kept[self.current] = {t: dict(r) for t, r in self._fold.tables.items()}
            self.current = day
        elif day < self.current and (self.inexact_from is None or day < self.inexact_from):
            self.inexact_from = day
            self.version += 1
        self._fold.day = day
        evolve(self._fold, masked_event(env), seq)

    def _history(self, seq: int, env: Envelope[Any], day: date) -> None:
        p = env.payload
        self.version += 1
        if env.type == "PublicationImported":
            self._fold.pubs.put(
                {
                    "publication_id": p.publication_id,
                    "unit": p.unit,
                    "column": p.column,
                    "online_at": p.online_at.isoformat(),
                    "trail": [actor_of(env)],
                },
                day,
            )
            # The first day a unit is known by its history (fold._imported's history_from).
            was = self._history_from.get(p.unit)
            if was is None or day.isoformat() < was:
                self._history_from[p.unit] = day.isoformat()
        else:  # ColumnWasStale: laid over the day's columns when asked
            self._was_stale.append((day, seq, env))

    def rows(self, day: date) -> DayRows | None:
        """The views' rows as of the end of ``day``; None when the kept days cannot tell."""
        if self.inexact_from is not None and self.inexact_from <= day < self.current:
            return None
        if day >= self.current:
            base = {t: dict(r) for t, r in self._fold.tables.items()}
        else:
            i = bisect.bisect_right(self._days, day)
            base = {t: dict(r) for t, r in self._kept[self._days[i - 1]].items()} if i else {
                t: {} for t in KEPT
            }
        self._lay_history(base, day)
        return DayRows(day, base, self._fold.pubs)

    def _lay_history(self, tables: dict[str, dict[str, Any]], day: date) -> None:
        units = tables["unit"]
        for code, first in self._history_from.items():
            if first > day.isoformat():
                continue
            u = _copy(units[code]) if code in units else {
                "code": code, "name": code, "roles": {}, "names": {},
            }
            u["history_from"] = first
            units[code] = u
        episodes = [(seq, env) for d, seq, env in self._was_stale if d <= day]
        if not episodes:
            return
        # The fold's own handler, on copies of the columns the episodes are about.
        cols = MemoryRows()
        for _seq, env in episodes:
            key = f"{env.payload.unit}--{env.payload.column}"
            if key in tables["column"] and key not in cols.tables["column"]:
                cols.tables["column"][key] = _copy(tables["column"][key])
        for seq, env in episodes:
            evolve(cols, env, seq)
        tables["column"].update(cols.tables["column"])


__all__ = ["KEPT", "READ", "DayRows", "Days", "Publications"]
