"""Builders the tests share: a decider's history as the log would hand it over."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gongkai import subjects
from gongkai.eventlog import RecordedEvent
from gongkai.events import SYSTEM_ACTOR, Actor, EventPayload, new_event

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
