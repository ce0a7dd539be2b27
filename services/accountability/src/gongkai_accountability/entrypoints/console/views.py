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
from typing import Any, Generic

from gongkai.calendar import local_date
from gongkai.rules import load_rule_sets
from gongkai.rules.model import SiteLine
from gongkai_accountability.domain.report import (
    KINDS,
    as_of_view,
    latest_publications,
    unit_reports,
)
from gongkai_accountability.domain.responsibility import Person
from gongkai_accountability.domain.rows import R, Rows, Table
from gongkai_accountability.domain.tables import (
    ALERT,
    CASE,
    COLUMN,
    FINDING,
    UNIT,
    VIOLATION,
    Alert,
    Finding,
    Violation,
)

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
    col = rows.get(COLUMN, f"{unit}--{column}")
    episodes = list(col.open.values()) if col else []
    return bool(episodes) and all(e.rule_kind == "blank" for e in episodes)


def homepage_idle_days(
    rows: Rows,
    unit: str,
    day: date,
    columns: tuple[str, ...],
    latest: dict[tuple[str, str], datetime] | None = None,
) -> int:
    """Days since the unit last put an item online in the homepage columns (as of ``day``);
    never: since the unit joined, as freshness measures the line. ``latest``: what
    ``latest_publications`` answered for the day, when the caller has it."""
    found = latest if latest is not None else latest_publications(rows, day)
    ons = [local_date(on) for (u, c), on in found.items() if u == unit and c in columns]
    last: date | None = max(ons) if ons else None
    if last is None:
        u = rows.get(UNIT, unit)
        joined = u.registered_at if u is not None else None
        last = local_date(datetime.fromisoformat(joined)) if joined else day
    return max(0, (day - last).days)


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
    latest = latest_publications(rows, day)
    for r in unit_reports(rows, start, day):
        if units is not None and r.unit not in units:
            continue
        idle = homepage_idle_days(rows, r.unit, day, lines[IDLE_LINE].columns, latest)
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


#: The overview's sparkline: its size in CSS pixels, and the score range it spans.
SPARK_W, SPARK_H = 96, 22


def sparkline(series: list[int | None]) -> str:
    """The points of an SVG polyline of one unit's scores (0-100, higher up), left to right
    over the period; the points before the unit was known are left out. "" when fewer than
    two points are known (nothing to draw a line through)."""
    known = [(i, s) for i, s in enumerate(series) if s is not None]
    if len(known) < 2:
        return ""
    step = (SPARK_W - 2) / max(1, len(series) - 1)
    return " ".join(
        f"{1 + i * step:.1f},{1 + (100 - s) * (SPARK_H - 2) / 100:.1f}" for i, s in known
    )


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
            view["violations"],
            key=lambda v: (datetime.fromisoformat(v["occurred_at"]), v["violation_id"]),
            reverse=True,
        ),
        report=reps[0].as_dict() if reps else None,
    )


def post_violations(rows: Rows, post_id: str) -> list[Violation]:
    return sorted(
        (v for _, v in rows.scan(VIOLATION) if v.post_id == post_id),
        key=lambda v: (v.occurred, v.violation_id),
    )


@dataclass(frozen=True)
class Filter:
    """What a list keeps: one unit (None: every readable unit), one of the list's codes (None:
    any), and a period of its dates (None: open at that end)."""

    unit: str | None = None
    code: str | None = None
    since: date | None = None
    until: date | None = None
    #: A violation's severity (一般/严重): the notice's single-veto lapses are the serious ones.
    severity: str | None = None


def _field(row: Any, name: str) -> Any:
    # The listed tables' rows have different fields: a finding has no severity.
    return getattr(row, name, None)


@dataclass(frozen=True)
class Listing(Generic[R]):
    """A list of one kind of row folded as of a day (violations, findings, cases): the field a
    filter's code matches, the date its period is of (None: the list has no period), and the
    fields it is ordered by, newest first."""

    table: Table[R]
    code_field: str
    dated: str | None
    order: tuple[str, str]

    def keeps(self, f: Filter, row: R) -> bool:
        day = _field(row, self.dated) if self.dated else ""
        return (
            (f.unit is None or _field(row, "unit") == f.unit)
            and (f.code is None or _field(row, self.code_field) == f.code)
            and (f.since is None or day >= f.since.isoformat())
            and (f.until is None or day <= f.until.isoformat())
            and (f.severity is None or _field(row, "severity") == f.severity)
        )

    def find(self, rows: Rows, f: Filter, units: frozenset[str] | None = None) -> list[R]:
        """The rows on record as of the fold's day that pass ``f``, of ``units`` only (None:
        every unit), newest first."""
        first, then = self.order
        out = [
            r
            for _, r in rows.scan(self.table)
            if (units is None or _field(r, "unit") in units) and self.keeps(f, r)
        ]
        return sorted(out, key=lambda r: (_field(r, first), _field(r, then)), reverse=True)


#: Violations, by the day in China they occurred on (``Violation.day``), newest first.
VIOLATIONS = Listing(VIOLATION, "kind", "day", ("occurred", "violation_id"))
#: 纠错 findings, by the day they were reported.
FINDINGS = Listing(FINDING, "status", "reported_on", ("reported_on", "finding_id"))
#: 督办 cases, by state; a case has no period to filter on.
CASES = Listing(CASE, "status", None, ("opened_on", "case_id"))


@dataclass(frozen=True, slots=True)
class FindingLine:
    """A finding as the list shows it, with the people its confirmation held responsible
    (the wrong_information violation recorded for it): none while it is not confirmed."""

    finding: Finding
    responsible: tuple[Person, ...]


def findings(rows: Rows, f: Filter, units: frozenset[str] | None = None) -> list[FindingLine]:
    """``FINDINGS``, each with who answers for it (``FindingLine``)."""
    held: dict[str, tuple[Person, ...]] = {}
    for _, v in rows.scan(VIOLATION):
        if v.finding_id:
            held[v.finding_id] = v.responsible
    return [
        FindingLine(x, held.get(x.finding_id, ())) for x in FINDINGS.find(rows, f, units)
    ]


def alerts(rows: Rows) -> list[Alert]:
    """The integrity alerts on record as of the fold's day, in log order (as ``audit alerts``)."""
    return sorted((a for _, a in rows.scan(ALERT)), key=lambda a: a.sequence)


__all__ = [
    "CASES",
    "FINDINGS",
    "KINDS",
    "VIOLATIONS",
    "Filter",
    "Line",
    "Listing",
    "UnitRow",
    "UnitView",
    "alerts",
    "findings",
    "homepage_idle_days",
    "is_blank",
    "overview",
    "post_violations",
    "sparkline",
    "unit_view",
    "veto_lines",
]
