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

from gongkai.events.envelope import REGISTRY, EventPayload, event

REGISTRY.aggregate(
    "violation",
    id_shape="`V-` and 20 hex characters of the SHA-256 of what the lapse is about "
    "(the same lapse always gets the same id)",
    about="one recorded lapse and its rectification",
)
REGISTRY.aggregate(
    "supervision",
    id_shape="the case id `<unit>--<column>--<n>`: the column's n-th case",
    about="one supervision case (督办) of a stale column: opened by the column's first "
    "ColumnStale (on the column aggregate), noticed at most once, closed once",
)
REGISTRY.aggregate(
    "finding",
    id_shape="`F-` and 20 hex characters of the SHA-256 of the reporting command's id",
    about="one error the office found on the site (读网纠错)",
)
REGISTRY.aggregate(
    "integrity",
    id_shape="`seq-<n>`: the stream sequence of the refused event",
    about="one event that failed a trust check",
)
REGISTRY.aggregate(
    "checkpoint",
    id_shape="`size-<n>`: the number of events the checkpoint covers",
    about="one signed Merkle checkpoint of the log",
)

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
    emitted_when = (
        "accountability's fold of the log meets a lapse: an item online without an approving "
        "review, a triggered item online after its deadline, a supervised column still stale "
        "after the notice's deadline, a confirmed finding"
    )

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
    emitted_when = (
        "the condition clears (the column refreshed, the unreviewed item removed or approved) "
        "or the office records it put right (POST /violations/{id}/rectification); once"
    )

    violation_id: str
    unit: str
    how: Literal["refreshed", "removed", "approved", "by_office"]
    evidence: tuple[str, ...] = ()
    rectified_at: datetime
    note: str | None = None


@event
class SupervisionIssued(EventPayload):
    """The county office's supervision notice (督办) to a unit about a stale column.

    At most one per case, and only while the case is open; a case may close without one.
    """

    event_type = "SupervisionIssued"
    aggregate_type = "supervision"
    emitted_when = (
        "a case has stayed open `GONGKAI_SUPERVISION_NOTICE_AFTER_DAYS` working days "
        "(automatic), or the office issues it (POST /supervisions)"
    )

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
    """A supervision case ended: the column was refreshed (or hidden, or its trigger withdrawn).

    A case opens with the column's first ``ColumnStale`` (on the column aggregate; the case's
    own aggregate has no opening event), so this may be the first event of its aggregate:
    ``outcome`` ``before_notice`` says the column was put right before any notice.
    """

    event_type = "SupervisionClosed"
    aggregate_type = "supervision"
    emitted_when = (
        "every stale episode of the case's column (any rule set) is closed by a "
        "ColumnRefreshed; once per case"
    )

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
    emitted_when = "the office reports an error on the site (POST /findings)"

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
    emitted_when = (
        "intake records a revision of the finding's post or the removal of its publication"
    )

    finding_id: str
    unit: str
    how: Literal["revised", "removed"]
    evidence: tuple[str, ...] = Field(min_length=1)


@event
class FindingConfirmed(EventPayload):
    """The office confirmed a finding stands: the information was wrong (a violation)."""

    event_type = "FindingConfirmed"
    aggregate_type = "finding"
    emitted_when = "the office confirms the finding (POST /findings/{id}/confirmation)"

    finding_id: str
    unit: str
    note: str | None = None


IntegrityCheck = Literal[
    "unsigned", "unknown_key", "wrong_service", "bad_signature", "retired_key", "authority"
]


@event
class IntegrityAlert(EventPayload):
    """An event in the log failed a trust check: no reader applied it.

    Recorded once per stream sequence by accountability, which reads the whole log: a missing
    or unknown signature, a key that does not speak for the service deciding that event type,
    a signature that does not verify, a retired key, or an authority the event claims (a
    signer's role, a grant) that the directory did not give at the event's business time.
    """

    event_type = "IntegrityAlert"
    aggregate_type = "integrity"
    emitted_when = (
        "one of accountability's readers refuses an event on a trust check; once per stream "
        "sequence"
    )

    #: Where the refused event sits in the stream.
    sequence: int = Field(ge=1)
    subject: str = Field(max_length=600)
    check: IntegrityCheck
    detail: str = Field(max_length=1000)
    #: As the refused event claims them (unverified), when its body could be read.
    claimed_event_id: str | None = Field(None, max_length=64)
    claimed_type: str | None = Field(None, max_length=128)


#: Most events one checkpoint covers: its tile (32 bytes per event, base64) stays near 350 KB,
#: well under the stream's largest message.
CHECKPOINT_MAX_TILE = 8192


@event
class LogCheckpoint(EventPayload):
    """A signed checkpoint of the whole log: the RFC 9162 Merkle root of events 1..size.

    ``note`` is the C2SP signed note (tlog-checkpoint) accountability signed; its extension
    lines commit to the time, to ``tile`` (the leaf hashes of events first..size, which lets
    ``gongkai audit verify`` name the first sequence that differs in a tampered copy, and lets a
    rebuild check each event with one hash instead of a signature) and to ``rejected`` (the
    sequences in that range that failed a trust check, never applied). ``frontier`` is the
    compact range of the tree at ``size``, so the next checkpoint continues from here.
    One per size: the aggregate id is ``size-<size>``, appended with expected sequence 0.
    """

    event_type = "LogCheckpoint"
    aggregate_type = "checkpoint"
    emitted_when = (
        "`GONGKAI_CHECKPOINT_EVERY` new events (1000) or `GONGKAI_CHECKPOINT_MINUTES` (10) "
        "after the last checkpoint, whichever comes first"
    )

    size: int = Field(ge=1)
    #: Base64 of the 32-byte root hash.
    root: str = Field(min_length=44, max_length=44)
    first: int = Field(ge=1)
    #: Base64 of the packed leaf hashes of events first..size.
    tile: str = Field(max_length=4 * ((32 * CHECKPOINT_MAX_TILE + 2) // 3))
    rejected: tuple[int, ...] = Field((), max_length=CHECKPOINT_MAX_TILE)
    frontier: tuple[str, ...] = Field((), max_length=64)
    note: str = Field(max_length=4000)
