"""A supervision case (督办) as a decider: one notice per case, none once it is closed.

A case opens when freshness reports a column stale (the read model's ``case`` row gathers
the ``ColumnStale`` facts); the county office's notice (``SupervisionIssued``) gives the unit a
deadline in working days, issued automatically after ``Policy.notice_after_days`` or by hand
(``Issue``). A case gets one notice: by hand and automatic racing, the second is refused; a
case the refresh already closed gets none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Literal

from gongkai.calendar import WorkingCalendar
from gongkai.decider import Decider
from gongkai.events import EventPayload
from gongkai.events.contracts.accountability import SupervisionClosed, SupervisionIssued
from gongkai.logtypes import RecordedEvent
from gongkai.refusal import Refusal

Outcome = Literal["before_notice", "within_deadline", "after_deadline"]


def supervision_outcome(deadline: date | None, closed_on: date) -> Outcome:
    """How a case ended, for the county's report: the column was put right before any notice
    (``deadline`` None), by the notice's deadline (the day itself still counts), or after it."""
    if deadline is None:
        return "before_notice"
    return "within_deadline" if closed_on <= deadline else "after_deadline"


def notice_due(
    opened_on: date, today: date, after: int | None, calendar: WorkingCalendar
) -> bool:
    """督办 without being asked: the office's automatic notice is due once the column has stood
    stale ``after`` working days since its case opened (None: the county issues notices only by
    hand). Counted as the deadlines are: day 1 is the first working day after the opening."""
    return after is not None and calendar.working_days_between(opened_on, today).value >= after


def case_closed(
    case_id: str,
    unit: str,
    column: str,
    *,
    deadline: date | None,
    closed_on: date,
    refreshed: Sequence[str],
) -> SupervisionClosed:
    """A case ends when every stale episode of its column has been refreshed: on the day the
    column was put right (``closed_on``), its outcome read against the notice's ``deadline``
    (None: no notice was issued), with the refreshes as its evidence."""
    return SupervisionClosed(
        case_id=case_id,
        unit=unit,
        column=column,
        outcome=supervision_outcome(deadline, closed_on),
        closed_on=closed_on,
        refreshed_event_ids=tuple(refreshed),
    )


@dataclass(frozen=True)
class CaseState:
    case_id: str
    issued: bool = False
    closed: bool = False


@dataclass(frozen=True)
class Issue:
    """The notice to record (``decide.supervision_notice`` words it from the case's facts)."""

    notice: SupervisionIssued


def evolve(state: CaseState, rec: RecordedEvent) -> CaseState:
    p = rec.envelope.payload
    if isinstance(p, SupervisionIssued):
        return replace(state, issued=True)
    if isinstance(p, SupervisionClosed):
        return replace(state, closed=True)
    return state


def decide(state: CaseState, cmd: Issue) -> Sequence[EventPayload]:
    if state.closed:
        raise Refusal("conflict", "Case closed", f"case {state.case_id} is closed")
    if state.issued:
        raise Refusal("conflict", "Already issued", f"case {state.case_id} has a notice")
    return [cmd.notice]


SUPERVISION: Decider[CaseState, Issue] = Decider("supervision", CaseState, evolve, decide)
