"""freshness's domain without NATS: every rule kind, the transitions, keep/hide, the reports.

A ``County`` folds events into a register the way the service does (the adapter holding the
pure register), and ``evaluate`` records the transitions a tick would append (folding them back
in, as the service does on each ack). The reports are the domain's, read off the register.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from gongkai.calendar import SHANGHAI, WorkingCalendar
from gongkai.events import Actor, Envelope, EventPayload, new_event
from gongkai.events.contracts.freshness import (
    ColumnDueSoon,
    ColumnHidden,
    ColumnKept,
    ColumnRefreshed,
    ColumnStale,
)
from gongkai.events.contracts.intake import (
    LeadershipDutiesChanged,
    PostPublished,
    PostRevised,
    PostWithdrawn,
    PublicationRemoved,
    UnitRegistered,
)
from gongkai.refusal import Refusal
from gongkai.rules import load_rule_sets
from gongkai_freshness.adapters.config import with_warning
from gongkai_freshness.adapters.log import FRESHNESS_ACTOR
from gongkai_freshness.adapters.register import ColumnRegister
from gongkai_freshness.domain.report import (
    ColumnStatus,
    attachment2,
    column_status,
    site_risk,
    status_table,
)
from gongkai_freshness.domain.visibility import (
    SetVisibility,
    acting_role,
    decide_visibility,
)
from gongkai_freshness.entrypoints.http import attachment2_html, status_json
from tests.builders import post_submitted

D = date.fromisoformat
MAKER = Actor(person="p-maker", role="maker", unit="finance")
LEADER = Actor(person="p-leader", role="leader", unit="finance")
WENAN, NATIONAL = "wenan-2018", "national-2019"
DIGEST = "a" * 64
JOINED = date(2026, 1, 5)


@pytest.fixture(scope="module")
def calendar() -> WorkingCalendar:
    return WorkingCalendar.default()


def shanghai(d: date, hour: int = 10) -> datetime:
    return datetime.combine(d, time(hour), SHANGHAI).astimezone(UTC)


class County:
    """Events in, transitions out: the service's loop without the network."""

    def __init__(
        self,
        calendar: WorkingCalendar,
        rule_sets: tuple[str, ...] = (WENAN, NATIONAL),
        warn: int | None = None,
    ) -> None:
        self.reg = ColumnRegister(with_warning(load_rule_sets(rule_sets), warn), calendar)
        self.seq = 0
        self.log: list[Envelope[Any]] = []

    def fold(
        self, payload: EventPayload, agg: str, on: date, actor: Actor = MAKER
    ) -> Envelope[Any]:
        self.seq += 1
        env = new_event(
            payload,
            aggregate_id=agg,
            actor=actor,
            command_id=f"cmd-{self.seq}",
            recorded_at=shanghai(on),
        )
        self.log.append(env)
        self.reg.fold(env, self.seq)
        return env

    def unit(self, code: str, kind: str = "department", on: date = JOINED) -> None:
        self.fold(
            UnitRegistered(
                code=code, name=code.title(), kind=kind, contact_name="Li", contact_mobile="1" * 11
            ),
            code,
            on,
        )

    def submit(self, post: str, unit: str, column: str, info: date, on: date | None = None) -> None:
        self.fold(
            post_submitted(unit=unit, column=column, information_date=info, content_digest=DIGEST),
            post,
            on or info,
        )

    def revise(self, post: str, unit: str, info: date, on: date, version: int = 2) -> None:
        self.fold(
            PostRevised(
                unit=unit,
                title="t2",
                body="b2",
                information_date=info,
                content_version=version,
                content_digest="b" * 64,
            ),
            post,
            on,
        )

    def withdraw(self, post: str, unit: str, on: date) -> None:
        self.fold(PostWithdrawn(unit=unit, reason="not for disclosure"), post, on)

    def publish(self, pub: str, unit: str, column: str, on: date, post: str | None = None) -> None:
        self.fold(
            PostPublished(
                publication_id=pub,
                post_id=post,
                unit=unit,
                column=column,
                url=f"https://example.gov.cn/{pub}",
                online_at=shanghai(on),
                content_digest=DIGEST,
            ),
            pub,
            on,
        )

    def remove(self, pub: str, unit: str, column: str, on: date) -> None:
        self.fold(
            PublicationRemoved(
                publication_id=pub, unit=unit, column=column, removed_at=shanghai(on), reason="x"
            ),
            pub,
            on,
        )

    def leaders_changed(self, unit: str, on: date) -> None:
        self.fold(LeadershipDutiesChanged(unit=unit, changed_on=on, summary="new deputy"), unit, on)

    def hide(self, unit: str, column: str, on: date) -> None:
        self.fold(
            ColumnHidden(unit=unit, column=column, reason="not our function"),
            f"{unit}--{column}",
            on,
            LEADER,
        )

    def keep(self, unit: str, column: str, on: date) -> None:
        self.fold(
            ColumnKept(unit=unit, column=column, reason="we do publish this"),
            f"{unit}--{column}",
            on,
            LEADER,
        )

    def evaluate(self, as_of: date) -> list[EventPayload]:
        """Record what a tick on ``as_of`` would record; returns the payloads."""
        out = []
        for t in self.reg.decide_all(as_of):
            self.seq += 1
            env = new_event(
                t.payload,
                aggregate_id=t.aggregate_id,
                actor=FRESHNESS_ACTOR,
                command_id=t.command_id,
                recorded_at=shanghai(as_of, 1),
            )
            self.log.append(env)
            self.reg.fold(env, self.seq)
            out.append(t.payload)
        return out

    def evaluate_days(self, start: date, end: date) -> list[EventPayload]:
        out: list[EventPayload] = []
        d = start
        while d <= end:
            out.extend(self.evaluate(d))
            d += timedelta(days=1)
        return out

    def status(self, unit: str, column: str, rule_set: str, as_of: date) -> ColumnStatus:
        state = self.reg.state
        return column_status(state, state.column(unit, column), self._rs(rule_set), as_of)

    def _rs(self, rule_set: str) -> Any:
        return next(rs for rs in self.reg.rule_sets if rs.id == rule_set)


def only(
    events: list[EventPayload], column: str, rule_set: str | None = None
) -> list[EventPayload]:
    return [
        e
        for e in events
        if getattr(e, "column", None) == column
        and (rule_set is None or getattr(e, "rule_set", None) == rule_set)
    ]


def kinds(events: list[EventPayload]) -> list[tuple[str, str, str]]:
    return [(type(e).__name__, e.rule_set, e.rule) for e in events]  # type: ignore[attr-defined]


# ---- the rule kinds, table-driven ---------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    setup: Callable[[County], None]
    column: str
    rule_set: str
    as_of: date
    state: str
    due: date | None
    rule: str | None = None
    provisional: bool = False
    kind: str = "department"


def _pub_on(column: str, day: str) -> Callable[[County], None]:
    return lambda c: c.publish("old", "u", column, D(day))


def _normative(c: County) -> None:
    c.publish("base", "u", "normative_documents", D("2026-01-20"))
    c.submit("P1", "u", "normative_documents", D("2026-02-10"))


def _service_guide(c: County) -> None:
    c.publish("base", "u", "service_guides", D("2026-09-01"))
    c.submit("G1", "u", "service_guides", D("2026-09-30"))


def _enforcement_2025(c: County) -> None:
    c.publish("base", "u", "administrative_licensing", D("2025-09-01"))
    c.submit("L1", "u", "administrative_licensing", D("2025-09-26"))


def _penalty_missed_but_fresh(c: County) -> None:
    # The column had an item last week (fresh under "at least once a year"), but the penalty
    # decided on 2026-03-02 is not online ten working days later: missed all the same.
    c.publish("recent", "u", "administrative_penalties", D("2026-03-10"))
    c.submit("X1", "u", "administrative_penalties", D("2026-03-02"))


def _leaders(c: County) -> None:
    c.publish("base", "u", "leaders_duties", D("2026-01-10"))
    c.leaders_changed("u", D("2026-03-02"))


def _leaders_updated(c: County) -> None:
    _leaders(c)
    c.publish("upd", "u", "leaders_duties", D("2026-03-12"))


def _report(day: str) -> Callable[[County], None]:
    return lambda c: c.publish("report", "u", "annual_reports", D(day))


def _december_post(c: County) -> None:
    c.publish("base", "u", "normative_documents", D("2026-11-02"))
    c.submit("P9", "u", "normative_documents", D("2026-12-15"))


def _hidden(c: County) -> None:
    c.hide("u", "statistics", D("2026-01-06"))


def _hidden_and_kept(c: County) -> None:
    c.hide("u", "statistics", D("2026-01-06"))
    c.keep("u", "statistics", D("2026-02-01"))


def _emptied(c: County) -> None:
    c.publish("s1", "u", "statistics", D("2026-01-10"))
    c.remove("s1", "u", "statistics", D("2026-02-01"))


CASES = [
    # periodic
    Case(
        "fortnightly fresh",
        _pub_on("leaders_activities", "2026-03-02"),
        "leaders_activities",
        WENAN,
        D("2026-03-10"),
        "fresh",
        D("2026-03-16"),
        "fortnightly",
    ),
    Case(
        "fortnightly due soon",
        _pub_on("leaders_activities", "2026-03-02"),
        "leaders_activities",
        WENAN,
        D("2026-03-11"),
        "due_soon",
        D("2026-03-16"),
        "fortnightly",
    ),
    Case(
        "fortnightly last day",
        _pub_on("leaders_activities", "2026-03-02"),
        "leaders_activities",
        WENAN,
        D("2026-03-16"),
        "due_soon",
        D("2026-03-16"),
        "fortnightly",
    ),
    Case(
        "fortnightly stale",
        _pub_on("leaders_activities", "2026-03-02"),
        "leaders_activities",
        WENAN,
        D("2026-03-17"),
        "stale",
        D("2026-03-16"),
        "fortnightly",
    ),
    Case(
        "national news 2 weeks",
        _pub_on("work_arrangements", "2026-03-02"),
        "work_arrangements",
        NATIONAL,
        D("2026-03-17"),
        "stale",
        D("2026-03-16"),
        "news-2w",
    ),
    Case(
        "half-yearly from 31 August ends in February",
        _pub_on("government_rules", "2025-08-31"),
        "government_rules",
        WENAN,
        D("2026-03-01"),
        "stale",
        D("2026-02-28"),
        "half-yearly",
    ),
    Case(
        "yearly",
        _pub_on("chronicle", "2025-03-01"),
        "chronicle",
        WENAN,
        D("2026-02-20"),
        "fresh",
        D("2026-03-01"),
        "yearly",
    ),
    # triggered
    Case(
        "normative document: 20 working days (anchors example)",
        _normative,
        "normative_documents",
        WENAN,
        D("2026-03-16"),
        "due_soon",
        D("2026-03-16"),
        "within-20wd",
    ),
    Case(
        "normative document: missed the next day",
        _normative,
        "normative_documents",
        WENAN,
        D("2026-03-17"),
        "stale",
        D("2026-03-16"),
        "within-20wd",
    ),
    Case(
        "service guide: 3 working days end on a make-up Saturday",
        _service_guide,
        "service_guides",
        WENAN,
        D("2026-10-09"),
        "due_soon",
        D("2026-10-10"),
        "within-3wd",
    ),
    Case(
        "service guide: stale after the make-up Saturday",
        _service_guide,
        "service_guides",
        WENAN,
        D("2026-10-11"),
        "stale",
        D("2026-10-10"),
        "within-3wd",
    ),
    Case(
        "enforcement: 2025 make-up days counted",
        _enforcement_2025,
        "administrative_licensing",
        WENAN,
        D("2025-10-17"),
        "stale",
        D("2025-10-16"),
        "within-10wd",
    ),
    Case(
        "triggered deadline missed while the column is otherwise fresh",
        _penalty_missed_but_fresh,
        "administrative_penalties",
        WENAN,
        D("2026-03-17"),
        "stale",
        D("2026-03-16"),
        "within-10wd",
    ),
    Case(
        "a due date in a year without an official calendar is provisional",
        _december_post,
        "normative_documents",
        WENAN,
        D("2027-01-13"),
        "stale",
        D("2027-01-12"),
        "within-20wd",
        provisional=True,
    ),
    # leadership change
    Case(
        "leaders' duties changed: 10 working days",
        _leaders,
        "leaders_duties",
        WENAN,
        D("2026-03-17"),
        "stale",
        D("2026-03-16"),
        "leadership-10wd",
    ),
    Case(
        "leaders' duties updated in time",
        _leaders_updated,
        "leaders_duties",
        WENAN,
        D("2026-03-17"),
        "fresh",
        D("2027-03-12"),
        "yearly",
    ),
    # dated: the annual report
    Case(
        "annual report (wenan): end of February",
        _report("2025-06-01"),
        "annual_reports",
        WENAN,
        D("2026-03-01"),
        "stale",
        D("2026-02-28"),
        "annual-report",
    ),
    Case(
        "annual report (national, department): 31 January",
        _report("2025-06-01"),
        "annual_reports",
        NATIONAL,
        D("2026-02-01"),
        "stale",
        D("2026-01-31"),
        "annual-report",
    ),
    Case(
        "annual report (national, county government): 31 March",
        _report("2025-06-01"),
        "annual_reports",
        NATIONAL,
        D("2026-02-01"),
        "fresh",
        D("2026-03-31"),
        "annual-report",
        kind="county_office",
    ),
    Case(
        "annual report published in February: national late, wenan in time",
        _report("2026-02-15"),
        "annual_reports",
        WENAN,
        D("2026-03-01"),
        "fresh",
        D("2027-02-15"),
        "yearly",
    ),
    # blank and hidden
    Case(
        "a kept column with no item is stale at once",
        lambda c: None,
        "statistics",
        WENAN,
        D("2026-01-05"),
        "blank",
        D("2026-01-05"),
        "blank",
    ),
    Case(
        "a hidden column is exempt", _hidden, "statistics", WENAN, D("2026-06-01"), "hidden", None
    ),
    Case(
        "hidden then kept again: blank since kept",
        _hidden_and_kept,
        "statistics",
        WENAN,
        D("2026-02-02"),
        "blank",
        D("2026-02-01"),
        "blank",
    ),
    Case(
        "removing every item hides the column",
        _emptied,
        "statistics",
        WENAN,
        D("2026-06-01"),
        "hidden",
        None,
    ),
    Case(
        "housing security starts hidden",
        lambda c: None,
        "housing_security",
        WENAN,
        D("2026-06-01"),
        "hidden",
        None,
    ),
    Case(
        "major projects do not exist for committees",
        lambda c: None,
        "major_projects",
        WENAN,
        D("2026-06-01"),
        "hidden",
        None,
        kind="committee",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule_kinds(case: Case, calendar: WorkingCalendar) -> None:
    registered = D("2025-01-02") if case.as_of.year == 2025 else D("2026-01-05")
    c = County(calendar)
    c.unit("u", case.kind, registered)
    case.setup(c)
    st = c.status("u", case.column, case.rule_set, case.as_of)
    assert (st.state, st.due_date, st.rule, st.provisional) == (
        case.state,
        case.due,
        case.rule,
        case.provisional,
    )


def test_hidden_columns_say_why(calendar: WorkingCalendar) -> None:
    c = County(calendar)
    c.unit("u", "committee")
    _emptied(c)
    assert c.status("u", "statistics", WENAN, D("2026-06-01")).hidden_by == "emptied"
    c.hide("u", "statistics", D("2026-03-01"))  # the unit's own tick says more than emptiness
    assert c.status("u", "statistics", WENAN, D("2026-06-01")).hidden_by == "unit"
    c.hide("u", "chronicle", D("2026-01-06"))
    assert c.status("u", "chronicle", WENAN, D("2026-06-01")).hidden_by == "unit"
    assert c.status("u", "housing_security", WENAN, D("2026-06-01")).hidden_by == "not_applicable"
    c.unit("h", "department")
    assert c.status("h", "housing_security", WENAN, D("2026-06-01")).hidden_by == "default"


# ---- transitions: recorded once ------------------------------------------------------------


def test_due_soon_then_stale_then_refreshed_each_once(calendar: WorkingCalendar) -> None:
    c = County(calendar, (WENAN,))
    c.unit("u")
    c.publish("a1", "u", "leaders_activities", D("2026-03-02"))
    assert only(c.evaluate_days(D("2026-03-02"), D("2026-03-10")), "leaders_activities") == []
    soon = only(c.evaluate_days(D("2026-03-11"), D("2026-03-16")), "leaders_activities")
    assert [type(e) for e in soon] == [ColumnDueSoon]
    assert isinstance(soon[0], ColumnDueSoon)
    assert (soon[0].due_date, soon[0].working_days_left) == (D("2026-03-16"), 3)
    stale = only(c.evaluate_days(D("2026-03-17"), D("2026-03-20")), "leaders_activities")
    assert [type(e) for e in stale] == [ColumnStale]
    assert isinstance(stale[0], ColumnStale)
    assert (stale[0].due_date, stale[0].overdue_days, stale[0].rule_kind) == (
        D("2026-03-16"),
        1,
        "periodic",
    )
    c.publish("a2", "u", "leaders_activities", D("2026-03-23"))
    fixed = only(c.evaluate(D("2026-03-23")), "leaders_activities")
    assert [type(e) for e in fixed] == [ColumnRefreshed]
    assert isinstance(fixed[0], ColumnRefreshed)
    assert (fixed[0].episode, fixed[0].resolution, fixed[0].met_on, fixed[0].late_days) == (
        stale[0].episode,
        "published",
        D("2026-03-23"),
        7,
    )
    assert only(c.evaluate(D("2026-03-23")), "leaders_activities") == []
    assert c.status("u", "leaders_activities", WENAN, D("2026-03-23")).due_date == D("2026-04-06")


def test_a_late_publication_nobody_saw_stale_is_recorded_as_missed(
    calendar: WorkingCalendar,
) -> None:
    c = County(calendar, (WENAN,))
    c.unit("u")
    c.publish("base", "u", "administrative_penalties", D("2026-02-01"))
    c.submit("X1", "u", "administrative_penalties", D("2026-03-02"))
    # No evaluation ran between the due date (03-16) and the publication (03-20).
    c.publish("x1", "u", "administrative_penalties", D("2026-03-20"), post="X1")
    events = only(c.evaluate(D("2026-03-20")), "administrative_penalties")
    assert kinds(events) == [
        ("ColumnStale", WENAN, "within-10wd"),
        ("ColumnRefreshed", WENAN, "within-10wd"),
    ]
    stale, refreshed = events
    assert isinstance(stale, ColumnStale) and isinstance(refreshed, ColumnRefreshed)
    assert (stale.post_id, stale.met_on, stale.overdue_days) == ("X1", D("2026-03-20"), 4)
    assert (refreshed.late_days, refreshed.met_on) == (4, D("2026-03-20"))
    stale_env = next(e for e in c.log if e.payload == stale)
    assert refreshed.stale_event_id == stale_env.event_id
    # The obligation is settled and forgotten; nothing more is ever recorded for it.
    assert c.reg.state.column("u", "administrative_penalties").triggers == {}
    assert only(c.evaluate_days(D("2026-03-21"), D("2026-04-10")), "administrative_penalties") == []


def test_a_publication_in_time_records_nothing_and_is_forgotten(calendar: WorkingCalendar) -> None:
    c = County(calendar, (WENAN,))
    c.unit("u")
    c.publish("base", "u", "administrative_penalties", D("2026-02-01"))
    c.submit("X1", "u", "administrative_penalties", D("2026-03-02"))
    c.publish("x1", "u", "administrative_penalties", D("2026-03-05"), post="X1")
    assert c.reg.state.column("u", "administrative_penalties").triggers == {}
    assert only(c.evaluate_days(D("2026-03-05"), D("2026-03-31")), "administrative_penalties") == []


def test_hidden_closes_stale_episodes_and_keeping_again_opens_new_ones(
    calendar: WorkingCalendar,
) -> None:
    c = County(calendar, (WENAN,))
    c.unit("u")
    first = only(c.evaluate(D("2026-01-05")), "statistics")
    assert kinds(first) == [("ColumnStale", WENAN, "blank")]
    c.hide("u", "statistics", D("2026-01-06"))
    closed = only(c.evaluate(D("2026-01-06")), "statistics")
    assert kinds(closed) == [("ColumnRefreshed", WENAN, "blank")]
    assert isinstance(closed[0], ColumnRefreshed) and closed[0].resolution == "hidden"
    assert only(c.evaluate_days(D("2026-01-07"), D("2026-01-31")), "statistics") == []
    c.keep("u", "statistics", D("2026-02-02"))
    again = only(c.evaluate(D("2026-02-02")), "statistics")
    assert kinds(again) == [("ColumnStale", WENAN, "blank")]
    assert isinstance(again[0], ColumnStale) and isinstance(first[0], ColumnStale)
    assert again[0].episode != first[0].episode
    assert again[0].due_date == D("2026-02-02")


def test_withdrawn_post_closes_its_stale_episode(calendar: WorkingCalendar) -> None:
    c = County(calendar, (WENAN,))
    c.unit("u")
    c.publish("base", "u", "special_funds", D("2026-02-01"))
    c.submit("F1", "u", "special_funds", D("2026-03-02"))
    assert kinds(only(c.evaluate(D("2026-03-17")), "special_funds")) == [
        ("ColumnStale", WENAN, "within-10wd")
    ]
    c.withdraw("F1", "u", D("2026-03-18"))
    done = only(c.evaluate(D("2026-03-18")), "special_funds")
    assert isinstance(done[0], ColumnRefreshed) and done[0].resolution == "withdrawn"
    assert c.reg.state.column("u", "special_funds").triggers == {}


def test_a_revision_after_publication_starts_a_new_deadline(calendar: WorkingCalendar) -> None:
    c = County(calendar, (WENAN,))
    c.unit("u")
    c.publish("base", "u", "service_guides", D("2026-03-01"))
    c.submit("G1", "u", "service_guides", D("2026-03-02"))
    c.revise("G1", "u", D("2026-01-02"), D("2026-03-03"))  # an earlier date: deadline moves up
    # 1-3 January 2026 are the New Year holiday, Sunday the 4th a make-up working day.
    assert c.status("u", "service_guides", WENAN, D("2026-03-03")).due_date == D("2026-01-06")
    c.publish("g1", "u", "service_guides", D("2026-03-04"), post="G1")
    c.evaluate(D("2026-03-04"))
    c.revise("G1", "u", D("2026-04-01"), D("2026-04-01"), version=3)  # the guide changed
    # Qingming: 4-6 April 2026 are off, so the third working day is Tuesday the 7th.
    st = c.status("u", "service_guides", WENAN, D("2026-04-08"))
    assert (st.state, st.due_date, st.rule) == ("stale", D("2026-04-07"), "within-3wd")


def test_annual_report_under_both_rule_sets(calendar: WorkingCalendar) -> None:
    c = County(calendar)
    c.unit("dept", "department", D("2026-01-02"))
    c.unit("gov", "county_office", D("2026-01-02"))
    c.publish("r1", "dept", "annual_reports", D("2026-02-15"))
    c.publish("r2", "gov", "annual_reports", D("2026-03-20"))
    events = only(c.evaluate(D("2026-04-01")), "annual_reports")
    dated = [(type(e).__name__, e.unit, e.rule_set) for e in events if e.rule == "annual-report"]  # type: ignore[attr-defined]
    # Department: late under national (31 January), in time under wenan (end of February).
    # County government: late under wenan, in time under national (31 March).
    assert sorted(dated) == [
        ("ColumnRefreshed", "dept", NATIONAL),
        ("ColumnRefreshed", "gov", WENAN),
        ("ColumnStale", "dept", NATIONAL),
        ("ColumnStale", "gov", WENAN),
    ]
    # The next year's deadline runs from 1 January; last year's is settled.
    st = c.status("gov", "annual_reports", NATIONAL, D("2027-01-05"))
    assert [(o.rule, o.due_date) for o in st.obligations if o.rule == "annual-report"] == [
        ("annual-report", D("2027-03-31"))
    ]


def test_annual_report_still_missing_at_new_year_stays_stale_until_published(
    calendar: WorkingCalendar,
) -> None:
    c = County(calendar, (WENAN,))
    c.unit("u", "department", D("2026-01-02"))
    c.publish("old", "u", "annual_reports", D("2025-12-01"))
    assert kinds(
        [e for e in c.evaluate(D("2026-03-01")) if getattr(e, "rule", "") == "annual-report"]
    ) == [("ColumnStale", WENAN, "annual-report")]
    assert [
        e for e in c.evaluate(D("2027-01-04")) if getattr(e, "rule", "") == "annual-report"
    ] == []
    c.publish("new", "u", "annual_reports", D("2027-01-10"))
    closed = [e for e in c.evaluate(D("2027-01-10")) if getattr(e, "rule", "") == "annual-report"]
    assert len(closed) == 1 and isinstance(closed[0], ColumnRefreshed)
    assert (closed[0].due_date, closed[0].late_days) == (D("2026-02-28"), 316)


def test_deadlines_before_the_unit_joined_are_not_its_lapses(calendar: WorkingCalendar) -> None:
    c = County(calendar, (WENAN,))
    c.unit("u", "department", D("2026-04-01"))
    c.publish("base", "u", "special_funds", D("2026-03-30"))
    c.submit("old", "u", "special_funds", D("2026-01-05"), on=D("2026-04-01"))
    events = c.evaluate(D("2026-04-01"))
    assert [e for e in events if getattr(e, "rule", "") in ("within-10wd", "annual-report")] == []


def test_provisional_due_dates_are_marked_in_the_event(calendar: WorkingCalendar) -> None:
    c = County(calendar, (WENAN,))
    c.unit("u")
    _december_post(c)
    events = only(c.evaluate(D("2027-01-13")), "normative_documents")
    stale = [e for e in events if isinstance(e, ColumnStale) and e.rule == "within-20wd"]
    assert len(stale) == 1 and stale[0].provisional and stale[0].due_date == D("2027-01-12")


def test_a_column_emptied_while_stale_is_closed_as_hidden(calendar: WorkingCalendar) -> None:
    c = County(calendar, (WENAN,))
    c.unit("u")
    c.publish("w1", "u", "work_arrangements", D("2026-03-02"))
    assert kinds(only(c.evaluate(D("2026-03-17")), "work_arrangements")) == [
        ("ColumnStale", WENAN, "fortnightly")
    ]
    c.remove("w1", "u", "work_arrangements", D("2026-03-18"))
    closed = only(c.evaluate(D("2026-03-18")), "work_arrangements")
    assert isinstance(closed[0], ColumnRefreshed) and closed[0].resolution == "hidden"
    # A new item shows the column again, fresh.
    c.publish("w2", "u", "work_arrangements", D("2026-03-20"))
    assert only(c.evaluate(D("2026-03-20")), "work_arrangements") == []
    assert c.status("u", "work_arrangements", WENAN, D("2026-03-20")).state == "fresh"


def test_warning_window_is_configurable(calendar: WorkingCalendar) -> None:
    c = County(calendar, (WENAN,), warn=0)
    c.unit("u")
    c.publish("a1", "u", "leaders_activities", D("2026-03-02"))
    assert c.status("u", "leaders_activities", WENAN, D("2026-03-13")).state == "fresh"
    assert c.status("u", "leaders_activities", WENAN, D("2026-03-16")).state == "due_soon"


def _a_quarter(calendar: WorkingCalendar) -> tuple[County, list[EventPayload]]:
    """A county with a department and a township, normative documents, leaders' activities, a
    publication and a hidden column, evaluated day by day over a quarter: the county and
    what its evaluations recorded."""
    c = County(calendar)
    c.unit("u")
    c.unit("t", "township")
    _normative(c)
    _leaders(c)
    c.publish("n1", "t", "leaders_activities", D("2026-02-01"))
    c.hide("t", "statistics", D("2026-01-10"))
    return c, c.evaluate_days(D("2026-01-05"), D("2026-04-01"))


def test_replaying_the_same_events_gives_the_same_table_and_records_nothing(
    calendar: WorkingCalendar,
) -> None:
    c, recorded = _a_quarter(calendar)
    assert recorded
    replay = County(calendar)
    for i, env in enumerate(c.log, 1):
        replay.reg.fold(env, i)
    as_of = D("2026-04-01")
    assert replay.reg.decide_all(as_of) == []
    assert status_table(replay.reg.state, as_of) == status_table(c.reg.state, as_of)


def test_the_routes_status_json_is_asdict_without_the_copies(calendar: WorkingCalendar) -> None:
    c, _ = _a_quarter(calendar)
    rows = status_table(c.reg.state, D("2026-04-01"))
    assert any(r.obligations for r in rows) and any(r.hidden_by for r in rows)
    assert [status_json(r) for r in rows] == [asdict(r) for r in rows]


# ---- keep / hide ------------------------------------------------------------------------------


def test_visibility_decisions(calendar: WorkingCalendar) -> None:
    c = County(calendar)
    c.unit("u", "township")
    reg = c.reg.state
    unit = reg.units["u"]

    def decide(column: str, keep: bool, reason: str = "why") -> list[EventPayload]:
        # The register as it stands now: a state read earlier stays as it was.
        col = c.reg.state.column("u", column)
        return decide_visibility(
            SetVisibility("u", column, keep, reason),
            unit,
            col.decision.keep if col.decision is not None else None,
            reg.catalog,
        )

    hidden = decide("statistics", False)
    assert hidden == [ColumnHidden(unit="u", column="statistics", reason="why")]
    c.hide("u", "statistics", D("2026-01-06"))
    assert decide("statistics", False) == []  # already ticked ×: nothing to record
    assert decide("statistics", True) == [ColumnKept(unit="u", column="statistics", reason="why")]
    # Ticking ✓ where the catalog already keeps it records who confirmed it.
    assert len(decide("chronicle", True)) == 1

    refusals = [
        (
            lambda: decide_visibility(
                SetVisibility("nope", "x", True, "r"), None, None, reg.catalog
            ),
            404,
            "code",
        ),
        (lambda: decide("no_such_column", True), 404, "column"),
        (lambda: decide("public_resources", True), 422, "column"),  # departments only
        (lambda: decide("chronicle", False, "  "), 422, "reason"),
    ]
    for call, status, field in refusals:
        with pytest.raises(Refusal) as err:
            call()
        assert (err.value.status, err.value.field) == (status, field)
    assert acting_role({"maker"}, False) is None
    assert acting_role({"maker", "staff"}, False) == "staff"
    assert acting_role({"leader", "staff"}, True) == "leader"
    assert acting_role(set(), True) == "office"


async def test_a_tick_through_the_runner_is_decided_on_the_column_log(
    calendar: WorkingCalendar,
) -> None:
    """Given a column never ticked, when the unit ticks ×, then ColumnHidden; the same tick
    again (a new command) records nothing, ✓ then records ColumnKept after it."""
    from gongkai.decider import handle
    from gongkai.memlog import MemoryEventLog
    from gongkai_freshness.domain.visibility import VISIBILITY, Tick

    c = County(calendar)
    c.unit("u", "township")
    log = MemoryEventLog()
    leader = Actor(person="u-leader", role="leader", unit="u")

    async def tick(keep: bool, command_id: str) -> tuple[str, ...]:
        cmd = SetVisibility("u", "statistics", keep, "本单位无此项")
        h = await handle(
            log,
            VISIBILITY,
            "u--statistics",
            Tick(cmd, c.reg.state.units["u"], c.reg.state.catalog),
            command_id=command_id,
            actor=leader,
            now=lambda: datetime(2026, 3, 2, tzinfo=UTC),
        )
        return tuple(e.type for e in h.events)

    assert await tick(False, "t1") == ("ColumnHidden",)
    assert await tick(False, "t2") == ()
    assert await tick(True, "t3") == ("ColumnKept",)
    assert await log.last_sequence() == 2


# ---- reports --------------------------------------------------------------------------------


def test_site_risk_lines_warn_before_the_veto(calendar: WorkingCalendar) -> None:
    c = County(calendar, (NATIONAL,))
    national = c._rs(NATIONAL)
    c.unit("u")
    as_of = D("2026-01-05")
    risk = site_risk(c.reg.state, national, as_of)
    blank = next(line for line in risk.lines if line.id == "blank-columns")
    assert (blank.value, blank.level) == (29, "veto")  # a new unit: every kept column blank
    for i, code in enumerate(c.reg.state.catalog.columns):
        c.publish(f"p{i}", "u", code, D("2026-01-05"))
    c.hide("u", "housing_security", D("2026-01-05"))
    fresh = site_risk(c.reg.state, national, as_of)
    assert fresh.level == "ok"
    # Three news/notice columns idle past their line: early warning; five: veto.
    later = D("2026-01-05") + timedelta(days=15)
    risk = site_risk(c.reg.state, national, later)
    stale = next(line for line in risk.lines if line.id == "stale-columns")
    assert (stale.value, stale.level) == (2, "ok")  # the two news columns
    idle = next(line for line in risk.lines if line.id == "homepage-idle")
    assert (idle.value, idle.level) == (15, "veto")
    c.publish("n", "u", "leaders_activities", later - timedelta(days=11))
    idle = next(
        line for line in site_risk(c.reg.state, national, later).lines if line.id == "homepage-idle"
    )
    assert (idle.value, idle.level) == (11, "warning")
    c.unit("v")
    for i, code in enumerate(c.reg.state.catalog.columns):
        c.publish(f"v{i}", "v", code, D("2026-01-05"))
    stale = next(
        line for line in site_risk(c.reg.state, national, later).lines if line.id == "stale-columns"
    )
    assert (stale.value, stale.level) == (3, "warning")
    one = site_risk(c.reg.state, national, later, unit="v")
    assert next(line for line in one.lines if line.id == "stale-columns").value == 2


def test_attachment2_shows_each_tick_and_who_made_it(calendar: WorkingCalendar) -> None:
    c = County(calendar)
    c.unit("u", "township")
    c.hide("u", "statistics", D("2026-01-06"))
    a = attachment2(c.reg.state, "u")
    assert len(a.rows) == 30
    rows = {r.column: r for r in a.rows}
    assert (rows["statistics"].keep, rows["statistics"].source, rows["statistics"].decided_by) == (
        False,
        "unit",
        "p-leader",
    )
    assert (rows["chronicle"].keep, rows["chronicle"].source) == (True, "default")
    assert rows["public_resources"].not_applicable and not rows["public_resources"].keep
    assert rows["normative_documents"].deadline.zh.startswith("文件印发20个工作日内")
    assert a.submitted_at == shanghai(D("2026-01-06"))


def test_attachment2_dates_are_days_in_china(calendar: WorkingCalendar) -> None:
    # Ticked at 07:30 Beijing time on 6 January, which is still 5 January in UTC.
    c = County(calendar)
    c.unit("u", "township")
    c.hide("u", "statistics", D("2026-01-06"))
    a = attachment2(c.reg.state, "u")
    early = shanghai(D("2026-01-06"), hour=7) + timedelta(minutes=30)
    assert early.date() == D("2026-01-05")
    rows = tuple(replace(r, decided_at=early) if r.decided_at else r for r in a.rows)
    page = attachment2_html(replace(a, submitted_at=early, rows=rows))
    assert "报送时间：2026-01-06" in page
    assert "<td>2026-01-06</td>" in page
    assert "2026-01-05" not in page
