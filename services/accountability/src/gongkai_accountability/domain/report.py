"""Inspectors' views of the folded model: as of a date, and per-unit reports with a score."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from gongkai.calendar import local_date
from gongkai.events import Envelope
from gongkai.masking import masked_event
from gongkai_accountability.domain.fold import evolve
from gongkai_accountability.domain.rows import MemoryRows, Rows
from gongkai_accountability.domain.tables import (
    CASE,
    COLUMN,
    FINDING,
    PUBLICATION,
    UNIT,
    VIOLATION,
    Column,
    Episode,
    PastEpisode,
)

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


def stale_in_history(col: Column, as_of: date) -> list[PastEpisode]:
    """The column's ``ColumnWasStale`` episodes (imported history) that cover ``as_of``: stale
    from the day after the due date until, not including, ``until``."""
    day = as_of.isoformat()
    return [e for e in (col.history or {}).values() if e.due_date < day < e.until]


def stale_columns(rows: Rows, as_of: date, unit: str | None = None) -> list[dict[str, Any]]:
    out = []
    for _, col in rows.scan(COLUMN):
        if (unit and col.unit != unit) or col.hidden:
            continue
        history = stale_in_history(col, as_of) if col.history else []
        if not col.open and not history:
            continue
        episodes: list[Episode | PastEpisode] = [*col.open.values(), *history]
        due = min(e.due_date for e in episodes)
        out.append(
            {
                "unit": col.unit,
                "column": col.column,
                "due_date": due,
                "days_stale": max(0, (as_of - date.fromisoformat(due)).days),
                "rules": sorted(f"{e.rule_set}/{e.rule}" for e in episodes),
                "case": col.case,
            }
        )
    return out


def latest_publications(rows: Rows, day: date) -> dict[tuple[str, str], datetime]:
    """Per (unit, column), when the latest item online by the end of ``day`` and not removed
    went online. Rows that keep an index of their publications answer from it
    (``latest_publications``): a county's publications run to the hundreds of thousands."""
    index = getattr(rows, "latest_publications", None)
    if index is not None:
        found: dict[tuple[str, str], datetime] = index(day)
        return found
    out: dict[tuple[str, str], datetime] = {}
    for _, pub in rows.scan(PUBLICATION):
        if pub.removed:
            continue
        on = datetime.fromisoformat(pub.online_at)
        key = (pub.unit, pub.column)
        if local_date(on) <= day and (key not in out or on > out[key]):
            out[key] = on
    return out


def as_of_view(rows: Rows, as_of: date, unit: str | None = None) -> dict[str, Any]:
    # The as-of document (GET /as-of, ``audit as-of --json``) shows cases as stored.
    cases = [CASE.encode_row(c) for _, c in rows.scan(CASE) if c.status != "closed"]
    violations = [VIOLATION.encode_row(v) for _, v in rows.scan(VIOLATION)]
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

    for code, u in rows.scan(UNIT):
        # A unit known only by its imported history (asked of a day before it joined) counts.
        if (u.kind or u.history_from) and u.kind != "county_office":
            rep(code)
    for col in stale_columns(rows, end):
        r = rep(col["unit"])
        r.stale_columns += 1
        r.stale_days += col["days_stale"]
    lo, hi = start.isoformat(), end.isoformat()
    for _, v in rows.scan(VIOLATION):
        if lo <= v.day <= hi:
            r = rep(v.unit)
            r.violations[v.kind] += 1
            r.serious += v.severity == "serious"
            r.score -= PENALTY[v.severity]
    for _, c in rows.scan(CASE):
        if lo <= c.opened_on <= hi:
            r = rep(c.unit)
            r.cases_opened += 1
            outcome = c.closed.outcome if c.closed else c.status
            if c.breach:
                outcome += "+breach"
            r.cases_outcomes = dict(Counter(r.cases_outcomes) + Counter({outcome: 1}))
    for _, f in rows.scan(FINDING):
        if lo <= f.reported_on <= hi:
            rep(f.unit).findings += 1
    for r in units.values():
        r.score = max(0, r.score - STALE_COLUMN_PENALTY * r.stale_columns)
    ranked = sorted(units.values(), key=lambda r: (-r.score, r.unit))
    for i, r in enumerate(ranked, 1):
        r.rank = i
    return [r for r in ranked if unit is None or r.unit == unit]


# ---- the score over time ---------------------------------------------------------------------

#: Up to this many days the score is sampled weekly; beyond, at each month's end (a sparkline
#: of a few years stays a few dozen points).
WEEKLY_UP_TO_DAYS = 366


def score_points(start: date, end: date) -> tuple[date, ...]:
    """The days on which the report samples each unit's score: ``start``, then every seven
    days (or every month's last day, for a period over a year), and ``end``."""
    if end < start:
        raise ValueError("the period ends before it starts")
    points = [start]
    if (end - start).days <= WEEKLY_UP_TO_DAYS:
        d = start + timedelta(days=7)
        while d < end:
            points.append(d)
            d += timedelta(days=7)
    else:
        d = _month_end(start)
        while d < end:
            if d > start:
                points.append(d)
            d = _month_end(d + timedelta(days=1))
    if end > start:
        points.append(end)
    return tuple(points)


def _month_end(d: date) -> date:
    first_next = date(d.year + d.month // 12, d.month % 12 + 1, 1)
    return first_next - timedelta(days=1)


@dataclass(frozen=True)
class ScoreHistory:
    """Each unit's compliance score at each point: what the report's end figure would have
    been had the period ended that day (violations since ``start``, columns stale that day).
    None where the unit was not yet known."""

    start: date
    points: tuple[date, ...]
    scores: dict[str, list[int | None]]


class ScoreTracker:
    """Folds the log as of the period's end and samples the scores as it passes each point.

    Feed every event in log order (``apply``), then ``finish``. A point is sampled when the
    first event recorded after it arrives: services' clocks agree to well under a day, so an
    event recorded earlier but appended later is a rare, same-day exception.
    """

    def __init__(self, start: date, end: date, points: tuple[date, ...] | None = None) -> None:
        self.start, self.end = start, end
        self.points = points if points is not None else score_points(start, end)
        self.rows = MemoryRows()
        self._scores: dict[str, list[int | None]] = {}
        self._next = 0

    def apply(self, env: Envelope[Any], seq: int) -> None:
        day = local_date(env.recorded_at)
        if day > self.end:
            return  # after the period: as ``fold_log(until=end)`` does
        self._pass(day)
        evolve(self.rows, masked_event(env), seq)

    def finish(self) -> ScoreHistory:
        self._pass(None)
        return ScoreHistory(self.start, self.points, self._scores)

    def _pass(self, day: date | None) -> None:
        while self._next < len(self.points) and (day is None or self.points[self._next] < day):
            i, point = self._next, self.points[self._next]
            for r in unit_reports(self.rows, self.start, point):
                series = self._scores.setdefault(r.unit, [None] * len(self.points))
                series[i] = r.score
            self._next += 1
