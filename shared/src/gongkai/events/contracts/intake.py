"""Events owned by intake: posts and their content versions, publications, the unit directory."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gongkai.events.envelope import REGISTRY, EventPayload, event

Origin = Literal["produced", "reprinted"]
Channel = Literal["website", "on_request", "other"]
ImportantKind = Literal["normative_document", "announcement", "major_decision"]


class Attachment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class MaskedSpan(BaseModel):
    """Where screening found personal data; the value itself is kept only masked."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["resident_id", "mobile", "bank_card"]
    field: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    masked: str


class Screening(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    needs_secrecy_review: bool = False
    spans: tuple[MaskedSpan, ...] = ()


@event
class PostSubmitted(EventPayload):
    """A unit submitted a post for review (Attachment 1's fields plus the content)."""

    event_type = "PostSubmitted"
    schema_version = 2
    aggregate_type = "post"

    unit: str
    column: str
    title: str
    body: str
    attachments: tuple[Attachment, ...] = ()
    origin: Origin
    source: str | None = None
    channel: Channel
    important_kind: ImportantKind | None = None
    maker_unsure: bool = False
    information_date: date
    content_version: int = Field(default=1, ge=1)
    content_digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    screening: Screening = Screening()


@REGISTRY.upcaster("PostSubmitted", 1)
def _post_submitted_v1_to_v2(p: dict[str, Any]) -> dict[str, Any]:
    # v1 named the digest `sha256` and predates content screening and content versions.
    p = dict(p)
    p["content_digest"] = p.pop("sha256")
    p.setdefault("screening", {"needs_secrecy_review": False, "spans": []})
    p.setdefault("content_version", 1)
    return p
