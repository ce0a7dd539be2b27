"""The publication aggregate: an item seen online, and its removal.

Publications are facts reported from outside (the CMS, or the county office reading the site
daily). A publication of a post gongkai never saw is recorded all the same, as unreviewed:
dropping it would hide exactly what accountability has to see.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit

from gongkai.events import EventPayload
from gongkai.events.contracts.intake import PostPublished, PublicationRemoved
from gongkai.refusal import Refusal
from gongkai_intake.domain import limits
from gongkai_intake.domain.columns import known_column, known_unit
from gongkai_intake.domain.content import check_reason
from gongkai_intake.domain.context import InColumn, UnitFacts, not_allowed, placed
from gongkai_intake.domain.posts import PostState

#: The unit's own people may report what their CMS published; the county office reports for any
#: unit (it reads the whole site).
UNIT_REPORT_ROLES = frozenset({"maker", "staff", "leader"})
#: Reporters' clocks are not ours; a few minutes ahead is skew, more is a wrong timestamp.
CLOCK_SKEW = timedelta(minutes=5)

Reporter = Literal["cms", "site_reader"]


@dataclass(frozen=True)
class ReportPublication:
    publication_id: str
    unit: str
    column: str
    url: str
    online_at: datetime
    content_digest: str
    post_id: str | None = None
    redated: bool = False
    reported_by: Reporter = "cms"


@dataclass(frozen=True)
class RemovePublication:
    publication_id: str
    removed_at: datetime
    reason: str


@dataclass(frozen=True, kw_only=True)
class Context(UnitFacts):
    """Facts from outside the publication's history that a report is judged against: the
    reporter's clock is checked against ``now``; the office reports for any unit."""

    now: datetime
    caller_is_office: bool
    #: The named post's state, when the report names a post id (INITIAL if unknown).
    post: PostState | None = None


@dataclass(frozen=True, kw_only=True)
class PublicationState(InColumn):
    post_id: str | None = None
    online_at: datetime | None = None
    removed: bool = False


INITIAL = PublicationState()


def evolve(state: PublicationState, event: EventPayload) -> PublicationState:
    if isinstance(event, PostPublished):
        return PublicationState(**placed(event), post_id=event.post_id, online_at=event.online_at)
    if isinstance(event, PublicationRemoved):
        return replace(state, removed=True)
    return state


def _may_report(ctx: Context, unit: str, reported_by: Reporter) -> None:
    if reported_by == "site_reader" and not ctx.caller_is_office:
        raise not_allowed(
            "only the county office reports what its site reading found", "reported_by"
        )
    if not (ctx.caller_is_office or ctx.caller_roles & UNIT_REPORT_ROLES):
        raise not_allowed(
            f"to report publications of {unit} you need the office role or one of "
            f"{', '.join(sorted(UNIT_REPORT_ROLES))} in {unit}",
            "unit",
        )


def check_time(field: str, value: datetime, now: datetime) -> None:
    """A time a reporter gives (online, removed, an imported item's online_at): not later than
    ``now`` by more than ``CLOCK_SKEW``."""
    if value > now + CLOCK_SKEW:
        raise Refusal(
            "invalid",
            "Time in the future",
            f"{field} {value.isoformat()} is later than now ({now.isoformat()})",
            field=field,
        )


def check_url(url: str) -> None:
    """Where an item stands online: an absolute http(s) URL within ``limits.URL_MAX``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > limits.URL_MAX:
        raise Refusal(
            "invalid",
            "Invalid URL",
            f"an absolute http(s) URL of at most {limits.URL_MAX} characters",
            field="url",
        )


def report(cmd: ReportPublication, state: PublicationState, ctx: Context) -> list[PostPublished]:
    known_unit(ctx.unit_kind, cmd.unit)
    _may_report(ctx, cmd.unit, cmd.reported_by)
    if ctx.catalog is None:
        raise RuntimeError("a publication is decided against a column catalog")
    # A publication in a hidden or ill-fitting column is still a fact worth recording; only a
    # column that does not exist at all is a reporting error.
    col = known_column(ctx.catalog, cmd.column)
    if cmd.redated and not col.redatable:
        raise Refusal(
            "invalid",
            "Column items are time-bound",
            f"re-dating (the notice's note 1) applies to non-time-bound columns; {col.name} "
            "needs new content",
            field="redated",
        )
    if state.exists:
        raise Refusal(
            "conflict",
            "Publication exists",
            f"publication {cmd.publication_id} was already reported",
            field="publication_id",
        )
    check_url(cmd.url)
    check_time("online_at", cmd.online_at, ctx.now)
    post_id: str | None = None
    reported_post_id: str | None = None
    if cmd.post_id is not None:
        post = ctx.post
        if post is not None and post.exists:
            if post.unit != cmd.unit:
                raise Refusal(
                    "invalid",
                    "Post of another unit",
                    f"post {cmd.post_id} belongs to {post.unit}, not {cmd.unit}",
                    field="post_id",
                )
            post_id = cmd.post_id
        else:
            reported_post_id = cmd.post_id
    return [
        PostPublished(
            publication_id=cmd.publication_id,
            post_id=post_id,
            unit=cmd.unit,
            column=cmd.column,
            url=cmd.url,
            online_at=cmd.online_at,
            content_digest=cmd.content_digest,
            redated=cmd.redated,
            reported_by=cmd.reported_by,
            reported_post_id=reported_post_id,
        )
    ]


def remove(
    cmd: RemovePublication, state: PublicationState, ctx: Context
) -> list[PublicationRemoved]:
    if not state.exists:
        raise Refusal(
            "not_found",
            "Unknown publication",
            f"no publication {cmd.publication_id}",
            field="publication_id",
        )
    _may_report(ctx, state.unit, "cms")
    if state.removed:
        raise Refusal(
            "conflict",
            "Already removed",
            f"publication {cmd.publication_id} was already removed",
            field="publication_id",
        )
    check_time("removed_at", cmd.removed_at, ctx.now)
    if state.online_at is not None and cmd.removed_at < state.online_at:
        raise Refusal(
            "invalid",
            "Removed before it was online",
            f"removed_at is before online_at ({state.online_at.isoformat()})",
            field="removed_at",
        )
    check_reason(cmd.reason, ctx.today)
    return [
        PublicationRemoved(
            publication_id=cmd.publication_id,
            post_id=state.post_id,
            unit=state.unit,
            column=state.column,
            removed_at=cmd.removed_at,
            reason=cmd.reason,
        )
    ]
