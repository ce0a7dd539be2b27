"""What an intake command is judged against besides its aggregate's own history, and the part
of an aggregate's state that places it in a unit's section.

The application layer gathers these facts (today's date in Asia/Shanghai, the caller's roles in
the unit the command concerns, what the directory and the catalog say about that unit) before
it calls a pure decide function; each aggregate's ``Context`` adds what only it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol, TypedDict

from gongkai.refusal import Refusal
from gongkai_intake.domain.columns import ColumnCatalog


@dataclass(frozen=True, kw_only=True)
class Caller:
    """Who asks, and on which day."""

    today: date
    #: The caller's active roles in the unit the command concerns (none: a stranger to it).
    caller_roles: frozenset[str] = frozenset()


def not_allowed(detail: str, field: str | None = None) -> Refusal:
    """The refusal of a caller without the role a command needs (403): every such refusal of
    intake has this kind and title; ``detail`` says which role, where."""
    return Refusal("forbidden", "Not allowed", detail, field=field)


@dataclass(frozen=True, kw_only=True)
class UnitFacts(Caller):
    """A caller, and what the directory and the catalog say about the unit a command names."""

    #: The unit's kind; None if the directory does not know the unit.
    unit_kind: str | None = None
    catalog: ColumnCatalog | None = None


@dataclass(frozen=True, kw_only=True)
class InColumn:
    """An aggregate that, once it exists, belongs to one column of one unit's section: a post,
    an item seen online."""

    exists: bool = False
    unit: str = ""
    column: str = ""


class Placing(Protocol):
    """An aggregate's first event: it names the unit and the column (PostSubmitted,
    PostPublished)."""

    @property
    def unit(self) -> str: ...

    @property
    def column(self) -> str: ...


class Placed(TypedDict):
    """The ``InColumn`` fields an aggregate's first event sets, typed so that the state's
    constructor still checks each of them and each of the aggregate's own."""

    exists: bool
    unit: str
    column: str


def placed(event: Placing) -> Placed:
    """The aggregate exists, in the unit and column its first event names."""
    return Placed(exists=True, unit=event.unit, column=event.column)
