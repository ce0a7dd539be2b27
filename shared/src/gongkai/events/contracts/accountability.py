"""Events owned by accountability: violations against the people responsible."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gongkai.events.envelope import EventPayload, event

ViolationKind = Literal[
    "late_publication",
    "stale_after_supervision",
    "published_without_review",
    "wrong_information",
]


class Responsible(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    person: str
    role: str
    unit: str


@event
class ViolationRecorded(EventPayload):
    """A lapse named in section 5 of the notice, recorded against the people responsible."""

    event_type = "ViolationRecorded"
    aggregate_type = "violation"

    kind: ViolationKind
    unit: str
    responsible: tuple[Responsible, ...]
    evidence: tuple[str, ...] = Field(min_length=1)
    severity: Literal["minor", "serious"]
    occurred_at: datetime
    summary: str
