"""Events owned by freshness: column deadlines passing and being met, and keep/hide choices.

All of them belong to the aggregate ``column`` with id ``<unit>--<column>`` (column codes have
no hyphen, so the split is unambiguous): one filter reads a unit's column's whole history.
The id does not name a rule set: every loaded rule set (the notice's ``wenan-2018``, the
national ``national-2019``) judges the same column, each on its own, so one column's history
holds the deadlines of every rule set, told apart by ``rule_set`` and ``rule``.

A deadline's life is an *episode* (``episode`` names it, unique within unit, column, rule set
and rule): at most one ``ColumnDueSoon``, at most one ``ColumnStale``, and, for every
``ColumnStale``, exactly one ``ColumnRefreshed`` that closes it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from gongkai.events.envelope import REGISTRY, EventPayload, event

RuleKindName = Literal["periodic", "triggered", "dated", "leadership", "blank"]


def column_aggregate_id(unit: str, column: str) -> str:
    """The aggregate id of one unit's column."""
    return f"{unit}--{column}"


REGISTRY.aggregate(
    "column",
    id_shape="`<unit>--<column>` (column codes have no hyphen); no rule set in it: every rule "
    "set's deadlines of the column share it",
    about="one unit's column of Attachment 2: its keep/hide choice and its deadlines under "
    "every rule set",
)


@event
class ColumnStale(EventPayload):
    """A unit's column passed its due date under one rule of one rule set.

    Recorded per rule set: a column late under both the notice's rules and the national lines
    gets one ``ColumnStale`` for each, on the same aggregate id, each closed by its own
    ``ColumnRefreshed`` (same ``rule_set``, ``rule`` and ``episode``).
    """

    event_type = "ColumnStale"
    aggregate_type = "column"
    emitted_when = (
        "freshness's daily evaluation (or the event that settles the column) finds a deadline "
        "passed unmet; once per rule set, rule and episode"
    )

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
    #: Names the deadline's episode; the ColumnRefreshed that closes it carries the same name.
    episode: str = ""
    #: Triggered deadlines: the date the information was formed, issued or changed.
    triggered_on: date | None = None
    #: Set when the deadline had already been met, late, when this was recorded (the item went
    #: online after the due date before an evaluation saw it stale): the day it went online.
    met_on: date | None = None


class _EpisodeEvent(EventPayload):
    """What names one deadline's episode: the fields a warning and its close share.

    Not an event itself (not registered); its fields come first in each event's schema.
    """

    aggregate_type = "column"

    unit: str
    column: str
    rule_set: str
    rule: str
    rule_kind: RuleKindName
    episode: str
    due_date: date


@event
class ColumnDueSoon(_EpisodeEvent):
    """A unit's column reaches its due date under one rule within the warning window."""

    event_type = "ColumnDueSoon"
    emitted_when = (
        "at most `warn_working_days` working days remain to a deadline not met; once per rule "
        "set, rule and episode"
    )
    working_days_left: int = Field(ge=0)
    provisional: bool = False
    last_publication_at: datetime | None = None
    post_id: str | None = None
    triggered_on: date | None = None


@event
class ColumnRefreshed(_EpisodeEvent):
    """A stale episode ended: the item went online, the column was hidden, or the post that
    started the deadline was withdrawn."""

    event_type = "ColumnRefreshed"
    emitted_when = (
        "the item a stale deadline waited for goes online, the column is hidden, or the post "
        "that started the deadline is withdrawn; exactly once per ColumnStale"
    )
    resolution: Literal["published", "hidden", "withdrawn"]
    #: The ColumnStale this closes.
    stale_event_id: str | None = None
    last_publication_at: datetime | None = None
    post_id: str | None = None
    #: "published": the day the item went online, and how many days after the due date.
    met_on: date | None = None
    late_days: int | None = Field(default=None, ge=0)


@event
class ColumnHidden(EventPayload):
    """A unit ticked × for a column in Attachment 2: it does not match the unit's functions.

    Who decided is the envelope's actor. A hidden column is exempt from every deadline.
    """

    event_type = "ColumnHidden"
    aggregate_type = "column"
    emitted_when = (
        "the unit's leader or staff, or the office, hide the column "
        "(PUT /units/{code}/columns/{column}/visibility)"
    )

    unit: str
    column: str
    reason: str = Field(min_length=1, max_length=500)


@event
class ColumnKept(EventPayload):
    """A unit ticked ✓ for a column in Attachment 2 (again): its deadlines apply."""

    event_type = "ColumnKept"
    aggregate_type = "column"
    emitted_when = "the unit's leader or staff, or the office, keep the column (the same route)"

    unit: str
    column: str
    reason: str = Field(min_length=1, max_length=500)


@event
class ColumnWasStale(EventPayload):
    """In the imported history, before the unit joined gongkai, a column was stale under one
    periodic rule: from the day after ``due_date`` until ``until`` (the day the next item went
    online, or the day the unit joined if none did before).

    History, not a live episode: freshness decides it from ``PublicationImported`` items, its
    business time is the first stale day, and it opens no supervision case and records no
    violation (nobody was watching). The same episode (unit, column, rule set, rule,
    ``due_date``) may be recorded again with another ``until`` when a later import adds items:
    the latest in the log stands. ``until == due_date + 1 day`` or earlier: not stale after all.
    """

    event_type = "ColumnWasStale"
    aggregate_type = "column"
    emitted_when = (
        "freshness decides imported history: a periodic deadline before the unit joined passed "
        "unmet; again, with another `until`, when a later import changes the episode"
    )

    unit: str
    column: str
    rule_set: str
    rule: str
    due_date: date
    until: date
    #: The imported item the deadline ran from (None: the episode was unmade).
    last_publication_at: datetime | None = None
