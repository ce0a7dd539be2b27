"""The register in memory: holds the current ``Register`` and applies what the domain decides.

The domain's functions are pure; this is the one place their results are kept: each event
folded in replaces the held register with the one ``evolve`` returned. It also remembers each
column's deadlines (computing them is most of an evaluation's cost and they change only with
the column, its unit or the year) and keeps the garbage collector out of the county-wide
passes. The routes, the CLI and the service read through it.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from typing import Any

from gongkai.calendar import WorkingCalendar
from gongkai.events import Envelope
from gongkai.rules import RuleSet
from gongkai_freshness.domain import register as domain
from gongkai_freshness.domain.evaluation import Deadline, Transition
from gongkai_freshness.domain.register import Register, RuleBook
from gongkai_freshness.domain.report import (
    Attachment2,
    ColumnStatus,
    SiteRisk,
    attachment2,
    site_risk,
    status_table,
)
from gongkai_freshness.domain.state import ColumnKey, ColumnState, UnitInfo


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector during a burst of short-lived allocations.

    A county-wide evaluation allocates ~10^5 small acyclic objects on top of a register of
    ~10^6 long-lived ones; every generation-2 pass those allocations trigger walks the whole
    register for nothing (measured on 1,000 units: status table 0.8 s with, 0.2 s without).
    Reference counting still frees everything; cycles, if any, wait for the next pass.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class ScheduleMemo:
    """Each column's deadlines for a year, kept while its record and its unit's stay the same.

    Records are immutable, so "the same" is identity: any event that changes a column or its
    unit makes a new record, and the memo computes afresh. One entry per column.
    """

    def __init__(self, book: RuleBook) -> None:
        self._book = book
        self._memo: dict[ColumnKey, tuple[ColumnState, UnitInfo, int, tuple[Deadline, ...]]] = {}

    def __call__(self, col: ColumnState, unit: UnitInfo, year: int) -> tuple[Deadline, ...]:
        key = (col.unit, col.column)
        hit = self._memo.get(key)
        if hit is not None and hit[0] is col and hit[1] is unit and hit[2] == year:
            return hit[3]
        sched = self._book.schedule(col, unit, year)
        self._memo[key] = (col, unit, year, sched)
        return sched

    def clear(self) -> None:
        self._memo.clear()


class ColumnRegister:
    """The county's register as it stands, and the queries over it."""

    def __init__(self, rule_sets: Sequence[RuleSet], calendar: WorkingCalendar) -> None:
        self.book = domain.rule_book(rule_sets, calendar)
        #: The current register; replaced (never changed) by each event folded in.
        self.state: Register = domain.empty(self.book)
        self.schedules = ScheduleMemo(self.book)

    @property
    def rule_sets(self) -> tuple[RuleSet, ...]:
        return self.book.rule_sets

    def has_unit(self, code: str) -> bool:
        return code in self.state.units

    def joined_on(self, code: str) -> date | None:
        """The day ``code`` was registered (None: not registered)."""
        unit = self.state.units.get(code)
        return unit.registered_on if unit is not None else None

    def units(self) -> list[str]:
        """The registered units' codes, sorted."""
        return sorted(self.state.units)

    def fold(self, env: Envelope[Any], seq: int = 0) -> tuple[ColumnKey, ...]:
        """Fold one event in; returns the columns whose deadlines it may have moved."""
        evolved = domain.evolve(self.state, env, seq)
        self.state = evolved.register
        return evolved.touched

    def decide(self, keys: Iterable[ColumnKey], as_of: date) -> list[Transition]:
        return domain.decide_columns(self.state, keys, as_of, self.schedules)

    def decide_all(self, as_of: date) -> list[Transition]:
        with gc_paused():
            return domain.decide_all(self.state, as_of, self.schedules)

    def status_table(
        self, as_of: date, *, unit: str | None = None, rule_set: str | None = None
    ) -> list[ColumnStatus]:
        with gc_paused():
            return status_table(
                self.state, as_of, unit=unit, rule_set=rule_set, schedules=self.schedules
            )

    def site_risk(self, rs: RuleSet, as_of: date, *, unit: str | None = None) -> SiteRisk:
        with gc_paused():
            return site_risk(self.state, rs, as_of, unit=unit, schedules=self.schedules)

    def attachment2(self, unit: str) -> Attachment2:
        return attachment2(self.state, unit)
