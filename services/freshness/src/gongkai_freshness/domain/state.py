"""What freshness knows about every unit's columns, built from events alone.

Per (unit, column): the unit's keep/hide decision, the items online, the obligations still
running (a post to put online within N working days, a change of leaders' duties), and the
ledger of deadline transitions already recorded (so each is recorded once). Everything here is
facts; deadlines are computed from it in ``evaluation``.

The state is mutated in place for speed (a county has tens of thousands of columns and the
evaluation budget is one second), but only by ``ColumnRegister.evolve``, and it reads nothing but
the event it is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from gongkai.events import Actor

HiddenBy = Literal["unit", "emptied", "not_applicable", "default", "unregistered"]
SlotKey = tuple[str, str, str]  # (rule set, rule, subject: "" | trigger id | year)


@dataclass(slots=True)
class UnitInfo:
    code: str
    name: str
    kind: str
    contact_name: str
    contact_mobile: str
    #: The day gongkai first heard of the unit: deadlines that fell before it are not its lapses
    #: on this platform.
    registered_on: date


@dataclass(slots=True)
class Decision:
    """The unit's latest Attachment 2 tick for a column."""

    keep: bool
    reason: str
    actor: Actor
    at: datetime
    event_id: str


@dataclass(slots=True)
class Trigger:
    """An obligation to put something online within N working days of ``on``."""

    id: str
    kind: Literal["post", "leadership"]
    on: date
    post_id: str | None = None
    met_on: date | None = None
    publication_id: str | None = None
    withdrawn: bool = False
    #: Met or withdrawn while the column was hidden: hidden columns owe nothing.
    exempt: bool = False


@dataclass(slots=True)
class Slot:
    """What has been recorded for one deadline slot: its current episode and the last closed."""

    key: str
    due_soon: bool = False
    stale_event: str | None = None
    due: date | None = None
    post_id: str | None = None
    closed: str | None = None


@dataclass(slots=True)
class ColumnState:
    unit: str
    column: str
    decision: Decision | None = None
    #: publication id -> online time of the items online now.
    live: dict[str, datetime] = field(default_factory=dict)
    ever_published: bool = False
    last_publication: datetime | None = None
    last_publication_on: date | None = None
    first_publication_by_year: dict[int, date] = field(default_factory=dict)
    triggers: dict[str, Trigger] = field(default_factory=dict)
    visible: bool = False
    hidden_by: HiddenBy | None = "unregistered"
    #: Bumped each time the column becomes visible: a deadline missed again after the column
    #: was hidden and kept is a new episode.
    epoch: int = 0
    visible_since: date | None = None
    slots: dict[SlotKey, Slot] = field(default_factory=dict)
    #: Stream sequence of the last event of this column's aggregate (optimistic concurrency).
    version: int = 0
    #: Deadlines computed from the above, for one year; dropped by every change.
    cache: tuple[int, tuple[object, ...]] | None = None

    @property
    def aggregate_id(self) -> str:
        return f"{self.unit}--{self.column}"

    @property
    def blank(self) -> bool:
        return self.visible and not self.ever_published


@dataclass(slots=True)
class PostRef:
    """Where a post's obligations live, and what its latest one was."""

    unit: str
    column: str
    triggers: int = 0
    last_on: date | None = None
    published: bool = False
    withdrawn: bool = False
