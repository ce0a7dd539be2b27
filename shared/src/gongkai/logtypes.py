"""The event log's values and errors, free of any client: what a decider and its runner touch.

``gongkai.eventlog`` (the JetStream client) and ``gongkai.memlog`` (the in-memory log) both
speak in these; a domain module importing them pulls in no NATS client.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gongkai import subjects
from gongkai.events.envelope import Envelope


class EventLogError(Exception):
    """The event log refused or failed an operation."""


class ConcurrencyConflict(EventLogError):
    """Another writer appended to the aggregate first; nothing of this append was recorded."""

    def __init__(self, aggregate: str, expected: int, detail: str = "") -> None:
        super().__init__(f"{aggregate}: expected last sequence {expected}; {detail}".strip())
        self.aggregate = aggregate
        self.expected = expected


@dataclass(frozen=True, slots=True)
class AppendResult:
    sequences: tuple[int, ...]
    duplicate: bool = False

    @property
    def last(self) -> int:
        return self.sequences[-1] if self.sequences else 0


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as it sits in the log: its stream sequence, subject, time and envelope."""

    seq: int
    subject: str
    stored_ns: int
    envelope: Envelope[Any]
    data: bytes = field(repr=False)


def one_aggregate(events: Sequence[Envelope[Any]]) -> str:
    """The subject filter of the one aggregate an append's events belong to."""
    at, aid = events[0].aggregate_type, events[0].aggregate_id
    if any(e.aggregate_type != at or e.aggregate_id != aid for e in events):
        raise ValueError("one append records events of one aggregate")
    return subjects.aggregate_filter(at, aid)
