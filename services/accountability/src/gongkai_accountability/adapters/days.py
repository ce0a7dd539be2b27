"""Every day's read model from one pass over the log: what the console asks of any day.

``fold_log(until=D)`` folds the events an as-of view includes (``fold.as_of_day``) in log order.
Asked per request, that is a fold of the whole log each time: a minute at a million events.
``Days`` folds the log once, as it grows, and keeps the tables the inspectors' views read
(units, columns, cases, findings, violations, alerts) as they stood at the end of each day:

- the log is, but for clock skew, in the order of the days it was recorded on. When the first
  event of a later day arrives, the tables as they stand are the answer for the day before
  (and for every day up to the next one with events). What is kept is the rows that day
  changed, each a version with the days it answers (``_Versions``): a day's table is the
  versions standing on it, and memory grows with the rows changed, not with days times rows
  (a copy of every table per day was 106 MB of a 1,000,000-event log's 195). Rows are
  immutable (the fold replaces them), so a row once kept never changes and none is copied;
- imported history (``fold.HISTORY``) is known by its own business day, not where it sits in
  the log. It commutes with everything else the views read (a publication of its own, a
  column's past episode, the day a unit is first known), so it is kept aside and laid over a
  day's tables when that day is asked;
- publications are kept once, each with the day it became known and the day it was removed,
  as a row of arrays (``Publications``), indexed by unit and column in online order: "the
  latest item online as of D" starts at D's end and reads a few;
- posts are not kept: a post page reads its post by subject (``adapters.trail``).

A non-history event recorded on a day already passed (a clock behind the others) makes the
kept days from its day on inexact: those are answered by ``fold_log`` as before. Exactness is
the point: a page must answer what ``gongkai audit as-of`` answers.
"""

from __future__ import annotations

import bisect
import sys
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from itertools import islice
from typing import Any

from gongkai.calendar import day_end, local_date
from gongkai.events import Envelope
from gongkai.masking import masked_event
from gongkai_accountability.domain.fold import (
    HISTORY,
    RELEVANT,
    as_of_day,
    evolve,
    imported_publication,
)
from gongkai_accountability.domain.rows import Change, MemoryRows, R, Table
from gongkai_accountability.domain.tables import Publication, Step, Unit

#: The tables kept for every day.
KEPT = ("unit", "column", "case", "finding", "violation", "alert")
#: What changes only posts (and the obligations the service decides on, never a view): not
#: read. A publication, finding or violation that names a post still is.
POSTS_ONLY = frozenset(
    {"PostSubmitted", "PostRevised", "PostWithdrawn", "ReviewSigned", "ReviewConcluded"}
)
#: The event types the pass reads.
READ = frozenset(RELEVANT - POSTS_ONLY)
#: The tables whose rows the pass keeps: what it takes from the live projection's fold
#: (``Days.take``).
TAKEN = frozenset({*KEPT, "publication"})


#: The day ordinal of "never": a version that still stands, a publication never removed.
FOREVER = date.max.toordinal()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(microseconds=1)


class Publications:
    """Every publication once, with its days, indexed by (unit, column) in online order.

    A county's publications run to the hundreds of thousands, so each is a row of parallel
    arrays (its number is its index), not an object: its id, when it went online (microseconds
    and the offset it was given with, so its text comes back as it was recorded), the Shanghai
    day of that, the first day an as-of view includes it, the day its removal is included from
    (``FOREVER``: not removed) and who reported it online (its trail's first step: a confirmed
    finding names them). About 170 bytes each, where an object each took 460.
    """

    def __init__(self) -> None:
        self._number: dict[str, int] = {}
        self._ids: list[str] = []
        self._online = array("q")
        self._offset = array("i")
        self._online_day = array("i")
        self._known = array("i")
        self._removed = array("i")
        self._by = array("i")
        self._column = array("i")
        self._people: list[tuple[str, str, str]] = []
        self._person: dict[tuple[str, str, str], int] = {}
        #: Online times whose text is not their instant's ``isoformat`` in their offset.
        self._odd_text: dict[int, str] = {}
        #: (unit, column) by number, and each one's publications: (online microseconds
        #: ascending, publication numbers), the latest last; of two online at the same
        #: instant the smaller id is last.
        self._columns: list[tuple[str, str]] = []
        self._order: dict[tuple[str, str], tuple[int, array[int], array[int]]] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, pid: str) -> bool:
        return pid in self._number

    def put(self, row: Publication, day: date) -> None:
        pid = row.publication_id
        n = self._number.get(pid)
        if n is not None:
            if row.removed and self._removed[n] == FOREVER:
                self._removed[n] = day.toordinal()
            return
        first = row.trail[0]
        by = (sys.intern(first.person), sys.intern(first.role), sys.intern(first.unit))
        person = self._person.get(by)
        if person is None:
            person = self._person[by] = len(self._people)
            self._people.append(by)
        text = row.online_at
        on = datetime.fromisoformat(text)
        offset = on.utcoffset()
        if offset is None:  # never recorded so (envelope times are aware); kept exact anyway
            offset = timedelta(0)
            on = on.replace(tzinfo=UTC)
        micros = _micros(on)
        n = len(self._ids)
        self._number[pid] = n
        self._ids.append(pid)
        self._online.append(micros)
        self._offset.append(offset // timedelta(seconds=1))
        self._online_day.append(local_date(on).toordinal())
        self._known.append(day.toordinal())
        self._removed.append(day.toordinal() if row.removed else FOREVER)
        self._by.append(person)
        if self._online_at(n) != text:
            self._odd_text[n] = text
        key = (row.unit, row.column)
        found = self._order.get(key)
        if found is None:
            key = (sys.intern(key[0]), sys.intern(key[1]))
            found = self._order[key] = (len(self._columns), array("q"), array("i"))
            self._columns.append(key)
        column, stamps, numbers = found
        self._column.append(column)
        i = bisect.bisect_right(stamps, micros)
        # Equal instants: the smaller id nearer the end (asked first).
        while i > 0 and stamps[i - 1] == micros and self._ids[numbers[i - 1]] < pid:
            i -= 1
        stamps.insert(i, micros)
        numbers.insert(i, n)

    def _when(self, n: int) -> datetime:
        zone = timezone(timedelta(seconds=self._offset[n]))
        return (_EPOCH + timedelta(microseconds=self._online[n])).astimezone(zone)

    def _online_at(self, n: int) -> str:
        return self._odd_text.get(n) or self._when(n).isoformat()

    def row(self, pid: str, day: date | None = None) -> Publication | None:
        """Its read-model row as of ``day`` (None: as the pass stands), as far as it is kept;
        None if it is not known by then.

        Kept is what the views and the fold read of a publication here: its unit, column,
        online time, removal, and who reported it online (its first step's person). What is
        not kept is empty: no post, digest or event id; the first step's sequence, event and
        times blank. Such a row is never stored (the pass keeps no publication rows).
        """
        n = self._number.get(pid)
        if n is None or (day is not None and self._known[n] > day.toordinal()):
            return None
        removed = self._removed[n]
        gone = removed != FOREVER and (day is None or removed <= day.toordinal())
        person, role, unit = self._people[self._by[n]]
        at_unit, column = self._columns[self._column[n]]
        online_at = self._online_at(n)
        first = Step(0, "", "published", online_at, "", person, role, unit, {})
        return Publication(
            pid, None, at_unit, column, None, online_at, removed=gone, event_id="", trail=(first,)
        )

    def ids(self) -> list[str]:
        return sorted(self._number)

    def latest(self, day: date) -> dict[tuple[str, str], datetime]:
        """Per (unit, column), the latest item online by the end of ``day`` and not removed as
        of it (as ``forms._last_publications`` and ``views.homepage_idle_days`` count)."""
        d = day.toordinal()
        known, removed, online_day = self._known, self._removed, self._online_day
        # Nothing online after the end of ``day`` (Shanghai) can count: start below it.
        end = _micros(day_end(day))
        out: dict[tuple[str, str], datetime] = {}
        for key, (_column, stamps, numbers) in self._order.items():
            for i in range(bisect.bisect_left(stamps, end) - 1, -1, -1):
                n = numbers[i]
                if known[n] > d or removed[n] <= d or online_day[n] > d:
                    continue
                out[key] = self._when(n)
                break
        return out


def _without_history(table: str, row: Any) -> Any:
    """A row of the projection's as the pass keeps it: before history is laid over it. Only
    history's handlers write (or read) a unit's ``history_from`` and a column's past episodes,
    and every other handler carries them over unchanged or builds the row afresh."""
    if table == "unit" and row.history_from is not None:
        return replace(row, history_from=None)
    if table == "column" and row.history is not None:
        return replace(row, history=None)
    return row


class _Versions:
    """One kept table's rows as they stood at the end of each day, every version once: the
    day from which it answers (an ordinal), the day a later version or a deletion replaced it
    (``FOREVER`` while it stands), its key and the row. Versions are added in day order, so
    those that answer a day are among the first ``bisect(start, day)``.

    A day's table is the versions that answer it: the memory is one entry per row changed on
    a day, not a copy of every table for every day (``bench_memory``'s 19,373 supervision
    cases over 367 days were 3.5 million entries of copied dicts).
    """

    __slots__ = ("_end", "_keys", "_rows", "_standing", "_start")

    def __init__(self) -> None:
        self._start = array("i")
        self._end = array("i")
        self._keys: list[str] = []
        self._rows: list[Any] = []
        #: key -> the index of its version that still stands.
        self._standing: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._keys)

    def keep(self, key: str, row: Any | None, day: int) -> None:
        """``row`` is ``key``'s at the end of ``day`` (None: deleted)."""
        i = self._standing.get(key)
        if i is not None:
            if self._rows[i] is row:
                return
            self._end[i] = day
            del self._standing[key]
        if row is None:
            return
        self._standing[key] = len(self._keys)
        self._start.append(day)
        self._end.append(FOREVER)
        self._keys.append(key)
        self._rows.append(row)

    def at(self, day: int) -> dict[str, Any]:
        """The table as it stood at the end of ``day``."""
        n = bisect.bisect_right(self._start, day)
        return {
            k: r
            for k, r, e in zip(
                islice(self._keys, n), islice(self._rows, n), islice(self._end, n), strict=True
            )
            if e > day
        }


class _Pass:
    """The rows the pass folds into: the kept tables, publications by their days; posts and
    obligations are not kept. Which rows a day changed is noted, for the versions kept at its
    end."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, Any]] = {t: {} for t in KEPT}
        self.pubs = Publications()
        self.day = date.min
        self.changed: set[tuple[str, str]] = set()

    def get(self, table: Table[R], key: str) -> R | None:
        if table == "publication":
            return self.pubs.row(key)  # type: ignore[return-value]
        return self.tables.get(table, {}).get(key)  # type: ignore[no-any-return]

    def put(self, table: Table[R], key: str, row: R) -> None:
        if table == "publication":
            self.pubs.put(row, self.day)  # type: ignore[arg-type]
        elif table in self.tables:
            self.tables[table][key] = row
            self.changed.add((table, key))

    def delete(self, table: Table[Any], key: str) -> None:
        if table in self.tables:
            self.tables[table].pop(key, None)
            self.changed.add((table, key))

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
            return self.pubs.row(key, self.day)  # type: ignore[return-value]
        return self.tables.get(table, {}).get(key)  # type: ignore[no-any-return]

    def put(self, table: Table[R], key: str, row: R) -> None:
        raise TypeError("a day's rows are read only")

    def delete(self, table: Table[Any], key: str) -> None:
        raise TypeError("a day's rows are read only")

    def scan(self, table: Table[R]) -> Iterator[tuple[str, R]]:
        if table == "publication":
            for pid in self.pubs.ids():
                row = self.pubs.row(pid, self.day)
                if row is not None:
                    yield pid, row  # type: ignore[misc]
            return
        yield from sorted(self.tables.get(table, {}).items())

    def latest_publications(self, day: date) -> dict[tuple[str, str], datetime]:
        return self.pubs.latest(min(day, self.day))


class Days:
    """The pass and the days it kept. Feed it the log's events in order (``feed``); ask it
    any day (``rows``; None: that day must be folded from the log)."""

    def __init__(self) -> None:
        self._fold = _Pass()
        #: Every version of the kept tables' rows, by the days each answers.
        self._kept: dict[str, _Versions] = {t: _Versions() for t in KEPT}
        #: How many days' ends were kept (days with events before ``current``).
        self.kept_days = 0
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

    @property
    def versions(self) -> int:
        """Row versions kept (what the kept days' memory grows with, beside publications)."""
        return sum(len(v) for v in self._kept.values())

    @property
    def publications(self) -> int:
        return len(self._fold.pubs)

    def feed(self, seq: int, env: Envelope[Any]) -> None:
        """Fold one event (at stream sequence ``seq``, after every one fed before it)."""
        if self._enter(seq, env):
            evolve(self._fold, masked_event(env), seq)

    def take(self, seq: int, env: Envelope[Any], changes: Sequence[Change]) -> None:
        """As ``feed``, given what the live projection's fold of ``env`` wrote in the tables
        the pass keeps (``TAKEN``: each put and delete, in order), instead of folding it again.

        The same rows either way, as long as the pass and the projection have taken the same
        events: of what the pass lacks, posts and obligations change only obligations and
        rows it does not keep, and a publication's rows only its facts the pass does not keep;
        history (``fold.HISTORY``) is not taken but laid over the days it speaks for, as
        ``feed`` does, so a row the projection folded with it is kept without it
        (``_without_history``). ``tests/property/test_accountability_days.py`` holds the two
        to each other. Folding again cost a fifth of accountability's catch-up at 20,000
        events: without the posts, every publication was judged unreviewed.
        """
        if self._enter(seq, env):
            put, delete = self._fold.put, self._fold.delete
            for table, key, row in changes:
                if row is None:
                    delete(table, key)
                else:
                    put(table, key, _without_history(table, row))

    def _enter(self, seq: int, env: Envelope[Any]) -> bool:
        """The day bookkeeping of one event: whether its rows are still to be folded (not
        before the position, of a type the pass reads, and not history, kept here)."""
        if seq <= self.position:
            return False
        self.position = seq
        if env.type not in READ:
            return False
        self.events += 1
        day = as_of_day(env)
        if env.type in HISTORY:
            self._history(seq, env, day)
            return False
        if day > self.current:
            if self.current != date.min:
                self._keep(self.current)
            self.current = day
        elif day < self.current and (self.inexact_from is None or day < self.inexact_from):
            self.inexact_from = day
            self.version += 1
        self._fold.day = day
        return True

    def _keep(self, day: date) -> None:
        """The rows ``day`` changed, as they stand at its end."""
        d = day.toordinal()
        tables = self._fold.tables
        for table, key in self._fold.changed:
            self._kept[table].keep(key, tables[table].get(key), d)
        self._fold.changed.clear()
        self.kept_days += 1

    def _history(self, seq: int, env: Envelope[Any], day: date) -> None:
        p = env.payload
        self.version += 1
        if env.type == "PublicationImported":
            self._fold.pubs.put(imported_publication(env, seq), day)
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
            d = day.toordinal()
            base = {t: v.at(d) for t, v in self._kept.items()}
        self._lay_history(base, day)
        return DayRows(day, base, self._fold.pubs)

    def _lay_history(self, tables: dict[str, dict[str, Any]], day: date) -> None:
        units = tables["unit"]
        for code, first in self._history_from.items():
            if first > day.isoformat():
                continue
            u = units.get(code) or Unit.unknown(code)
            units[code] = replace(u, history_from=first)
        episodes = [(seq, env) for d, seq, env in self._was_stale if d <= day]
        if not episodes:
            return
        # The fold's own handler, on the columns the episodes are about, in rows of their own
        # (the fold replaces a row it changes: the day's kept rows stay as they were).
        cols = MemoryRows()
        for _seq, env in episodes:
            key = f"{env.payload.unit}--{env.payload.column}"
            if key in tables["column"] and key not in cols.tables["column"]:
                cols.tables["column"][key] = tables["column"][key]
        for seq, env in episodes:
            evolve(cols, env, seq)
        tables["column"].update(cols.tables["column"])


__all__ = ["KEPT", "READ", "TAKEN", "DayRows", "Days", "Publications"]
