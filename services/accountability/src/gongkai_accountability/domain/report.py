"""Inspectors' views of the folded model: as of a date, and per-unit reports with a score."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from gongkai_accountability.domain.rows import Rows

KINDS = (
    "late_publication",
    "stale_after_supervision",
    "published_without_review",
    "wrong_information",
)
#: Points off 100 per violation; the national checks treat staleness after notice and
#: unreviewed or false content as the gravest.
PENALTY = {"minor": 5, "serious": 15}
STALE_COLUMN_PENALTY = 2


def stale_columns(rows: Rows, as_of: date, unit: str | None = None) -> list[dict[str, Any]]:
    out = []
    for _, col in rows.scan("column"):
        if (unit and col["unit"] != unit) or not col["open"] or col["hidden"]:
            continue
        due = min(e["due_date"] for e in col["open"].values())
        out.append(
            {
                "unit": col["unit"],
                "column": col["column"],
                "due_date": due,
                "days_stale": max(0, (as_of - date.fromisoformat(due)).days),
                "rules": sorted(f"{e['rule_set']}/{e['rule']}" for e in col["open"].values()),
                "case": col["case"],
            }
        )
    return out


def as_of_view(rows: Rows, as_of: date, unit: str | None = None) -> dict[str, Any]:
    cases = [c for _, c in rows.scan("case") if c["status"] != "closed"]
    violations = [v for _, v in rows.scan("violation")]
    if unit:
        cases = [c for c in cases if c["unit"] == unit]
        violations = [v for v in violations if v["unit"] == unit]
    return {
        "as_of": as_of.isoformat(),
        "stale_columns": stale_columns(rows, as_of, unit),
        "open_cases": cases,
        "violations": violations,
    }


@dataclass
class UnitReport:
    unit: str
    stale_columns: int = 0
    stale_days: int = 0
    violations: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    serious: int = 0
    cases_opened: int = 0
    cases_outcomes: dict[str, int] = field(default_factory=dict)
    findings: int = 0
    score: int = 100
    rank: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def unit_reports(rows: Rows, start: date, end: date, unit: str | None = None) -> list[UnitReport]:
    """Per-unit figures for [start, end], ranked county-wide by compliance score."""
    units: dict[str, UnitReport] = {}

    def rep(code: str) -> UnitReport:
        return units.setdefault(code, UnitReport(code))

    for code, u in rows.scan("unit"):
        if u.get("kind") and u.get("kind") != "county_office":
            rep(code)
    for col in stale_columns(rows, end):
        r = rep(col["unit"])
        r.stale_columns += 1
        r.stale_days += col["days_stale"]
    lo, hi = start.isoformat(), end.isoformat()
    for _, v in rows.scan("violation"):
        if lo <= v["occurred_at"][:10] <= hi:
            r = rep(v["unit"])
            r.violations[v["kind"]] += 1
            r.serious += v["severity"] == "serious"
            r.score -= PENALTY[v["severity"]]
    for _, c in rows.scan("case"):
        if lo <= c["opened_on"] <= hi:
            r = rep(c["unit"])
            r.cases_opened += 1
            outcome = c["closed"]["outcome"] if c["closed"] else c["status"]
            if c.get("breach"):
                outcome += "+breach"
            r.cases_outcomes = dict(Counter(r.cases_outcomes) + Counter({outcome: 1}))
    for _, f in rows.scan("finding"):
        if lo <= f["reported_on"] <= hi:
            rep(f["unit"]).findings += 1
    for r in units.values():
        r.score = max(0, r.score - STALE_COLUMN_PENALTY * r.stale_columns)
    ranked = sorted(units.values(), key=lambda r: (-r.score, r.unit))
    for i, r in enumerate(ranked, 1):
        r.rank = i
    return [r for r in ranked if unit is None or r.unit == unit]
