"""Events owned by intake: posts and their content versions, publications, the unit directory."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gongkai.events.envelope import REGISTRY, EventPayload, digest, event
from gongkai.events.versions import Default, Rename, Set

REGISTRY.aggregate(
    "post",
    id_shape="`post-` and the first 20 characters of the submitting command's id",
    about="one submitted post: its content versions and its withdrawal",
)
REGISTRY.aggregate(
    "publication",
    id_shape="`pub-` and the first 20 characters of the reporting command's id",
    about="one item seen online, reviewed or not, until it is removed",
)
REGISTRY.aggregate(
    "unit",
    id_shape="the unit code (`finance`, `donghe-town`)",
    about="a maintaining unit (维护单位) of the directory",
)
REGISTRY.aggregate(
    "person",
    id_shape="the person id (`finance-leader`)",
    about="a person of the directory: roles held and bearer tokens",
)

Origin = Literal["produced", "reprinted"]
Channel = Literal["website", "on_request", "other"]
ImportantKind = Literal["normative_document", "announcement", "major_decision"]


class Attachment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


def post_content_digest(title: str, body: str, attachments: Sequence[Attachment]) -> str:
    """sha256 of a post's canonical content: what a reviewer approves and the CMS publishes.

    Canonical JSON (sorted keys, UTF-8, no whitespace) of
    ``{"attachments": [{"name", "sha256", "size"}, ...], "body": ..., "title": ...}`` with the
    attachments in the order given. A CMS reporting a publication computes the same digest, so
    "the published item is the approved version" is one string comparison.
    """
    return digest(
        {
            "title": title,
            "body": body,
            "attachments": [a.model_dump(mode="json") for a in attachments],
        },
        floatless=True,  # strings and sizes only
    )


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


class _Submission(EventPayload):
    """What every version of ``PostSubmitted`` carries: the content and Attachment 1's fields.

    Not an event of its own (never registered); a later version that changes one of these
    fields declares the set it was written with instead of extending this one.
    """

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


@event
class PostSubmitted(_Submission):
    """A unit submitted a post for review (Attachment 1's fields plus the content)."""

    event_type = "PostSubmitted"
    schema_version = 2
    aggregate_type = "post"
    emitted_when = (
        "a maker or staff member of the unit submits a post (POST /posts), once its content "
        "passed the checks and screening"
    )

    content_version: int = Field(default=1, ge=1)
    content_digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    screening: Screening = Screening()


@REGISTRY.register_past
class PostSubmittedV1(_Submission):
    """A unit submitted a post for review: version 1, before content screening and versions."""

    event_type = "PostSubmitted"
    schema_version = 1
    aggregate_type = "post"

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


REGISTRY.upcast_fields(
    "PostSubmitted",
    1,
    Rename("sha256", "content_digest", why="the same digest of the content, renamed"),
    Default(
        "screening",
        {"needs_secrecy_review": False, "spans": []},
        why="v1 predates content screening: nothing was flagged",
    ),
    Default("content_version", 1, why="v1 predates revisions: a submission is version 1"),
)


UnitKind = Literal["county_office", "department", "township", "committee"]
Role = Literal["maker", "staff", "secrecy", "leader", "office"]


@event
class UnitRegistered(EventPayload):
    """A maintaining unit (维护单位) joined the directory, or its details changed."""

    event_type = "UnitRegistered"
    aggregate_type = "unit"
    emitted_when = (
        "the office (or the operator's directory load) registers a unit or changes its details"
    )

    code: str
    name: str
    kind: UnitKind
    contact_name: str
    contact_mobile: str


@event
class PersonRegistered(EventPayload):
    """A person joined the directory (fictional names in the demo)."""

    event_type = "PersonRegistered"
    aggregate_type = "person"
    emitted_when = "the office (or the operator's directory load) registers a person"

    person_id: str
    name: str


@event
class RoleGranted(EventPayload):
    """A person holds a role in a unit: maker (承办人), staff, secrecy officer, leader, office."""

    event_type = "RoleGranted"
    aggregate_type = "person"
    emitted_when = "the office grants a role the person does not hold yet (POST /people/{id}/roles)"

    person_id: str
    unit: str
    role: Role


@event
class RoleRevoked(EventPayload):
    """A person no longer holds a role in a unit (earlier acts under it stand)."""

    event_type = "RoleRevoked"
    aggregate_type = "person"
    emitted_when = "the office revokes a role the person holds (POST /people/{id}/roles/revocation)"

    person_id: str
    unit: str
    role: Role


#: How long a token recorded without an expiry (``TokenIssued`` v1) stays valid after it was
#: recorded: the default lifetime of a token when expiries were introduced. Fixed here, not a
#: setting, so every service's directory reads the same expiry from the same event.
LEGACY_TOKEN_LIFETIME_DAYS = 90


@event
class TokenIssued(EventPayload):
    """A bearer token for a person; only its sha256 is ever recorded.

    ``expires_at``: the token is refused from that instant on. None only in events recorded
    before expiries existed (v1): such a token expires ``LEGACY_TOKEN_LIFETIME_DAYS`` after
    the event's ``recorded_at``.
    """

    event_type = "TokenIssued"
    schema_version = 2
    aggregate_type = "person"
    emitted_when = "the operator issues a token (`gongkai people token`, the directory load)"

    person_id: str
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    token_hint: str = Field(max_length=8)
    expires_at: datetime | None = None


@REGISTRY.register_past
class TokenIssuedV1(EventPayload):
    """A bearer token for a person: version 1, before expiries."""

    event_type = "TokenIssued"
    schema_version = 1
    aggregate_type = "person"

    person_id: str
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    token_hint: str = Field(max_length=8)


REGISTRY.upcast_fields(
    "TokenIssued",
    1,
    Set(
        "expires_at",
        None,
        why=f"v1 had no expiry: null reads as {LEGACY_TOKEN_LIFETIME_DAYS} days after the "
        "event's recorded_at",
    ),
)


@event
class TokenRevoked(EventPayload):
    """A token of the person no longer authenticates, on every service, from this event on.

    One event per token: revoking all of a person's tokens, or issuing a token that replaces
    the earlier ones, records one for each token that was still live.
    """

    event_type = "TokenRevoked"
    aggregate_type = "person"
    emitted_when = (
        "the office revokes a person's tokens, or a newly issued token replaces live ones "
        "(one event per token)"
    )

    person_id: str
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    token_hint: str = Field(max_length=8)
    reason: Literal["revoked", "replaced"] = "revoked"


@event
class LeadershipDutiesChanged(EventPayload):
    """The unit's leaders or their duties changed: 领导成员和分工 is due in 10 working days."""

    event_type = "LeadershipDutiesChanged"
    aggregate_type = "unit"
    emitted_when = (
        "a maker or leader of the unit, or the office, reports a change of leaders or duties "
        "(POST /units/{unit}/leadership-changes)"
    )

    unit: str
    changed_on: date
    summary: str


@event
class PostRevised(EventPayload):
    """A new content version of a post; any review of an earlier version is void."""

    event_type = "PostRevised"
    aggregate_type = "post"
    emitted_when = "a maker or staff member of the unit revises a post not withdrawn"

    unit: str
    title: str
    body: str
    attachments: tuple[Attachment, ...] = ()
    information_date: date
    content_version: int = Field(ge=2)
    content_digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    screening: Screening = Screening()


@event
class PostWithdrawn(EventPayload):
    """A post will not go online: its review chain, if any, is void."""

    event_type = "PostWithdrawn"
    aggregate_type = "post"
    emitted_when = "a maker, staff member or leader of the unit withdraws the post"

    unit: str
    reason: str


@event
class PostPublished(EventPayload):
    """The CMS or the office's site reader saw an item online.

    ``post_id`` is None when gongkai never saw the item: an unreviewed publication, recorded all
    the same; if the reporter named a post id gongkai does not know, it is kept in
    ``reported_post_id``. ``redated`` marks the notice's note 1: a non-time-bound item re-dated
    to now.
    """

    event_type = "PostPublished"
    aggregate_type = "publication"
    emitted_when = (
        "the CMS, the office's site reader or the unit reports an item online (POST /publications)"
    )

    publication_id: str
    post_id: str | None = None
    unit: str
    column: str
    url: str
    online_at: datetime
    content_digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    redated: bool = False
    reported_by: Literal["cms", "site_reader"] = "cms"
    reported_post_id: str | None = None


@event
class PublicationRemoved(EventPayload):
    """An item seen online was taken off the site."""

    event_type = "PublicationRemoved"
    aggregate_type = "publication"
    emitted_when = "the CMS, the office or the unit reports the item taken offline"

    publication_id: str
    post_id: str | None = None
    unit: str
    column: str
    removed_at: datetime
    reason: str


@event
class PublicationImported(EventPayload):
    """An item that was online before gongkai watched the site, imported from the CMS's export
    (``gongkai import``): a historical publication, with its own business time (``online_at``).

    History, not a report: nobody reviewed it in gongkai, so it is never judged for review
    (no ``published_without_review``); freshness counts it for due dates and inspectors' as-of
    views count it as published on ``online_at``. A separate type, not a flag on
    ``PostPublished``: a subscriber of "items going online" is not flooded with a year of
    history, and no consumer can mistake an import for a report. Recorded once per item: the
    publication id is derived from the item's unit, column, URL and online time.
    """

    event_type = "PublicationImported"
    aggregate_type = "publication"
    emitted_when = (
        "`gongkai import FILE` (or `gongkai up --demo`'s year of history) records an item of a "
        "CMS export; once per item, however often it is imported"
    )

    publication_id: str
    unit: str
    column: str
    title: str = Field(min_length=1, max_length=300)
    url: str
    online_at: datetime
    content_digest: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
