"""What freshness knows about every unit's columns, built from events alone: immutable values.

Per (unit, column): the unit's keep/hide decision, the items online, the obligations still
running (a post to put online within N working days, a change of leaders' duties), and the
ledger of deadline transitions already recorded (so each is recorded once). Everything here is
facts; deadlines are computed from it in ``evaluation``.

Every record is frozen and its mappings are never written once built: an event makes new
records (``register.evolve``) and the old ones stay as they were, so a reader holding one sees
a consistent column however many events are folded in meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from types import MappingProxyType, MemberDescriptorType
from typing import Any, Literal, TypeVar

from gongkai.causality import Cause
from gongkai.events import Actor

HiddenBy = Literal["unit", "emptied", "not_applicable", "default", "unregistered"]
SlotKey = tuple[str, str, str]  # (rule set, rule, subject: "" | trigger id | year)
ColumnKey = tuple[str, str]  # (unit, column)
HistoryKey = tuple[str, str, date]  # (rule set, rule, due date) of a past periodic deadline

#: The one empty mapping every new record starts with (read-only, so safely shared).
EMPTY: Mapping[Any, Any] = MappingProxyType({})


def _empty() -> Mapping[Any, Any]:
    return EMPTY


R = TypeVar("R")
_KEEP = object()
_REPLACERS: dict[type[Any], Callable[..., Any]] = {}


def replace(record: R, /, **changes: Any) -> R:
    """``dataclasses.replace`` for the records of this package, several times faster.

    Replaying a county's log builds a few new records per event, 10^6 events at a restart:
    ``dataclasses.replace`` (~10 µs: it walks the fields and goes through the frozen
    ``__init__``) was most of the cost. The replacer of each class is generated once, as
    ``dataclasses`` generates ``__init__``: one assignment per slot, nothing looked up.
    """
    cls = type(record)
    fn = _REPLACERS.get(cls)
    if fn is None:
        fn = _REPLACERS[cls] = _replacer(cls)
    return fn(record, **changes)  # type: ignore[no-any-return]


def _replacer(cls: type[Any]) -> Callable[..., Any]:
    names = [f.name for f in fields(cls)]
    scope: dict[str, Any] = {
        "_KEEP": _KEEP, "_new": object.__new__, "_cls": cls, "_setattr": object.__setattr__
    }
    lines = [f"def replace(old, *, {', '.join(f'{n}=_KEEP' for n in names)}):"]
    lines.append("    new = _new(_cls)")
    for n in names:
        # A slot's own descriptor sets it without looking the name up on the class each
        # time: a quarter faster than object.__setattr__ on a 20-field record.
        slot = vars(cls).get(n)
        if isinstance(slot, MemberDescriptorType):
            scope[f"_set_{n}"] = slot.__set__
            lines.append(f"    _set_{n}(new, old.{n} if {n} is _KEEP else {n})")
        else:
            lines.append(f"    _setattr(new, {n!r}, old.{n} if {n} is _KEEP else {n})")
    lines.append("    return new")
    exec("\n".join(lines), scope)  # noqa: S102 - code built from the class's own field names
    return scope["replace"]  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class UnitInfo:
    code: str
    name: str
    kind: str
    contact_name: str
    contact_mobile: str
    #: The day gongkai first heard of the unit: deadlines that fell before it are not its lapses
    #: on this platform.
    registered_on: date


@dataclass(frozen=True, slots=True)
class Decision:
    """The unit's latest Attachment 2 tick for a column."""

    keep: bool
    reason: str
    actor: Actor
    at: datetime
    event_id: str


@dataclass(frozen=True, slots=True)
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
    #: The event the obligation runs from (the submission, the revision that re-dated it, the
    #: change of duties): the cause of its due-soon and stale events (gongkai.causality).
    cause: Cause | None = None
    #: The event that met or withdrew it: the cause of the refresh that closes its episode.
    settled_by: Cause | None = None


@dataclass(frozen=True, slots=True)
class Slot:
    """What has been recorded for one deadline slot: its current episode and the last closed."""

    key: str
    due_soon: bool = False
    stale_event: str | None = None
    due: date | None = None
    post_id: str | None = None
    closed: str | None = None


@dataclass(frozen=True, slots=True)
class ColumnState:
    unit: str
    column: str
    decision: Decision | None = None
    #: publication id -> online time of the items online now (a hash trie once an event has
    #: put one: it grows with every publication, and each new record shares it).
    live: Mapping[str, datetime] = field(default_factory=_empty)
    ever_published: bool = False
    last_publication: datetime | None = None
    last_publication_on: date | None = None
    first_publication_by_year: Mapping[int, date] = field(default_factory=_empty)
    triggers: Mapping[str, Trigger] = field(default_factory=_empty)
    visible: bool = False
    hidden_by: HiddenBy | None = "unregistered"
    #: Bumped each time the column becomes visible: a deadline missed again after the column
    #: was hidden and kept is a new episode.
    epoch: int = 0
    visible_since: date | None = None
    slots: Mapping[SlotKey, Slot] = field(default_factory=_empty)
    #: The event that last moved ``last_publication`` (an item online, or removed): what a
    #: periodic deadline runs from, and what put a stale episode right.
    basis: Cause | None = None
    #: The event that last showed or hid the column: what a blank or dated deadline runs
    #: from, and what closed an episode by hiding the column.
    shown_by: Cause | None = None
    #: publication id -> online time of the items imported from the site's history
    #: (``PublicationImported``): what the history before the unit joined is decided on. A
    #: hash trie, as ``live``.
    imported: Mapping[str, datetime] = field(default_factory=_empty)
    #: (rule set, rule, due date) -> ``until`` of each ``ColumnWasStale`` recorded (the last).
    history: Mapping[HistoryKey, date] = field(default_factory=_empty)
    #: Stream sequence of the last event of this column's aggregate (optimistic concurrency).
    version: int = 0

    @property
    def key(self) -> ColumnKey:
        return (self.unit, self.column)

    @property
    def aggregate_id(self) -> str:
        return f"{self.unit}--{self.column}"

    @property
    def blank(self) -> bool:
        return self.visible and not self.ever_published


@dataclass(frozen=True, slots=True)
class PostRef:
    """Where a post's obligations live, and what its latest one was."""

    unit: str
    column: str
    triggers: int = 0
    last_on: date | None = None
    published: bool = False
    withdrawn: bool = False
