"""督办: one notice per supervision case, none once the case is closed (the decider); the
notice's deadline in working days (``supervision_notice``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest

from gongkai.calendar import WorkingCalendar
from gongkai.events.contracts.accountability import SupervisionClosed, SupervisionIssued
from gongkai.refusal import Refusal
from gongkai_accountability.domain.decide import Policy, supervision_notice
from gongkai_accountability.domain.supervision import SUPERVISION, Issue
from gongkai_accountability.domain.tables import Case
from tests.builders import history

T0 = datetime(2026, 3, 2, 1, tzinfo=UTC)
NOTICE = SupervisionIssued(
    case_id="C1", unit="finance", column="work_news", stale_event_ids=("s1",),
    issued_on=date(2026, 3, 2), deadline=date(2026, 3, 9), working_days=5,
)
CLOSED = SupervisionClosed(
    case_id="C1", unit="finance", column="work_news", outcome="before_notice",
    closed_on=date(2026, 3, 2),
)


CASES = {
    "an open case without a notice gets it": ((), None),
    "a case with a notice gets no second one": ((NOTICE,), ("conflict", "Already issued")),
    "a closed case gets no notice": ((CLOSED,), ("conflict", "Case closed")),
}


@pytest.mark.parametrize("name", list(CASES))
def test_supervision_rules(name: str) -> None:
    given, refused = CASES[name]
    state = SUPERVISION.fold("C1", history("C1", *given))
    if refused is None:
        assert list(SUPERVISION.decide(state, Issue(NOTICE))) == [NOTICE]
        return
    with pytest.raises(Refusal) as exc:
        SUPERVISION.decide(state, Issue(NOTICE))
    assert (exc.value.kind, exc.value.title) == refused


# ---- the notice's wording and deadline: given a case and the day, then the notice -----------

CALENDAR = WorkingCalendar.default()
CASE = Case(
    case_id="C1", unit="finance", column="work_news", status="open", opened_on="2026-02-24",
    stale_event_ids=("s1", "s2"),
)


@dataclass(frozen=True)
class Notice:
    name: str
    today: date
    #: what the office asked for (by hand), None for the automatic notice
    by_hand: tuple[str | None, int | None] | None
    policy: Policy
    #: then: (deadline, working days, provisional)
    deadline: date
    working_days: int
    provisional: bool = False


NOTICES = [
    Notice("automatic: the county's 5 working days", date(2026, 3, 2), None, Policy(),
           date(2026, 3, 9), 5),
    Notice("a weekend is not counted", date(2026, 3, 6), None, Policy(), date(2026, 3, 13), 5),
    Notice("nor the National Day holiday, its make-up Saturday is",
           date(2026, 9, 30), None, Policy(), date(2026, 10, 13), 5),
    Notice("the county sets another number", date(2026, 3, 2), None,
           Policy(deadline_days=10), date(2026, 3, 16), 10),
    Notice("by hand, with a note and days of its own", date(2026, 3, 2), ("请于3日内更新", 3),
           Policy(), date(2026, 3, 5), 3),
    Notice("by hand, the county's number when none is given", date(2026, 3, 2), (None, None),
           Policy(), date(2026, 3, 9), 5),
    Notice("a year without the State Council's arrangement: provisional", date(2040, 3, 5),
           None, Policy(), date(2040, 3, 12), 5, provisional=True),
]


@pytest.mark.parametrize("case", NOTICES, ids=lambda c: c.name)
def test_supervision_notice(case: Notice) -> None:
    note, days = case.by_hand if case.by_hand is not None else (None, None)
    notice = supervision_notice(
        CASE, case.today, CALENDAR, case.policy, automatic=case.by_hand is None, note=note,
        deadline_days=days,
    )
    assert notice == SupervisionIssued(
        case_id="C1", unit="finance", column="work_news", stale_event_ids=("s1", "s2"),
        issued_on=case.today, deadline=case.deadline, working_days=case.working_days,
        provisional=case.provisional, automatic=case.by_hand is None, note=note,
    )
