"""Attachment 2's ✓/×: a unit keeps or hides a column.

``decide_visibility`` is the rule; ``VISIBILITY`` the decider the runner takes, its state the
column's last ✓/× in the log (``Decided``) and its command the tick with the facts it is
judged against (the unit as the directory knows it, the catalog).
"""

from __future__ import annotations

from dataclasses import dataclass

from gongkai.decider import Decider
from gongkai.events import EventPayload
from gongkai.events.contracts.freshness import ColumnHidden, ColumnKept
from gongkai.logtypes import RecordedEvent
from gongkai.refusal import Refusal
from gongkai.rules import Catalog
from gongkai_freshness.domain.state import UnitInfo

#: Who may tick Attachment 2 for a unit: its principal leader or its reviewing staff (the unit
#: seals the table), or the county office that receives it (room 248).
OFFICE_ROLE = "office"


@dataclass(frozen=True)
class SetVisibility:
    unit: str
    column: str
    keep: bool
    reason: str


def decide_visibility(
    cmd: SetVisibility,
    unit: UnitInfo | None,
    decided: bool | None,
    catalog: Catalog,
) -> list[EventPayload]:
    """The event recording the tick, or nothing if the unit already ticked it so.

    ``decided``: the column's last ✓ (True) or × (False), None if never ticked.
    """
    if unit is None:
        raise Refusal(
            "not_found", "Unknown unit", f"no unit {cmd.unit!r} is registered", field="code"
        )
    meta = catalog.column(cmd.column)
    if meta is None:
        raise Refusal(
            "not_found",
            "Unknown column",
            f"column {cmd.column!r} is not in catalog {catalog.id}",
            field="column",
        )
    if cmd.keep and not meta.exists_for(unit.kind):
        kinds = ", ".join(sorted(meta.unit_kinds or ()))
        raise Refusal(
            "invalid",
            "Column not for this unit",
            f"column {cmd.column!r} ({meta.zh}) is for units of kind {kinds}; "
            f"{cmd.unit} is a {unit.kind}",
            field="column",
        )
    reason = cmd.reason.strip()
    if not reason:
        raise Refusal(
            "invalid", "Reason required", "say why the column is kept or hidden", field="reason"
        )
    if decided == cmd.keep:
        return []
    if cmd.keep:
        return [ColumnKept(unit=cmd.unit, column=cmd.column, reason=reason)]
    return [ColumnHidden(unit=cmd.unit, column=cmd.column, reason=reason)]


@dataclass(frozen=True)
class Decided:
    keep: bool | None = None


@dataclass(frozen=True)
class Tick:
    cmd: SetVisibility
    unit: UnitInfo | None
    catalog: Catalog


def _evolve(state: Decided, rec: RecordedEvent) -> Decided:
    p = rec.envelope.payload
    if isinstance(p, ColumnKept | ColumnHidden):
        return Decided(isinstance(p, ColumnKept))
    return state


VISIBILITY: Decider[Decided, Tick] = Decider(
    "column",
    lambda _id: Decided(),
    _evolve,
    lambda state, t: decide_visibility(t.cmd, t.unit, state.keep, t.catalog),
)


def acting_role(roles: set[str], is_office: bool) -> str | None:
    """The role a caller ticks Attachment 2 in, or None if they may not."""
    for role in ("leader", "staff"):
        if role in roles:
            return role
    return OFFICE_ROLE if is_office else None
