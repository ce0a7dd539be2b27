"""Causation and correlation: one rule for every producer (docs/events.md, "Causality").

* ``causation_id`` is the id of the event that led gongkai to record this one: the event a
  reaction reacted to, the fact whose deadline passed, the signature a conclusion follows, or
  the aggregate's previous event for a command that continues an aggregate's story (a post's
  revision, a finding's confirmation). It is null only on events of a command that answers no
  event (a person or a tool acting: a submission, a signature, a directory load) and on the two
  events about the log itself (``IntegrityAlert``, ``LogCheckpoint``).
* ``correlation_id`` is the id of the first event of the command at the root of that chain of
  causes: always an event id (a UUID) that names an event of the log. An event with a cause
  carries its cause's correlation id; an event without one carries its own command's first
  event id (its own id when it is that first event).

Event ids are derived from command ids (``first_event_id``), so a retried command or a reaction
decided again yields the same ids and the same correlation: replays record nothing new.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from gongkai.events.envelope import EVENT_ID_NAMESPACE

__all__ = ["LOG_EVENTS", "Cause", "caused_by", "event_id_of", "first_event_id"]

#: Event types about the log itself rather than a fact in it: they start their own chain.
LOG_EVENTS: frozenset[str] = frozenset({"IntegrityAlert", "LogCheckpoint"})


def event_id_of(command_id: str, index: int = 0) -> str:
    """The id ``new_event`` gives the ``index``-th event of ``command_id``."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{command_id}/{index}"))


def first_event_id(command_id: str) -> str:
    """The correlation id a command that answers no event starts: its first event's id."""
    return event_id_of(command_id, 0)


class _HasIds(Protocol):
    @property
    def event_id(self) -> str: ...

    @property
    def correlation_id(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Cause:
    """What a new event needs of the event that caused it: its id and its correlation id."""

    event_id: str
    correlation_id: str

    @classmethod
    def of(cls, event: _HasIds) -> Cause:
        """The cause an event (an ``Envelope``, or anything with both ids) makes."""
        return cls(event.event_id, event.correlation_id)


def caused_by(cause: Cause | _HasIds | None) -> dict[str, Any]:
    """``new_event``'s causation and correlation arguments for an event caused by ``cause``.

    None: the event answers no event, and ``new_event`` correlates it with its own command.
    """
    if cause is None:
        return {"causation_id": None, "correlation_id": None}
    return {"causation_id": cause.event_id, "correlation_id": cause.correlation_id}
