"""The column catalog and the deadline rules, as immutable values.

A *rule set* is data (YAML, see ``data/`` and docs/freshness.md): the notice's Attachment 2
(``wenan-2018``) defines the catalog of columns every unit's section has and each column's
deadlines; other rule sets (``national-2019``, an operator's own) add rules to the columns of a
catalog. Nothing here does I/O; ``loader`` builds these values from files.
"""

from __future__ import annotations

import calendar as _stdcal
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal, get_args

from gongkai.events.contracts.intake import UnitKind

__all__ = [
    "RULE_KINDS", "UNIT_KINDS", "Catalog", "Column", "Group", "MonthDay", "Period", "Rule",
    "RuleKind", "RuleSet", "SiteLine", "Text",
]

RuleKind = Literal["periodic", "triggered", "dated", "leadership", "blank"]
RULE_KINDS: tuple[str, ...] = get_args(RuleKind)
UNIT_KINDS: tuple[str, ...] = get_args(UnitKind)
PeriodUnit = Literal["days", "weeks", "months", "years"]
SiteMeasure = Literal["stale_columns", "blank_columns", "idle_days"]
SITE_MEASURES: tuple[str, ...] = get_args(SiteMeasure)


@dataclass(frozen=True, slots=True)
class Text:
    """A label in the notice's language and in English."""

    zh: str
    en: str


@dataclass(frozen=True, slots=True)
class Period:
    """ "At least every N days/weeks/months/years" — calendar arithmetic, not working days."""

    n: int
    unit: PeriodUnit

    def after(self, d: date) -> date:
        """The last day a column last updated on ``d`` is still fresh."""
        if self.unit == "days":
            return d + timedelta(days=self.n)
        if self.unit == "weeks":
            return d + timedelta(weeks=self.n)
        months = self.n if self.unit == "months" else 12 * self.n
        y, m = divmod(d.month - 1 + months, 12)
        year, month = d.year + y, m + 1
        # 31 August + 6 months is the last day of February, not an error.
        day = min(d.day, _stdcal.monthrange(year, month)[1])
        return date(year, month, day)

    def __str__(self) -> str:
        return f"{self.n} {self.unit[:-1] if self.n == 1 else self.unit}"


@dataclass(frozen=True, slots=True)
class MonthDay:
    """A day of the year such as 01-31, or the last day of a month (``02-last``)."""

    month: int
    day: int | None  # None: the month's last day

    def in_year(self, year: int) -> date:
        last = _stdcal.monthrange(year, self.month)[1]
        return date(year, self.month, last if self.day is None else min(self.day, last))

    def __str__(self) -> str:
        return f"{self.month:02d}-{'last' if self.day is None else f'{self.day:02d}'}"


@dataclass(frozen=True, slots=True)
class Rule:
    """One deadline of one rule set. ``id`` is unique within its rule set."""

    rule_set: str
    id: str
    kind: RuleKind
    text: Text | None = None
    warn_working_days: int = 3
    every: Period | None = None  # periodic
    within_working_days: int | None = None  # triggered, leadership
    by: MonthDay | None = None  # dated
    by_unit_kind: Mapping[str, MonthDay] = field(default_factory=dict)  # dated

    def deadline_in(self, year: int, unit_kind: str) -> date:
        """Dated rules: the day of ``year`` by which the item must be public."""
        md = self.by_unit_kind.get(unit_kind, self.by)
        if md is None:
            raise ValueError(f"rule {self.id} is not a dated rule")
        return md.in_year(year)

    def describe(self) -> str:
        if self.kind == "periodic":
            return f"at least every {self.every}"
        if self.kind in ("triggered", "leadership"):
            what = "a change of leaders' duties" if self.kind == "leadership" else "the post's date"
            return f"within {self.within_working_days} working days of {what}"
        if self.kind == "dated":
            extra = ", ".join(f"{k} {v}" for k, v in sorted(self.by_unit_kind.items()))
            return f"by {self.by} each year" + (f" ({extra})" if extra else "")
        return "a kept column must not be empty"

    def definition(self) -> tuple[object, ...]:
        """What makes two mentions of one rule id the same rule."""
        return (
            self.kind,
            self.every,
            self.within_working_days,
            self.by,
            tuple(sorted(self.by_unit_kind.items())),
            self.warn_working_days,
        )


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the one template every unit's section uses."""

    code: str
    zh: str
    en: str
    group: str
    deadline: Text
    #: Unit kinds the column exists for; None: every kind.
    unit_kinds: frozenset[str] | None = None
    #: Starts hidden even where it exists (housing security: only the housing bureau keeps it).
    hidden_by_default: bool = False
    #: The notice's note 1: the latest item is not time-bound and may be re-dated to now.
    redatable: bool = False

    @property
    def name(self) -> str:
        return self.zh

    def exists_for(self, unit_kind: str) -> bool:
        return self.unit_kinds is None or unit_kind in self.unit_kinds


@dataclass(frozen=True, slots=True)
class Group:
    code: str
    zh: str
    en: str
    columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Catalog:
    """The columns of a rule set that defines them, in the order of Attachment 2."""

    id: str
    groups: tuple[Group, ...]
    columns: Mapping[str, Column]

    @property
    def rule_set(self) -> str:
        return self.id

    def column(self, code: str) -> Column | None:
        return self.columns.get(code)

    def codes(self) -> tuple[str, ...]:
        return tuple(self.columns)

    def kept_by_default(self, code: str, unit_kind: str) -> bool:
        """Attachment 2's tick before the unit says otherwise: kept, unless the column does not
        exist for the unit's kind or starts hidden."""
        col = self.columns[code]
        return col.exists_for(unit_kind) and not col.hidden_by_default


@dataclass(frozen=True, slots=True)
class SiteLine:
    """A national single-veto line, with the early-warning level below it."""

    id: str
    measure: SiteMeasure
    warn: int
    veto: int
    text: Text
    rules: frozenset[str] | None = None  # stale_columns: which rules count; None: any
    columns: tuple[str, ...] = ()  # idle_days: the homepage's columns


@dataclass(frozen=True, slots=True)
class RuleSet:
    id: str
    title: Text
    source: str
    catalog: Catalog
    rules: tuple[Rule, ...]
    rules_by_column: Mapping[str, tuple[Rule, ...]]
    site: tuple[SiteLine, ...] = ()
    path: str = ""

    def rules_for(self, column: str) -> tuple[Rule, ...]:
        return self.rules_by_column.get(column, ())

    def rule(self, rule_id: str) -> Rule | None:
        for r in self.rules:
            if r.id == rule_id:
                return r
        return None
