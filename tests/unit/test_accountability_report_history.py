"""The HTML report's score over time: the sampling points, the scores at each, the SVG;
and the office's rectification by hand as ``decide`` sees it."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from gongkai.events import Actor, EventPayload, new_event
from gongkai.events.contracts.accountability import ViolationRecorded, ViolationRectified
from gongkai.events.contracts.freshness import ColumnRefreshed, ColumnStale
from gongkai.events.contracts.intake import UnitRegistered
from gongkai_accountability.domain.report import ScoreTracker, score_points, unit_reports
from gongkai_accountability.entrypoints import report_html
from gongkai_accountability.entrypoints.commands import REPORT_FIELDS, _flat
from tests.unit.test_accountability_domain import Tape, at, refreshed, stale

D = date.fromisoformat
SYSTEM = Actor(person="accountability", role="system", unit="system")


def test_points_weekly_within_a_year_month_ends_beyond() -> None:
    assert score_points(D("2026-03-01"), D("2026-03-31")) == tuple(
        map(D, ["2026-03-01", "2026-03-08", "2026-03-15", "2026-03-22", "2026-03-29", "2026-03-31"])
    )
    assert score_points(D("2026-03-01"), D("2026-03-01")) == (D("2026-03-01"),)
    assert score_points(D("2026-03-01"), D("2026-03-08")) == (D("2026-03-01"), D("2026-03-08"))
    year = score_points(D("2026-01-01"), D("2026-12-31"))
    assert len(year) == 53 and year[-1] == D("2026-12-31")  # 52 weeks and a day
    two = score_points(D("2025-01-15"), D("2026-12-31"))
    assert two[:3] == (D("2025-01-15"), D("2025-01-31"), D("2025-02-28"))
    assert two[-2:] == (D("2026-11-30"), D("2026-12-31"))
    assert len(two) == 25


class History:
    """Events as the log holds them, in order, each recorded on a given day."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, int]] = []

    def add(self, day: str, payload: EventPayload, agg: str) -> str:
        seq = len(self.events) + 1
        env = new_event(
            payload, aggregate_id=agg, actor=SYSTEM, command_id=f"c{seq}", recorded_at=at(D(day))
        )
        self.events.append((env, seq))
        return env.event_id

    def violation(self, day: str, severity: Any, key: str) -> None:
        self.add(
            day,
            ViolationRecorded(
                kind="published_without_review",
                unit="finance",
                responsible=(),
                evidence=("e",),
                severity=severity,
                occurred_at=at(D(day)),
                summary=key,
            ),
            f"V-{key}",
        )

    def column(self, day: str, refreshed_from: str | None = None) -> str:
        common: dict[str, Any] = dict(
            unit="finance",
            column="leaders_activities",
            rule_set="wenan-2018",
            rule="fortnightly",
            rule_kind="periodic",
            due_date=D("2026-03-19"),
            episode="e1",
        )
        if refreshed_from is None:
            return self.add(day, ColumnStale(overdue_days=1, **common), "c")
        return self.add(
            day,
            ColumnRefreshed(resolution="published", stale_event_id=refreshed_from, **common),
            "c",
        )


def scripted() -> History:
    h = History()
    h.add(
        "2026-03-02",
        UnitRegistered(
            code="finance", name="财政局", kind="department", contact_name="x", contact_mobile="1"
        ),
        "finance",
    )
    h.violation("2026-03-10", "minor", "a")  # -5
    stale_id = h.column("2026-03-20")  # -2 while stale
    h.violation("2026-03-25", "serious", "b")  # -15
    h.column("2026-03-30", refreshed_from=stale_id)  # +2 again
    h.violation("2026-04-02", "serious", "c")  # after the period: not counted
    return h


def test_scores_sampled_at_each_point_from_the_log() -> None:
    tracker = ScoreTracker(D("2026-03-01"), D("2026-03-31"))
    for env, seq in scripted().events:
        tracker.apply(env, seq)
    history = tracker.finish()
    assert history.points[0] == D("2026-03-01") and history.points[-1] == D("2026-03-31")
    # 03-01: not registered yet; 03-08: clean; 03-15: one minor; 03-22: + stale column;
    # 03-29: + a serious one; 03-31: the column refreshed.
    assert history.scores == {"finance": [None, 100, 95, 93, 78, 80]}
    # The last point is the report's own figure for the period.
    [rep] = unit_reports(tracker.rows, D("2026-03-01"), D("2026-03-31"))
    assert rep.score == 80


def test_html_draws_a_sparkline_per_unit() -> None:
    tracker = ScoreTracker(D("2026-03-01"), D("2026-03-31"))
    for env, seq in scripted().events:
        tracker.apply(env, seq)
    history = tracker.finish()
    reps = [
        _flat(r.as_dict()) for r in unit_reports(tracker.rows, D("2026-03-01"), D("2026-03-31"))
    ]
    page = report_html.render(D("2026-03-01"), D("2026-03-31"), reps, REPORT_FIELDS, history)
    assert "<script" not in page and "http" not in page  # self-contained
    [svg] = re.findall(r'<svg class="spark".*?</svg>', page)
    assert 'data-scores="2026-03-01:- 2026-03-08:100 2026-03-15:95 2026-03-22:93 ' in svg
    [line] = re.findall(r'<polyline points="([^"]+)"', svg)
    pts = [tuple(map(float, p.split(","))) for p in line.split()]
    # Five known points (the first is before the unit joined), left to right, 100 at the top.
    assert len(pts) == 5
    assert [x for x, _ in pts] == sorted(x for x, _ in pts)
    # One scale for all units, from the lowest score drawn (78) rounded down to 70, to 100.
    assert report_html.scale_floor(history) == 70
    assert pts[0] == (report_html.x_of(1, 6), report_html.y_of(100, 70))
    assert pts[-1] == (report_html.x_of(5, 6), report_html.y_of(80, 70))
    assert pts[0][1] == report_html.PAD  # 100 at the top
    assert report_html.y_of(70, 70) == report_html.HEIGHT - report_html.PAD  # 70 at the bottom
    assert pts[3][1] > pts[-1][1]  # 78 is drawn below 80


def test_a_gap_breaks_the_line() -> None:
    points = tuple(map(D, ["2026-03-01", "2026-03-08", "2026-03-15", "2026-03-22"]))
    svg = report_html.sparkline(points, [100, None, 90, 85], "x")
    assert len(re.findall("<polyline", svg)) == 1  # a lone first point draws no segment
    assert 'data-scores="2026-03-01:100 2026-03-08:- 2026-03-15:90 2026-03-22:85"' in svg


# ---- a violation rectified by hand, as decide sees it ----------------------------------------


def test_decide_does_not_rectify_twice_after_the_office() -> None:
    t = Tape()
    t.directory()
    s1 = stale(t)
    t.today = D("2026-03-04")
    [notice] = t.settle()
    t.today = D("2026-03-12")
    [breach] = t.settle()
    # The office rectifies by hand (a different command id than the automatic one would be,
    # as after a lost dedup window): the refresh that follows closes the case, nothing more.
    t.fact(
        ViolationRectified(
            violation_id=breach.aggregate_id,
            unit="finance",
            how="by_office",
            rectified_at=datetime.fromisoformat("2026-03-12T10:00:00+08:00"),
            note="书面说明",
        ),
        breach.aggregate_id,
    )
    refreshed(t, s1)
    [closed] = t.settle()
    assert closed.type == "SupervisionClosed"
    assert t.decide() == []
    assert notice.type == "SupervisionIssued"
