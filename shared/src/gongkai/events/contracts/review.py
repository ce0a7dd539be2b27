"""Events owned by review: the signatures of Attachment 1's chain and its conclusion."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gongkai.events.envelope import REGISTRY, Actor, EventPayload, event

REGISTRY.aggregate(
    "review",
    id_shape="the post id (`post-…`): one post's review chains",
    about="the sign-off chains of one post (Attachment 1)",
)
REGISTRY.aggregate(
    "review_policy",
    id_shape="the unit code",
    about="one unit's review setting",
)

Stage = Literal["staff", "secrecy", "leader"]
Decision = Literal["agree", "disagree"]
Outcome = Literal["approved", "rejected", "voided"]
#: Whether a unit's ordinary posts (not normative documents, announcements or major decisions)
#: also need the staff opinion before the leader signs.
StaffStagePolicy = Literal["important_only", "always"]


@event
class ReviewSigned(EventPayload):
    """One signature on one stage of a post's review chain, bound to one content digest."""

    event_type = "ReviewSigned"
    aggregate_type = "review"
    emitted_when = (
        "a staff member, secrecy officer or leader of the unit signs the stage the chain "
        "awaits (POST /posts/{id}/signatures)"
    )

    post_id: str
    chain: int = Field(ge=1)
    stage: Stage
    decision: Decision
    opinion: str | None = None
    signer: Actor
    content_digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    #: The post's content version the digest belongs to (None in events written before it).
    content_version: int | None = Field(default=None, ge=1)


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
    """A review chain ended: approved (the CMS may publish), rejected, or voided by a revision.

    An approved chain that a later revision or withdrawal voids is concluded a second time,
    with the same chain number and outcome ``voided``: the approval no longer stands.
    """

    event_type = "ReviewConcluded"
    aggregate_type = "review"
    emitted_when = (
        "with the leader's signature (approved), with any disagreeing signature (rejected), or "
        "when intake records a revision or withdrawal of a post with signatures (voided)"
    )

    post_id: str
    chain: int = Field(ge=1)
    outcome: Outcome
    content_digest: str
    signatures: tuple[Signature, ...] = ()
    reason: str | None = None
    content_version: int | None = Field(default=None, ge=1)


@event
class ReviewPolicySet(EventPayload):
    """A unit chose whether its ordinary posts also need the staff opinion (the unit's setting).

    Normative documents, announcements and major decisions always need it (Attachment 1).
    """

    event_type = "ReviewPolicySet"
    aggregate_type = "review_policy"
    emitted_when = "the unit's principal leader changes it (PUT /units/{unit}/review-policy)"

    unit: str
    staff_stage: StaffStagePolicy
