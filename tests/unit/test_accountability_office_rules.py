"""The county office's automatic decisions, rule by rule: given the facts, when the rule runs,
then the event accountability owes (or none).

* 督办 without being asked: when a case's notice is due (``supervision.notice_due``);
* how a case ends once its column is refreshed (``supervision.case_closed``);
* 整改: a removal rectifies an item published without review, a refresh a column stale after
  supervision (``violation.rectified_by_removal``, ``violation.rectified_by_refresh``);
* 读网纠错, the unit's answer: a revision or removal resolves an open finding
  (``finding.resolved_by``).

No read model and no log: the functions the fold and ``decide`` call, on their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest

from gongkai.calendar import SHANGHAI, WorkingCalendar
from gongkai.events.contracts.accountability import (
    FindingResolved,
    SupervisionClosed,
    ViolationRectified,
)
from gongkai_accountability.domain.finding import Status, resolved_by
from gongkai_accountability.domain.supervision import case_closed, notice_due
from gongkai_accountability.domain.violation import rectified_by_refresh, rectified_by_removal

#: The library's 2026 arrangement (no operator data): the Spring Festival 2026-02-15..23 off,
#: Saturday 2026-02-14 a make-up working day.
CALENDAR = WorkingCalendar(use_library=True)
REMOVED_AT = datetime(2026, 3, 20, 2, 30, tzinfo=UTC)


# ---- 督办: when the automatic notice is due ------------------------------------------------


@dataclass
class Due:
    name: str
    opened_on: date
    today: date
    after: int | None
    due: bool


DUE = [
    Due("same-day", date(2026, 3, 2), date(2026, 3, 2), 2, False),
    Due("one-working-day", date(2026, 3, 2), date(2026, 3, 3), 2, False),
    Due("two-working-days", date(2026, 3, 2), date(2026, 3, 4), 2, True),
    Due("later-still-due", date(2026, 3, 2), date(2026, 4, 1), 2, True),
    # Opened on a Friday: the weekend does not count.
    Due("weekend-not-counted", date(2026, 3, 6), date(2026, 3, 9), 2, False),
    Due("weekend-then-two-days", date(2026, 3, 6), date(2026, 3, 10), 2, True),
    # Opened the Friday before the Spring Festival: the make-up Saturday counts, the holiday
    # does not.
    Due("make-up-saturday-counts", date(2026, 2, 13), date(2026, 2, 14), 1, True),
    Due("holiday-not-counted", date(2026, 2, 13), date(2026, 2, 23), 2, False),
    Due("first-day-after-the-holiday", date(2026, 2, 13), date(2026, 2, 24), 2, True),
    Due("zero-days-due-at-once", date(2026, 3, 2), date(2026, 3, 2), 0, True),
    Due("by-hand-only-never-due", date(2026, 3, 2), date(2027, 3, 2), None, False),
]


@pytest.mark.parametrize("case", DUE, ids=lambda c: c.name)
def test_notice_due(case: Due) -> None:
    assert notice_due(case.opened_on, case.today, case.after, CALENDAR) is case.due


def test_calendar_facts_the_table_relies_on() -> None:
    # The rows above read the library's 2026 data; say so where it would break.
    assert not CALENDAR.is_working_day(date(2026, 2, 23))
    assert CALENDAR.is_working_day(date(2026, 2, 14))


# ---- how a case ends -------------------------------------------------------------------------


@dataclass
class Closing:
    name: str
    deadline: date | None
    closed_on: date
    outcome: str


CLOSINGS = [
    Closing("refreshed-before-any-notice", None, date(2026, 3, 3), "before_notice"),
    Closing("refreshed-by-the-deadline", date(2026, 3, 11), date(2026, 3, 10), "within_deadline"),
    Closing("the-deadline-day-counts", date(2026, 3, 11), date(2026, 3, 11), "within_deadline"),
    Closing("refreshed-after-it", date(2026, 3, 11), date(2026, 3, 12), "after_deadline"),
]


@pytest.mark.parametrize("case", CLOSINGS, ids=lambda c: c.name)
def test_case_closed(case: Closing) -> None:
    closed = case_closed(
        "finance--news--1", "finance", "news",
        deadline=case.deadline, closed_on=case.closed_on, refreshed=["r1", "r2"],
    )
    assert closed == SupervisionClosed(
        case_id="finance--news--1",
        unit="finance",
        column="news",
        outcome=case.outcome,  # type: ignore[arg-type]
        closed_on=case.closed_on,
        refreshed_event_ids=("r1", "r2"),
    )


# ---- 整改: rectification the log shows ------------------------------------------------------


@dataclass
class Removal:
    name: str
    rectified: bool
    then: ViolationRectified | None


REMOVALS = [
    Removal(
        "removed-item-rectifies-at-the-removal", False,
        ViolationRectified(violation_id="V-1", unit="finance", how="removed",
                           evidence=("ev-removed",), rectified_at=REMOVED_AT),
    ),
    Removal("rectified-by-hand-already-nothing-owed", True, None),
]


@pytest.mark.parametrize("case", REMOVALS, ids=lambda c: c.name)
def test_rectified_by_removal(case: Removal) -> None:
    owed = rectified_by_removal(
        "V-1", "finance", rectified=case.rectified, removed_event_id="ev-removed", at=REMOVED_AT
    )
    assert owed == case.then


@dataclass
class Refresh:
    name: str
    rectified: bool
    closed_on: date
    then: ViolationRectified | None


REFRESHES = [
    Refresh(
        "refresh-rectifies-at-the-start-of-its-beijing-day", False, date(2026, 3, 12),
        ViolationRectified(
            violation_id="V-2", unit="finance", how="refreshed", evidence=("r1", "r2"),
            rectified_at=datetime(2026, 3, 12, tzinfo=SHANGHAI),
        ),
    ),
    Refresh("rectified-by-hand-already-nothing-owed", True, date(2026, 3, 12), None),
]


@pytest.mark.parametrize("case", REFRESHES, ids=lambda c: c.name)
def test_rectified_by_refresh(case: Refresh) -> None:
    owed = rectified_by_refresh(
        "V-2", "finance", rectified=case.rectified, refreshed=["r1", "r2"],
        closed_on=case.closed_on,
    )
    assert owed == case.then
    if owed is not None:
        # 2026-03-11 16:00 UTC: the instant Beijing's 12 March began.
        assert owed.rectified_at == datetime(2026, 3, 11, 16, tzinfo=UTC)


# ---- 读网纠错: the unit's answer --------------------------------------------------------------


@dataclass
class Answer:
    name: str
    status: Status
    how: str
    resolved: bool


ANSWERS = [
    Answer("revision-resolves-an-open-finding", "reported", "revised", True),
    Answer("removal-resolves-an-open-finding", "reported", "removed", True),
    Answer("resolved-already-not-again", "resolved", "revised", False),
    Answer("confirmed-stays-confirmed", "confirmed", "removed", False),
    Answer("never-reported-nothing", "none", "revised", False),
]


@pytest.mark.parametrize("case", ANSWERS, ids=lambda c: c.name)
def test_resolved_by(case: Answer) -> None:
    owed = resolved_by(
        "F-1", "finance", case.status, how=case.how, event_id="ev-answer"  # type: ignore[arg-type]
    )
    if not case.resolved:
        assert owed is None
        return
    assert owed == FindingResolved(
        finding_id="F-1", unit="finance", how=case.how, evidence=("ev-answer",)  # type: ignore[arg-type]
    )
