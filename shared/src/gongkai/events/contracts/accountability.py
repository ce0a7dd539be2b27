"""Events owned by accountability: supervision cases, the office's findings, violations.

Section 5 of the notice: the county office reads the site, corrects errors (findings),
supervises units whose columns are stale (督办), and records responsibility for late
publication, staleness left after supervision, publication without review and wrong
information — against the people who made, reviewed and published (谁制作、谁审核、谁公开、谁负责).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gongkai.events.envelope import EventPayload, event

ViolationKind = Literal[
    "late_publication",
    "stale_after_supervision",
    "published_without_review",
    "wrong_information",
]
FindingKind = Literal[
    "incomplete",
    "inaccurate",
    "false",
    "wrong_statistics",
    "typo",
    "privacy_leak",
    "dead_link",
]


class Responsible(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    person: str
    role: str
    unit: str


@event
class ViolationRecorded(EventPayload):
    """A lapse named in section 5 of the notice, recorded against the people responsible.

    The aggregate id is derived from what the lapse is about (the publication, the supervision
    case, the finding, the late item), so the same lapse can only ever be recorded once.
    """

    event_type = "ViolationRecorded"
    aggregate_type = "violation"

    kind: ViolationKind
    unit: str
    responsible: tuple[Responsible, ...]
    evidence: tuple[str, ...] = Field(min_length=1)
    severity: Literal["minor", "serious"]
    occurred_at: datetime
    summary: str
    column: str | None = None
    post_id: str | None = None
    publication_id: str | None = None
    case_id: str | None = None
    finding_id: str | None = None


@event
class ViolationRectified(EventPayload):
    """The condition behind a violation was put right (the record of the lapse stays)."""

    event_type = "ViolationRectified"
    aggregate_type = "violation"

    violation_id: str
    unit: str
    how: Literal["refreshed", "removed", "approved", "by_office"]
    evidence: tuple[str, ...] = ()
    rectified_at: datetime
    note: str | None = None


@event
class SupervisionIssued(EventPayload):
    """The county office's supervision notice (督办) to a unit about a stale column."""

    event_type = "SupervisionIssued"
    aggregate_type = "supervision"

    case_id: str
    unit: str
    column: str
    #: The ColumnStale events the notice is about.
    stale_event_ids: tuple[str, ...] = Field(min_length=1)
    issued_on: date
    deadline: date
    working_days: int = Field(ge=1)
    #: The deadline falls in a year without the State Council's official arrangement.
    provisional: bool = False
    automatic: bool = False
    note: str | None = None


@event
class SupervisionClosed(EventPayload):
    """A supervision case ended: the column was refreshed (or hidden, or its trigger withdrawn)."""

    event_type = "SupervisionClosed"
    aggregate_type = "supervision"

    case_id: str
    unit: str
    column: str
    outcome: Literal["before_notice", "within_deadline", "after_deadline"]
    closed_on: date
    refreshed_event_ids: tuple[str, ...] = ()


@event
class FindingReported(EventPayload):
    """The office found an error on the site (读网纠错) against a post or publication."""

    event_type = "FindingReported"
    aggregate_type = "finding"

    finding_id: str
    unit: str
    kind: FindingKind
    post_id: str | None = None
    publication_id: str | None = None
    column: str | None = None
    description: str = Field(min_length=1, max_length=2000)
    evidence: tuple[str, ...] = ()
    reported_on: date


@event
class FindingResolved(EventPayload):
    """The unit answered a finding with a revision or a removal."""

    event_type = "FindingResolved"
    aggregate_type = "finding"

    finding_id: str
    unit: str
    how: Literal["revised", "removed"]
    evidence: tuple[str, ...] = Field(min_length=1)


@event
class FindingConfirmed(EventPayload):
    """The office confirmed a finding stands: the information was wrong (a violation)."""

    event_type = "FindingConfirmed"
    aggregate_type = "finding"

    finding_id: str
    unit: str
    note: str | None = None
