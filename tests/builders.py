"""Builders the tests share: events as intake records them, a decider's history as the log
would hand it over."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from gongkai import subjects
from gongkai.eventlog import RecordedEvent
from gongkai.events import SYSTEM_ACTOR, Actor, Envelope, EventPayload, new_event
from gongkai.events.contracts.intake import PostSubmitted

T0 = datetime(2026, 3, 2, 1, tzinfo=UTC)


def history(
    aggregate_id: str, *payloads: EventPayload, actor: Actor = SYSTEM_ACTOR, at: datetime = T0
) -> list[RecordedEvent]:
    """``payloads`` recorded in order on one aggregate (sequences 1, 2, …), one command each."""
    out: list[RecordedEvent] = []
    for i, p in enumerate(payloads, 1):
        env: Any = new_event(p, aggregate_id=aggregate_id, actor=actor, command_id=f"c{i}",
                             recorded_at=at)
        subject = subjects.event_subject(env.aggregate_type, aggregate_id, env.type)
        out.append(RecordedEvent(i, subject, i, env, env.to_json()))
    return out


#: The content digest a test post carries when nothing checks it against the text.
DIGEST = "a" * 64


def post_submitted(
    *,
    unit: str = "finance",
    column: str = "normative_documents",
    title: str = "t",
    body: str = "b",
    information_date: date = date(2026, 3, 1),
    content_digest: str = DIGEST,
    **more: Any,
) -> PostSubmitted:
    """A post as intake records it: produced by the unit, for its website.

    A test names only the fields it is about; ``more`` sets the others (``important_kind``,
    ``screening``, …).
    """
    return PostSubmitted(
        unit=unit,
        column=column,
        title=title,
        body=body,
        origin="produced",
        channel="website",
        information_date=information_date,
        content_digest=content_digest,
        **more,
    )


def submission(
    post: str, command: str, *, actor: Actor, title: str = "t", at: datetime = T0, **more: Any
) -> Envelope[PostSubmitted]:
    """Post ``post``'s submission as command ``command`` records it (its event id follows from
    the command id, so the same call twice is one event to the log), ready to append."""
    env: Envelope[PostSubmitted] = new_event(
        post_submitted(title=title, **more),
        aggregate_id=post,
        actor=actor,
        command_id=command,
        recorded_at=at,
    )
    return env
