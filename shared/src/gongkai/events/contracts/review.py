"""Events owned by review: the signatures of Attachment 1's chain and its conclusion."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

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
