"""Helpers for tests that drive intake: the demo directory and what intake recorded.

Other services react to intake's events with events of their own (freshness re-dates columns
when a publication arrives, say), so "a rejected request recorded nothing" is checked on
intake's own event types, not on the stream's length.
"""

from __future__ import annotations

from typing import Any

from gongkai.eventlog import EventLog
from gongkai.events import Envelope
from gongkai_demo.county import DEMO, DemoDirectory, demo_token, seed_demo
from gongkai_intake.service import IntakeService

INTAKE_TYPES = frozenset(cls.event_type for cls in IntakeService.owns)


async def intake_events_after(evlog: EventLog, seq: int) -> list[Envelope[Any]]:
    """Every event intake recorded after stream sequence ``seq``."""
    if await evlog.last_sequence() <= seq:
        return []
    return [
        rec.envelope
        async for rec in evlog.replay(from_seq=seq + 1)
        if rec.envelope.type in INTAKE_TYPES
    ]


__all__ = [
    "DEMO",
    "INTAKE_TYPES",
    "DemoDirectory",
    "demo_token",
    "intake_events_after",
    "seed_demo",
]
