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
