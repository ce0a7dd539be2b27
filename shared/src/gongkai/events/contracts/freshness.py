"""Events owned by freshness: column deadlines passing and being met."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from gongkai.events.envelope import EventPayload, event


@event
class ColumnStale(EventPayload):
    """A unit's column passed its due date under one rule of one rule set."""

    event_type = "ColumnStale"
    aggregate_type = "column"

    unit: str
    column: str
    rule_set: str
    rule: str
    rule_kind: str
    last_publication_at: datetime | None = None
    due_date: date
    overdue_days: int = Field(ge=0)
    provisional: bool = False
    post_id: str | None = None
