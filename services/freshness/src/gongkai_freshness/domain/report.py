"""Read-side views of the register: the status table, site risk and a unit's Attachment 2.

All pure: register + date in, values out. The HTTP routes and the CLI only format them. The
deadlines come from ``schedules`` when given (the register adapter's memo), else are computed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from gongkai.rules import RuleSet, SiteLine, Text
from gongkai_freshness.domain.evaluation import OPEN, Deadline
from gongkai_freshness.domain.register import Register, Schedules
from gongkai_freshness.domain.state import ColumnState, HiddenBy

ColumnStateName = Literal["fresh", "due_soon", "stale", "hidden", "blank"]
_SEVERITY = {"stale": 0, "due_soon": 1, "ok": 2}


# Not frozen: built by the hundred thousand, and a frozen dataclass pays for each field.
@dataclass(slots=True)
class Obligation:
    """One running deadline of a column under one rule."""

    rule_set: str
    rule: str
    rule_kind: str
    state: Literal["ok", "due_soon", "stale"]
    due_date: date
    provisional: bool
    episode: str
    post_id: str | None
    triggered_on: date | None
    overdue_days: int


# Not frozen: built by the hundred thousand, and a frozen dataclass pays for each field.
@dataclass(slots=True)
class ColumnStatus:
    unit: str
    column: str
    group: str
    rule_set: str
    state: ColumnStateName
    hidden_by: HiddenBy | None
    #: stale: the earliest missed due date; due soon / fresh: the next one; blank: since when.
    due_date: date | None
    rule: str | None
    provisional: bool
    last_publication: datetime | None
    overdue_days: int
    obligations: tuple[Obligation, ...]


def _obligation(d: Deadline, state: str, as_of: date) -> Obligation:
    return Obligation(
        rule_set=d.rule.rule_set,
        rule=d.rule.id,
        rule_kind=d.rule.kind,
        state=state,  # type: ignore[arg-type]
        due_date=d.due,
        provisional=d.provisional,
        episode=d.key,
        post_id=d.post_id,
        triggered_on=d.triggered_on,
        overdue_days=max(0, (as_of - d.due).days),
    )


def _deadlines(
    reg: Register, col: ColumnState, year: int, schedules: Schedules | None
) -> tuple[Deadline, ...]:
    unit = reg.units.get(col.unit)
    if unit is None:
        return ()
    return (schedules or reg.book.schedule)(col, unit, year)


def column_status(
    reg: Register,
    col: ColumnState,
    rs: RuleSet,
    as_of: date,
    schedules: Schedules | None = None,
) -> ColumnStatus:
    group = reg.catalog.columns[col.column].group
    if not col.visible:
        return ColumnStatus(
            col.unit,
            col.column,
            group,
            rs.id,
            "hidden",
            col.hidden_by,
            None,
            None,
            False,
            col.last_publication,
            0,
            (),
        )
    obligations = []
    for d in _deadlines(reg, col, as_of.year, schedules):
        if d.rule.rule_set != rs.id:
            continue
        st = d.state(as_of)
        if st in OPEN:
            obligations.append(_obligation(d, st, as_of))
    obligations.sort(key=lambda o: (_SEVERITY[o.state], o.due_date, o.rule))
    head = obligations[0] if obligations else None
    if col.blank:
        since = col.visible_since
        blank_rule = next((r.id for r in rs.rules_for(col.column) if r.kind == "blank"), None)
        return ColumnStatus(
            col.unit,
            col.column,
            group,
            rs.id,
            "blank",
            None,
            since,
            blank_rule,
            False,
            None,
            max(0, (as_of - since).days) if since else 0,
            tuple(obligations),
        )
    if head is None:
        return ColumnStatus(
            col.unit,
            col.column,
            group,
            rs.id,
            "fresh",
            None,
            None,
            None,
            False,
            col.last_publication,
            0,
            (),
        )
    state: ColumnStateName = "fresh" if head.state == "ok" else head.state
    return ColumnStatus(
        col.unit,
        col.column,
        group,
        rs.id,
        state,
        None,
        head.due_date,
        head.rule,
        head.provisional,
        col.last_publication,
        head.overdue_days if state == "stale" else 0,
        tuple(obligations),
    )


def status_table(
    reg: Register,
    as_of: date,
    *,
    unit: str | None = None,
    rule_set: str | None = None,
    schedules: Schedules | None = None,
) -> list[ColumnStatus]:
    """Unit × column × rule set, in unit-code then catalog order."""
    units = [unit] if unit is not None else sorted(reg.units)
    sets = [rs for rs in reg.rule_sets if rule_set is None or rs.id == rule_set]
    rows: list[ColumnStatus] = []
    for code in units:
        if code not in reg.units:
            continue
        for col in reg.unit_columns(code):
            for rs in sets:
                rows.append(column_status(reg, col, rs, as_of, schedules))
    return rows


# ---- site risk --------------------------------------------------------------------------

Level = Literal["ok", "warning", "veto"]
_LEVELS: dict[str, int] = {"ok": 0, "warning": 1, "veto": 2}


@dataclass(frozen=True, slots=True)
class LineResult:
    id: str
    measure: str
    text: Text
    value: int
    warn: int
    veto: int
    level: Level
    #: What was counted: (unit, column) pairs; for idle days, the latest item's column.
    counted: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class SiteRisk:
    rule_set: str
    as_of: date
    unit: str | None
    level: Level
    lines: tuple[LineResult, ...]


def _level(value: int, line: SiteLine) -> Level:
    if value >= line.veto:
        return "veto"
    if value >= line.warn:
        return "warning"
    return "ok"


def site_risk(
    reg: Register,
    rs: RuleSet,
    as_of: date,
    *,
    unit: str | None = None,
    schedules: Schedules | None = None,
) -> SiteRisk:
    """The national single-veto lines of ``rs`` over the whole site, or one unit's section."""
    units = [unit] if unit is not None else sorted(reg.units)
    cols = [c for u in units if u in reg.units for c in reg.unit_columns(u)]
    results = [_line(reg, rs, line, cols, units, as_of, schedules) for line in rs.site]
    level: Level = max((r.level for r in results), key=_LEVELS.__getitem__, default="ok")
    return SiteRisk(rs.id, as_of, unit, level, tuple(results))


def _line(
    reg: Register,
    rs: RuleSet,
    line: SiteLine,
    cols: Iterable[ColumnState],
    units: list[str],
    as_of: date,
    schedules: Schedules | None,
) -> LineResult:
    counted: list[tuple[str, str]] = []
    if line.measure == "blank_columns":
        counted = [(c.unit, c.column) for c in cols if c.blank]
        value = len(counted)
    elif line.measure == "stale_columns":
        for c in cols:
            if not c.visible:
                continue
            for d in _deadlines(reg, c, as_of.year, schedules):
                if d.rule.rule_set != rs.id or (
                    line.rules is not None and d.rule.id not in line.rules
                ):
                    continue
                if d.state(as_of) == "stale":
                    counted.append((c.unit, c.column))
                    break
        value = len(counted)
    else:
        latest: tuple[date, str, str] | None = None
        for c in cols:
            if c.column in line.columns and c.live and c.last_publication_on is not None:
                cand = (c.last_publication_on, c.unit, c.column)
                if latest is None or cand > latest:
                    latest = cand
        if latest is not None:
            value = max(0, (as_of - latest[0]).days)
            counted = [(latest[1], latest[2])]
        else:
            # Nothing ever published: idle since the site (or the unit) was first known.
            known = [reg.units[u].registered_on for u in units if u in reg.units]
            value = max(0, (as_of - min(known)).days) if known else 0
    return LineResult(
        line.id,
        line.measure,
        line.text,
        value,
        line.warn,
        line.veto,
        _level(value, line),
        tuple(counted),
    )


# ---- Attachment 2 -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attachment2Row:
    group: str
    group_zh: str
    group_en: str
    column: str
    zh: str
    en: str
    deadline: Text
    keep: bool
    #: "unit" when the unit ticked it; "default" when the catalog decides (not yet ticked).
    source: Literal["unit", "default"]
    #: True when the column does not exist for the unit's kind (no tick possible).
    not_applicable: bool
    decided_by: str | None
    decided_role: str | None
    decided_at: datetime | None
    reason: str | None
    #: Hidden on the site right now, and why (a kept column whose items were all removed is
    #: hidden too, per the notice's note 2).
    hidden_by: HiddenBy | None


@dataclass(frozen=True, slots=True)
class Attachment2:
    unit: str
    unit_name: str
    contact_name: str
    contact_mobile: str
    #: The latest tick the unit made: the table's "date submitted".
    submitted_at: datetime | None
    rows: tuple[Attachment2Row, ...]


def attachment2(reg: Register, unit: str) -> Attachment2:
    info = reg.units[unit]
    rows = []
    latest: datetime | None = None
    for group in reg.catalog.groups:
        for code in group.columns:
            meta = reg.catalog.columns[code]
            col = reg.column(unit, code)
            dec = col.decision
            applicable = meta.exists_for(info.kind)
            if dec is not None:
                keep = dec.keep and applicable
                if latest is None or dec.at > latest:
                    latest = dec.at
            else:
                keep = reg.catalog.kept_by_default(code, info.kind)
            rows.append(
                Attachment2Row(
                    group=group.code,
                    group_zh=group.zh,
                    group_en=group.en,
                    column=code,
                    zh=meta.zh,
                    en=meta.en,
                    deadline=meta.deadline,
                    keep=keep,
                    source="unit" if dec is not None else "default",
                    not_applicable=not applicable,
                    decided_by=dec.actor.person if dec else None,
                    decided_role=dec.actor.role if dec else None,
                    decided_at=dec.at if dec else None,
                    reason=dec.reason if dec else None,
                    hidden_by=col.hidden_by,
                )
            )
    return Attachment2(unit, info.name, info.contact_name, info.contact_mobile, latest, tuple(rows))
