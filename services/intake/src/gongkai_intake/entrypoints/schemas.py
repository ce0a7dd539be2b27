"""Request and answer bodies: the same JSON on HTTP and on the bus."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from gongkai.events.contracts.intake import (
    Attachment,
    Channel,
    ImportantKind,
    MaskedSpan,
    Origin,
    Role,
    UnitKind,
)
from gongkai_intake.domain import limits

Code = Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$", description="A-Z a-z 0-9 _ -")]
Digest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="lower-case hex sha256")]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SubmitPostRequest(_Request):
    unit: Code
    column: Code = Field(description="column code in the rule set's catalog")
    title: str = Field(min_length=1, max_length=limits.TITLE_MAX)
    body: str = Field("", max_length=limits.BODY_MAX)
    attachments: list[Attachment] = Field(default_factory=list, max_length=limits.ATTACHMENTS_MAX)
    origin: Origin | None = Field(
        None, description="produced by the unit or reprinted; default produced"
    )
    source: str | None = Field(None, max_length=limits.SOURCE_MAX, description="reprints only")
    channel: Channel | None = Field(None, description="default website")
    important_kind: ImportantKind | None = Field(
        None, description="set for normative documents, announcements and major decisions"
    )
    maker_unsure: bool = Field(False, description="the maker is unsure it may be disclosed")
    information_date: date = Field(description="the date the information was formed or issued")


class RevisePostRequest(_Request):
    title: str = Field(min_length=1, max_length=limits.TITLE_MAX)
    body: str = Field("", max_length=limits.BODY_MAX)
    attachments: list[Attachment] = Field(default_factory=list, max_length=limits.ATTACHMENTS_MAX)
    information_date: date = Field(description="the date the information changed")


class WithdrawPostRequest(_Request):
    reason: str = Field(min_length=1, max_length=limits.REASON_MAX)


class ReportPublicationRequest(_Request):
    post_id: str | None = Field(
        None, max_length=128, description="the gongkai post id, if the item came from gongkai"
    )
    unit: Code
    column: Code
    url: str = Field(min_length=1, max_length=limits.URL_MAX)
    online_at: AwareDatetime
    content_digest: Digest
    redated: bool = Field(False, description="note 1: the latest item re-dated to now")
    reported_by: Literal["cms", "site_reader"] = "cms"


class RemovePublicationRequest(_Request):
    removed_at: AwareDatetime
    reason: str = Field(min_length=1, max_length=limits.REASON_MAX)


class RegisterUnitRequest(_Request):
    code: Code
    name: str = Field(min_length=1, max_length=limits.UNIT_NAME_MAX)
    kind: UnitKind
    contact_name: str = Field(min_length=1, max_length=limits.NAME_MAX)
    contact_mobile: str = Field(min_length=1, max_length=32)


class RegisterPersonRequest(_Request):
    person_id: Code
    name: str = Field(min_length=1, max_length=limits.NAME_MAX)


class RoleRequest(_Request):
    unit: Code
    role: Role


class LeadershipChangeRequest(_Request):
    changed_on: date
    summary: str = Field(min_length=1, max_length=limits.SUMMARY_MAX)


class TokenRevocationRequest(_Request):
    token: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="the token, its sha256, or the hint GET /people/{id}/tokens shows; "
        "omitted: every live token of the person",
    )


# ---- answers ---------------------------------------------------------------------------


class Recorded(BaseModel):
    event_id: str
    sequence: int


class PostAccepted(Recorded):
    post_id: str
    unit: str
    column: str
    content_version: int
    content_digest: str
    maker_unsure: bool = False
    needs_secrecy_review: bool
    personal_data: list[MaskedSpan]


class PostWithdrawnAnswer(Recorded):
    post_id: str
    withdrawn: bool = True


class PublicationRecorded(Recorded):
    publication_id: str
    post_id: str | None
    reported_post_id: str | None
    known_post: bool


class PublicationRemovedAnswer(Recorded):
    publication_id: str
    removed: bool = True


class DirectoryChange(BaseModel):
    aggregate: str
    changed: bool
    event_ids: list[str]
    sequence: int | None


class PostView(BaseModel):
    post_id: str
    unit: str
    column: str
    title: str
    content_version: int
    content_digest: str
    important_kind: str | None
    maker_unsure: bool
    needs_secrecy_review: bool
    withdrawn: bool


class PublicationView(BaseModel):
    publication_id: str
    unit: str
    column: str
    post_id: str | None
    removed: bool


class UnitView(BaseModel):
    code: str
    name: str
    kind: str
    contact_name: str
    contact_mobile: str


class TokenView(BaseModel):
    """A live token: never the token or its hash."""

    hint: str
    issued_at: datetime
    expires_at: datetime


class Me(BaseModel):
    person_id: str
    name: str
    roles: list[dict[str, str]]
