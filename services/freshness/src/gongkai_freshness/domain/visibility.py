"""Attachment 2's ✓/×: a unit keeps or hides a column, and whether a column shows at all.

``decide_visibility`` is the rule for a tick; ``VISIBILITY`` the decider the runner takes, its
state the column's last ✓/× in the log (``Decided``) and its command the tick with the facts it
is judged against (the unit as the directory knows it, the catalog). ``hidden_by`` is the rule
for what the public site shows: the tick, the catalog's default, and the notice's note 2
(deleting every item of a column hides it); ``show_or_hide`` applies it to a column.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from gongkai.causality import Cause
from gongkai.decider import Decider
from gongkai.events import EventPayload
from gongkai.events.contracts.freshness import ColumnHidden, ColumnKept
from gongkai.logtypes import RecordedEvent
from gongkai.refusal import Refusal
from gongkai.rules import Catalog, Column
from gongkai_freshness.domain.state import ColumnState, HiddenBy, UnitInfo, replace

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


def hidden_by(col: ColumnState, unit: UnitInfo | None, meta: Column) -> HiddenBy | None:
    """Why the column is hidden on the unit's section of the site; None when it shows.

    The first that applies: a unit gongkai does not know has no section; the unit's × hides;
    an emptied column hides itself (note 2), even one ticked ✓; a column not meant for units
    of this kind never shows; ✓ shows a column the catalog hides by default.
    """
    if unit is None:
        return "unregistered"
    if col.decision is not None and not col.decision.keep:
        return "unit"
    if col.ever_published and not col.live:
        return "emptied"
    if not meta.exists_for(unit.kind):
        return "not_applicable"
    if col.decision is not None or not meta.hidden_by_default:
        return None
    return "default"


def show_or_hide(
    col: ColumnState, unit: UnitInfo | None, meta: Column, on: date, by: Cause | None = None
) -> ColumnState:
    """The column as ``hidden_by`` has it on ``on``; the same record when nothing changes.

    Showing again starts a new epoch (a deadline missed after the column was hidden and kept
    again is a new episode) from ``on``. ``by``: the event folded, kept as ``shown_by`` when
    the column shows or hides.
    """
    why = hidden_by(col, unit, meta)
    visible = why is None
    if visible and not col.visible:
        return replace(
            col, visible=True, hidden_by=None, epoch=col.epoch + 1, visible_since=on, shown_by=by
        )
    if visible == col.visible and why == col.hidden_by:
        return col
    return replace(col, visible=visible, hidden_by=why, shown_by=by)
