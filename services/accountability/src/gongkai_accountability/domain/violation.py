"""A violation and its rectification (整改).

A violation is recorded once by accountability's rules (``ViolationRecorded``) and stays on
the record; putting its cause right is recorded beside it (``ViolationRectified``), once:

* automatically, when the log shows the cause gone (the column refreshed, the post removed
  or approved) — the fold's obligation;
* or by the county office, who holds it rectified by hand with evidence and a reason
  (``Rectify``) — this decider.

Both share one command id per violation (``rectify_command_id``), so their event id is the
same and whichever reaches the log second is a duplicate JetStream drops: a violation is
never rectified twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from gongkai.calendar import day_start
from gongkai.decider import Decider
from gongkai.events import EventPayload
from gongkai.events.contracts.accountability import ViolationRecorded, ViolationRectified
from gongkai.logtypes import RecordedEvent
from gongkai.refusal import Refusal


def rectify_command_id(violation_id: str) -> str:
    return f"rectify:{violation_id}"


def rectified_by_removal(
    violation_id: str, unit: str, *, rectified: bool, removed_event_id: str, at: datetime
) -> ViolationRectified | None:
    """整改 of an item published without review: taking it off the site puts the lapse right,
    at the removal's business time (``at``); nothing when it was rectified already."""
    if rectified:
        return None
    return ViolationRectified(
        violation_id=violation_id,
        unit=unit,
        how="removed",
        evidence=(removed_event_id,),
        rectified_at=at,
    )


def rectified_by_refresh(
    violation_id: str, unit: str, *, rectified: bool, refreshed: Sequence[str], closed_on: date
) -> ViolationRectified | None:
    """整改 of a column still stale after supervision: refreshing it puts the lapse right on
    the day the column was put right (the start of that Beijing day), the refreshes its
    evidence; nothing when the office already held it rectified by hand."""
    if rectified:
        return None
    return ViolationRectified(
        violation_id=violation_id,
        unit=unit,
        how="refreshed",
        evidence=tuple(refreshed),
        rectified_at=day_start(closed_on),
    )


@dataclass(frozen=True)
class ViolationState:
    violation_id: str
    unit: str | None = None
    kind: str | None = None
    rectified: bool = False


@dataclass(frozen=True)
class Rectify:
    """The office holds the violation rectified."""

    evidence: tuple[str, ...]
    note: str
    at: datetime


def evolve(state: ViolationState, rec: RecordedEvent) -> ViolationState:
    p = rec.envelope.payload
    if isinstance(p, ViolationRecorded):
        return replace(state, unit=p.unit, kind=p.kind)
    if isinstance(p, ViolationRectified):
        return replace(state, rectified=True)
    return state


def decide(state: ViolationState, cmd: Rectify) -> Sequence[EventPayload]:
    if state.unit is None:
        raise Refusal("not_found", "Not found", f"no violation {state.violation_id!r}")
    if state.rectified:
        raise Refusal("conflict", "Already rectified", "the violation is already rectified")
    return [
        ViolationRectified(
            violation_id=state.violation_id,
            unit=state.unit,
            how="by_office",
            evidence=cmd.evidence,
            rectified_at=cmd.at,
            note=cmd.note,
        )
    ]


#: A rectification by hand continues the violation's story: caused by it, in its correlation.
VIOLATION: Decider[ViolationState, Rectify] = Decider(
    "violation", ViolationState, evolve, decide, follow=True
)
