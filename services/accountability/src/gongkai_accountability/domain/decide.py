"""``decide``: the events accountability records, given the read model and today's date.

Pure: the read model, the date and the working-day calendar in, new events out. Three sources:
obligations the fold wrote (a violation, a case to close, a finding answered), open supervision
cases whose automatic notice is due, and issued notices whose deadline has passed with the
column still stale. Every event's command id is derived from what it is about, so deciding
twice yields the same event ids and the same aggregate ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime

from gongkai.calendar import WorkingCalendar
from gongkai.causality import LOG_EVENTS, Cause
from gongkai.decider import Decided
from gongkai.events import Actor
from gongkai.events.contracts.accountability import (
    IntegrityAlert,
    SupervisionIssued,
    ViolationRecorded,
    ViolationRectified,
)
from gongkai_accountability.domain.fold import held_in, short_id
from gongkai_accountability.domain.pending import Pending
from gongkai_accountability.domain.rows import Rows
from gongkai_accountability.domain.supervision import notice_due
from gongkai_accountability.domain.tables import CASE, TODO, VIOLATION, Case
from gongkai_accountability.domain.violations import CaseFacts, stale_after_supervision

ACCOUNTABILITY = Actor(person="accountability", role="system", unit="system")


@dataclass(frozen=True)
class Policy:
    """How the office supervises: the notice's numbers are left to the county (configurable)."""

    #: Working days between a column going stale and the automatic supervision notice;
    #: None: notices are issued only by hand (POST /supervisions).
    notice_after_days: int | None = 2
    #: Working days the unit is given to refresh the column.
    deadline_days: int = 5


def supervision_notice(
    case: Case,
    today: date,
    calendar: WorkingCalendar,
    policy: Policy,
    *,
    automatic: bool,
    note: str | None = None,
    deadline_days: int | None = None,
) -> SupervisionIssued:
    """督办: the notice for an open case, its deadline ``deadline_days`` working days away."""
    days = deadline_days or policy.deadline_days
    due = calendar.add_working_days(today, days)
    return SupervisionIssued(
        case_id=case.case_id,
        unit=case.unit,
        column=case.column,
        stale_event_ids=case.stale_event_ids,
        issued_on=today,
        deadline=due.value,
        working_days=days,
        provisional=due.provisional,
        automatic=automatic,
        note=note,
    )


def automatic_notice(
    case: Case, today: date, now: datetime, calendar: WorkingCalendar, policy: Policy
) -> Decided:
    """督办 by the rule: the notice an open case is owed once it has stood
    ``policy.notice_after_days`` working days. A case is issued once: its aggregate must be
    new, so a notice by hand racing this one leaves one of them refused."""
    return Decided.of(
        supervision_notice(case, today, calendar, policy, automatic=True),
        aggregate_id=case.case_id,
        actor=ACCOUNTABILITY,
        command_id=f"supervision-issued:{case.case_id}",
        recorded_at=now,
        cause=case_cause(case),
        expected=0,
    )


def case_cause(case: Case) -> Cause | None:
    """What a supervision notice answers: the case's latest ColumnStale (None: a case row
    written before causes were kept)."""
    return Cause(*case.cause) if case.cause else None


def decide(
    rows: Rows, today: date, now: datetime, calendar: WorkingCalendar, policy: Policy
) -> list[Decided]:
    return list(decisions(rows, today, now, calendar, policy))


def decisions(
    rows: Rows, today: date, now: datetime, calendar: WorkingCalendar, policy: Policy
) -> Iterator[Decided]:
    """``decide``, one event at a time: after a catch-up from nothing the read model owes tens
    of thousands (a million-event log's violations, notices and closings), and a caller that
    records them in bounded batches never holds them all at once."""
    rectified = {k: v.rectified is not None for k, v in rows.scan(VIOLATION)}
    for command_id, row in rows.scan(TODO):
        todo = Pending.of(command_id, row)
        if isinstance(todo.payload, ViolationRectified):
            if todo.aggregate_id not in rectified:
                continue  # the violation itself is still to be recorded
            if rectified[todo.aggregate_id]:
                # Rectified already, by the office's hand (POST /violations/{id}/rectification):
                # one rectification per violation.
                continue
        once = isinstance(todo.payload, (ViolationRecorded, IntegrityAlert))
        yield (
            Decided.of(
                todo.payload,
                aggregate_id=todo.aggregate_id,
                actor=ACCOUNTABILITY,
                command_id=command_id,
                recorded_at=now,
                # An alert is about a message that failed its checks, not believed: never
                # a cause (its payload names the sequence).
                cause=None if todo.payload.event_type in LOG_EVENTS else todo.cause,
                expected=0 if once else None,
            )
        )
    for _, case in rows.scan(CASE):
        if case.status == "closed" or case.closing:
            continue
        opened = date.fromisoformat(case.opened_on)
        if case.notice is None:
            if notice_due(opened, today, policy.notice_after_days, calendar):
                yield automatic_notice(case, today, now, calendar, policy)
            continue
        facts = CaseFacts.of(case)
        verdict = stale_after_supervision(facts, today, held_in(rows, facts.unit))
        if verdict is not None:
            # Caused by the notice whose deadline passed with the column still stale.
            notice = case.notice
            yield (
                Decided.of(
                    verdict.violation,
                    aggregate_id=short_id("V", verdict.command_id),
                    actor=ACCOUNTABILITY,
                    command_id=verdict.command_id,
                    recorded_at=now,
                    cause=Cause(notice.event_id, notice.correlation_id)
                    if notice.correlation_id
                    else None,
                    expected=0,
                )
            )
