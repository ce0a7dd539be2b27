"""The post aggregate: submission, content revisions, withdrawal (Attachment 1's fields).

decide/evolve are pure. The application layer gathers the facts a decision needs (today's
date, the unit's kind, the caller's roles in the unit, the column catalog and the unit's hidden
columns) into a context, because those live outside the post's own history.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Any, TypedDict

from gongkai.events import EventPayload
from gongkai.events.contracts.intake import (
    Attachment,
    Channel,
    ImportantKind,
    MaskedSpan,
    Origin,
    PostRevised,
    PostSubmitted,
    PostWithdrawn,
    post_content_digest,
)
from gongkai.refusal import Refusal
from gongkai_intake.domain.columns import check_column, known_unit
from gongkai_intake.domain.content import (
    check_content,
    check_not_future,
    check_payload_size,
    check_reason,
    content_fields,
    screen_post,
)
from gongkai_intake.domain.context import InColumn, UnitFacts, not_allowed, placed

#: 谁制作: the handler (承办人) drafts; the unit's reviewing staff may draft as well. Leaders and
#: secrecy officers sign in review, so letting them submit would invite self-approval.
SUBMIT_ROLES = frozenset({"maker", "staff"})
WITHDRAW_ROLES = frozenset({"maker", "staff", "leader"})

IMPORTANT_LABEL = {
    "normative_document": "a normative document",
    "announcement": "an announcement",
    "major_decision": "a major decision",
}


# ---- commands --------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmitPost:
    post_id: str
    unit: str
    column: str
    title: str
    body: str
    information_date: date
    attachments: tuple[Attachment, ...] = ()
    #: Attachment 1's origin and channel; None when the caller left them out.
    origin: Origin | None = None
    source: str | None = None
    channel: Channel | None = None
    important_kind: ImportantKind | None = None
    maker_unsure: bool = False


@dataclass(frozen=True)
class RevisePost:
    post_id: str
    title: str
    body: str
    information_date: date
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class WithdrawPost:
    post_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class Context(UnitFacts):
    """Facts from outside the post's history that a decision depends on (a submission's unit
    kind and catalog; the caller's roles in the post's unit)."""

    #: The unit's keep/hide choice for the column; None if it never chose (catalog default).
    column_hidden: bool | None = None


# ---- state -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PostState(InColumn):
    title: str = ""
    content_version: int = 0
    content_digest: str = ""
    important_kind: str | None = None
    maker_unsure: bool = False
    needs_secrecy_review: bool = False
    withdrawn: bool = False
    #: Where screening found personal data in the current version (masked when read).
    spans: tuple[MaskedSpan, ...] = ()


INITIAL = PostState()


class _Content(TypedDict):
    """What a content version sets, typed so that ``PostState`` checks each field."""

    title: str
    content_version: int
    content_digest: str
    needs_secrecy_review: bool
    spans: tuple[MaskedSpan, ...]


def _content(event: PostSubmitted | PostRevised) -> _Content:
    """What a content version sets, the first (a submission) or a later one (a revision)."""
    return _Content(
        title=event.title,
        content_version=event.content_version,
        content_digest=event.content_digest,
        needs_secrecy_review=event.screening.needs_secrecy_review,
        spans=event.screening.spans,
    )


def evolve(state: PostState, event: EventPayload) -> PostState:
    if isinstance(event, PostSubmitted):
        return PostState(
            **placed(event),
            important_kind=event.important_kind,
            maker_unsure=event.maker_unsure,
            **_content(event),
        )
    if isinstance(event, PostRevised):
        return replace(state, **_content(event))
    if isinstance(event, PostWithdrawn):
        return replace(state, withdrawn=True)
    return state


# ---- decisions -------------------------------------------------------------------------


def _require_role(ctx: Context, allowed: frozenset[str], unit: str, action: str) -> None:
    if not ctx.caller_roles & allowed:
        roles = ", ".join(sorted(allowed))
        raise not_allowed(f"to {action} you need one of the roles {roles} in unit {unit}", "unit")


def review_form(cmd: SubmitPost) -> tuple[Origin, Channel]:
    """Attachment 1, the review form: a normative document, an announcement or a major decision
    states its origin and its channel; a reprint names its source, and only a reprint does.
    The (origin, channel) recorded: an ordinary post that states neither is produced, for the
    website."""
    if cmd.important_kind is not None:
        label = IMPORTANT_LABEL[cmd.important_kind]
        for name, value in (("origin", cmd.origin), ("channel", cmd.channel)):
            if value is None:
                raise Refusal(
                    "invalid",
                    "Review form incomplete",
                    f"{label} needs the confidentiality review form: state its {name} "
                    "(Attachment 1)",
                    field=name,
                )
    origin: Origin = cmd.origin or "produced"
    if origin == "reprinted" and not (cmd.source and cmd.source.strip()):
        raise Refusal(
            "invalid", "Source missing", "a reprinted post must name its source", field="source"
        )
    if origin == "produced" and cmd.source is not None:
        raise Refusal(
            "invalid",
            "Source on a produced post",
            "only a reprinted post names a source; leave source out or set origin to reprinted",
            field="source",
        )
    return origin, cmd.channel or "website"


def _version(
    cmd: SubmitPost | RevisePost, number: int, digest: str, today: date, source: str | None = None
) -> dict[str, Any]:
    """What a content version records, the first (a submission) or a later one (a revision):
    the content as given, its number and digest, and what screening found in the text that goes
    online (a reprint's source with it)."""
    fields = content_fields(cmd.title, cmd.body, cmd.attachments, source)
    return {
        "title": cmd.title,
        "body": cmd.body,
        "attachments": cmd.attachments,
        "information_date": cmd.information_date,
        "content_version": number,
        "content_digest": digest,
        "screening": screen_post(fields, today),
    }


def submit(cmd: SubmitPost, state: PostState, ctx: Context) -> list[PostSubmitted]:
    unit_kind = known_unit(ctx.unit_kind, cmd.unit)
    _require_role(ctx, SUBMIT_ROLES, cmd.unit, "submit a post")
    if ctx.catalog is None:
        raise RuntimeError("a submission is decided against a column catalog")
    check_column(
        ctx.catalog, cmd.column, unit=cmd.unit, unit_kind=unit_kind, hidden=ctx.column_hidden
    )
    if state.exists:
        raise Refusal(
            "conflict", "Post exists", f"post {cmd.post_id} was already submitted", field="post_id"
        )
    check_content(cmd.title, cmd.body, cmd.attachments)
    origin, channel = review_form(cmd)
    check_not_future("information_date", cmd.information_date, ctx.today)
    digest = post_content_digest(cmd.title, cmd.body, cmd.attachments)
    event = PostSubmitted(
        unit=cmd.unit,
        column=cmd.column,
        origin=origin,
        source=cmd.source,
        channel=channel,
        important_kind=cmd.important_kind,
        maker_unsure=cmd.maker_unsure,
        **_version(cmd, 1, digest, ctx.today, source=cmd.source),
    )
    check_payload_size(event)
    return [event]


def _existing(state: PostState, post_id: str) -> None:
    if not state.exists:
        raise Refusal("not_found", "Unknown post", f"no post {post_id}", field="post_id")
    if state.withdrawn:
        raise Refusal(
            "conflict", "Post withdrawn", f"post {post_id} was withdrawn", field="post_id"
        )


def revise(cmd: RevisePost, state: PostState, ctx: Context) -> list[PostRevised]:
    _existing(state, cmd.post_id)
    _require_role(ctx, SUBMIT_ROLES, state.unit, "revise a post")
    check_content(cmd.title, cmd.body, cmd.attachments)
    check_not_future("information_date", cmd.information_date, ctx.today)
    digest = post_content_digest(cmd.title, cmd.body, cmd.attachments)
    if digest == state.content_digest:
        # A no-op revision would still void any review in progress.
        raise Refusal(
            "invalid",
            "Nothing revised",
            f"the content is identical to version {state.content_version}",
            field="body",
        )
    event = PostRevised(
        unit=state.unit, **_version(cmd, state.content_version + 1, digest, ctx.today)
    )
    check_payload_size(event)
    return [event]


def withdraw(cmd: WithdrawPost, state: PostState, ctx: Context) -> list[PostWithdrawn]:
    _existing(state, cmd.post_id)
    _require_role(ctx, WITHDRAW_ROLES, state.unit, "withdraw a post")
    check_reason(cmd.reason, ctx.today)
    return [PostWithdrawn(unit=state.unit, reason=cmd.reason)]
