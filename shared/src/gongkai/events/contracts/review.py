"""Events owned by review: the signatures of Attachment 1's chain and its conclusion."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gongkai.events.envelope import Actor, EventPayload, event

Stage = Literal["staff", "secrecy", "leader"]
Decision = Literal["agree", "disagree"]


@event
class ReviewSigned(EventPayload):
    """One signature on one stage of a post's review chain, bound to one content digest."""

    event_type = "ReviewSigned"
    aggregate_type = "review"

    post_id: str
    chain: int = Field(ge=1)
    stage: Stage
    decision: Decision
    opinion: str | None = None
    signer: Actor
    content_digest: str = Field(pattern=r"^[0-9a-f]{64}$")


class Signature(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: Stage
    decision: Decision
    opinion: str | None = None
    signer: Actor
    content_digest: str
    signed_at: datetime
    event_id: str


@event
class ReviewConcluded(EventPayload):
    """A review chain ended: approved (the CMS may publish), rejected, or voided by a revision."""

    event_type = "ReviewConcluded"
    aggregate_type = "review"

    post_id: str
    chain: int = Field(ge=1)
    outcome: Literal["approved", "rejected", "voided"]
    content_digest: str
    signatures: tuple[Signature, ...] = ()
    reason: str | None = None
