"""An obligation the read model holds: an event accountability owes, not yet in the log.

The fold finds it (a verdict, a case to close, a finding answered, an alert) and keeps it in
the ``todo`` table under the command id that will discharge it; ``decide`` turns it into the
event; when that event comes back through the log the fold strikes the obligation out. The
payload is the event's own contract type; the row keeps it as plain JSON (dates and times in
ISO form with their offsets, as the log's readers print them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from gongkai.causality import Cause
from gongkai.events import EventPayload
from gongkai.events.envelope import REGISTRY
from gongkai_accountability.domain.tables import Todo


@dataclass(frozen=True, slots=True)
class Pending:
    command_id: str
    #: The unit it concerns ("" for an integrity alert): the row's filter column.
    unit: str
    aggregate_id: str
    payload: EventPayload
    #: The event whose fold found the obligation: the new event's cause (gongkai.causality).
    #: The fold's rows set it (``fold._Caused``); None in rows written before it was kept.
    cause: Cause | None = None

    def todo(self) -> Todo:
        """As the ``todo`` table keeps it (the command id is its key)."""
        return Todo(
            self.unit,
            self.payload.event_type,
            self.aggregate_id,
            _plain(self.payload.model_dump(exclude_none=True)),
            (self.cause.event_id, self.cause.correlation_id) if self.cause else None,
        )

    @classmethod
    def of(cls, command_id: str, todo: Todo) -> Pending:
        payload = REGISTRY.payload_class(todo.event).model_validate(todo.payload)
        return cls(
            command_id, todo.unit, todo.aggregate_id, payload,
            Cause(*todo.cause) if todo.cause else None,
        )


def _plain(value: Any) -> Any:
    # Not model_dump(mode="json"): it prints UTC as "Z", and rows written before kept
    # isoformat's "+00:00"; the same obligation must encode the same on every path.
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value
