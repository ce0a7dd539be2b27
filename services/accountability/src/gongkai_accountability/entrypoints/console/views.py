"""What the console's pages show, computed from rows folded as of a day.

Nothing here is a new rule: the counts are ``report.as_of_view``'s stale columns, the scores
``report.unit_reports``', and the veto lines are read from the national-2019 rule set's ``site``
lines, so a page and ``gongkai audit as-of`` / ``report`` cannot disagree. The one split made
here is the notice's own: a stale column that was never published (its open episodes are all of
the ``blank`` rule) is a 空白栏目, any other is 未按时更新.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from gongkai.calendar import local_date
from gongkai.rules import load_rule_sets
from gongkai.rules.model import SiteLine
from gongkai_accountability.domain.report import KINDS, as_of_view, unit_reports
from gongkai_accountability.domain.rows import Rows

#: The rule set whose single-veto lines the overview measures units against.
VETO_RULE_SET = "national-2019"
#: Its lines the overview shows, by the line ids of that rule set.
STALE_LINE, BLANK_LINE, IDLE_LINE = "stale-columns", "blank-columns", "homepage-idle"


@functools.cache
def veto_lines() -> dict[str, SiteLine]:
    """The national single-veto lines by id (stale ≥ 5, blank ≥ 5, homepage idle 14 days)."""
    rs = load_rule_sets([VETO_RULE_SET])[0]
    return {line.id: line for line in rs.site}


@dataclass(frozen=True)
class Line:
    """One unit's value on one veto line: how far it is from the line (≤ 0: at or over)."""

    id: str
    value: int
    warn: int
    veto: int

    @property
    def distance(self) -> int:
        return self.veto - self.value

    @property
    def level(self) -> str:
        return "veto" if self.value >= self.veto else "warn" if self.value >= self.warn else "ok"


@dataclass
class UnitRow:
    unit: str
    score: int
    rank: int
    stale: int
    blank: int
    idle_days: int
    lines: dict[str, Line]
    violations: int
    open_cases: int

    @property
    def stale_total(self) -> int:
        """Every stale column of the unit, as ``as_of_view`` lists them."""
        return self.stale + self.blank

    @property
    def vetoed(self) -> int:
        return sum(line.level == "veto" for line in self.lines.values())


def is_blank(rows: Rows, unit: str, column: str) -> bool:
    """A column stale only because nothing was ever published in it (the ``blank`` rule)."""
    col = rows.get("column", f"{unit}--{column}")
    episodes = list(col["open"].values()) if col else []
    return bool(episodes) and all(e.get("rule_kind") == "blank" for e in episodes)


def homepage_idle_days(rows: Rows, unit: str, day: date, columns: tuple[str, ...]) -> int:
    """Days since the unit last put an item online in the homepage columns (as of ``day``);
    never: since the unit joined, as freshness measures the line."""
    latest: date | None = None
    for _, pub in rows.scan("publication"):
        if pub["unit"] != unit or pub["column"] not in columns or pub["removed"]:
            continue
        on = local_date(datetime.fromisoformat(pub["online_at"]))
        if on <= day and (latest is None or on > latest):
            latest = on
    if latest is None:
        u = rows.get("unit", unit) or {}
        joined = u.get("registered_at")
        latest = local_date(datetime.fromisoformat(joined)) if joined else day
    return max(0, (day - latest).days)


def overview(
    rows: Rows, start: date, day: date, units: frozenset[str] | None = None
) -> list[UnitRow]:
    """Every unit's score for [start, day] and its place against the veto lines, worst first:
    most lines at veto, then nearest to a line, then lowest score."""
    lines = veto_lines()
    view = as_of_view(rows, day)
    stale: dict[str, int] = {}
    blank: dict[str, int] = {}
    for c in view["stale_columns"]:
        bucket = blank if is_blank(rows, c["unit"], c["column"]) else stale
        bucket[c["unit"]] = bucket.get(c["unit"], 0) + 1
    cases: dict[str, int] = {}
    for c in view["open_cases"]:
        cases[c["unit"]] = cases.get(c["unit"], 0) + 1
    out = []
    for r in unit_reports(rows, start, day):
        if units is not None and r.unit not in units:
            continue
        idle = homepage_idle_days(rows, r.unit, day, lines[IDLE_LINE].columns)
        values = {
            STALE_LINE: stale.get(r.unit, 0),
            BLANK_LINE: blank.get(r.unit, 0),
            IDLE_LINE: idle,
        }
        row_lines = {
            k: Line(k, v, lines[k].warn, lines[k].veto) for k, v in values.items()
        }
        out.append(
            UnitRow(
                unit=r.unit,
                score=r.score,
                rank=r.rank,
                stale=values[STALE_LINE],
                blank=values[BLANK_LINE],
                idle_days=idle,
                lines=row_lines,
                violations=sum(r.violations.values()),
                open_cases=cases.get(r.unit, 0),
            )
        )
    out.sort(
        key=lambda u: (
            -u.vetoed,
            min(line.distance for line in u.lines.values()),
            u.score,
            u.unit,
        )
    )
    return out


@dataclass
class UnitView:
    unit: str
    stale_columns: list[dict[str, Any]]
    open_cases: list[dict[str, Any]]
    violations: list[dict[str, Any]]
    report: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def unit_view(rows: Rows, start: date, day: date, unit: str) -> UnitView:
    view = as_of_view(rows, day, unit)
    stale = [
        {**c, "blank": is_blank(rows, c["unit"], c["column"])}
        for c in sorted(view["stale_columns"], key=lambda c: (-c["days_stale"], c["column"]))
    ]
    reps = unit_reports(rows, start, day, unit)
    return UnitView(
        unit=unit,
        stale_columns=stale,
        open_cases=sorted(view["open_cases"], key=lambda c: (c["opened_on"], c["case_id"])),
        violations=sorted(
            view["violations"], key=lambda v: (v["occurred_at"], v["violation_id"]), reverse=True
        ),
        report=reps[0].as_dict() if reps else None,
    )


def post_violations(rows: Rows, post_id: str) -> list[dict[str, Any]]:
    return sorted(
        (v for _, v in rows.scan("violation") if v.get("post_id") == post_id),
        key=lambda v: (v["occurred_at"], v["violation_id"]),
    )


@dataclass(frozen=True)
class ViolationFilter:
    unit: str | None = None
    kind: str | None = None
    since: date | None = None
    until: date | None = None

    def keeps(self, v: dict[str, Any]) -> bool:
        day = v["occurred_at"][:10]
        return (
            (self.unit is None or v["unit"] == self.unit)
            and (self.kind is None or v["kind"] == self.kind)
            and (self.since is None or day >= self.since.isoformat())
            and (self.until is None or day <= self.until.isoformat())
        )


def violations(
    rows: Rows, f: ViolationFilter, units: frozenset[str] | None = None
) -> list[dict[str, Any]]:
    """The violations on record as of the fold's day that pass ``f``, of ``units`` only
    (None: every unit), newest first."""
    out = [
        v
        for _, v in rows.scan("violation")
        if (units is None or v["unit"] in units) and f.keeps(v)
    ]
    return sorted(out, key=lambda v: (v["occurred_at"], v["violation_id"]), reverse=True)


@dataclass(frozen=True)
class FindingFilter:
    """纠错 findings of one unit (None: every readable unit) reported within a period."""

    unit: str | None = None
    status: str | None = None
    since: date | None = None
    until: date | None = None

    def keeps(self, f: dict[str, Any]) -> bool:
        day = f["reported_on"]
        return (
            (self.unit is None or f["unit"] == self.unit)
            and (self.status is None or f["status"] == self.status)
            and (self.since is None or day >= self.since.isoformat())
            and (self.until is None or day <= self.until.isoformat())
        )


def findings(
    rows: Rows, f: FindingFilter, units: frozenset[str] | None = None
) -> list[dict[str, Any]]:
    """The findings on record as of the fold's day that pass ``f``, newest first, each with
    ``responsible``: the people its confirmation held responsible (the wrong_information
    violation recorded for it), empty while it is not confirmed, since nobody answers yet."""
    held: dict[str, list[dict[str, Any]]] = {}
    for _, v in rows.scan("violation"):
        if v.get("finding_id"):
            held[v["finding_id"]] = list(v.get("responsible") or [])
    out = [
        {**x, "responsible": held.get(x["finding_id"], [])}
        for _, x in rows.scan("finding")
        if (units is None or x["unit"] in units) and f.keeps(x)
    ]
    return sorted(out, key=lambda x: (x["reported_on"], x["finding_id"]), reverse=True)


@dataclass(frozen=True)
class CaseFilter:
    """督办 cases of one unit (None: every readable unit) in one state (None: any)."""

    unit: str | None = None
    state: str | None = None

    def keeps(self, c: dict[str, Any]) -> bool:
        return (self.unit is None or c["unit"] == self.unit) and (
            self.state is None or c["status"] == self.state
        )


def cases(rows: Rows, f: CaseFilter, units: frozenset[str] | None = None) -> list[dict[str, Any]]:
    """The supervision cases on record as of the fold's day that pass ``f``, newest first."""
    out = [
        c
        for _, c in rows.scan("case")
        if (units is None or c["unit"] in units) and f.keeps(c)
    ]
    return sorted(out, key=lambda c: (c["opened_on"], c["case_id"]), reverse=True)


def alerts(rows: Rows) -> list[dict[str, Any]]:
    """The integrity alerts on record as of the fold's day, in log order (as ``audit alerts``)."""
    return sorted((a for _, a in rows.scan("alert")), key=lambda a: int(a["sequence"]))


__all__ = [
    "KINDS",
    "CaseFilter",
    "FindingFilter",
    "Line",
    "UnitRow",
    "UnitView",
    "ViolationFilter",
    "alerts",
    "cases",
    "findings",
    "homepage_idle_days",
    "is_blank",
    "overview",
    "post_violations",
    "unit_view",
    "veto_lines",
    "violations",
]
