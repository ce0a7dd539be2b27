"""What intake needs to know about the column catalog of the rule set in force."""

from __future__ import annotations

from typing import Protocol

from gongkai.refusal import Refusal


class ColumnInfo(Protocol):
    """One column of the catalog (Attachment 2 of the notice, or the operator's rule set)."""

    @property
    def code(self) -> str: ...

    @property
    def name(self) -> str: ...

    #: Unit kinds the column exists for; None means every kind.
    @property
    def unit_kinds(self) -> frozenset[str] | None: ...

    #: The notice's note 1: the latest item is not time-bound and may be re-dated to now.
    @property
    def redatable(self) -> bool: ...

    #: Hidden until the unit keeps it (housing security: only the housing bureau keeps it).
    @property
    def hidden_by_default(self) -> bool: ...


class ColumnCatalog(Protocol):
    """What intake reads of the catalog; ``gongkai.rules.Catalog`` is one."""

    @property
    def rule_set(self) -> str: ...

    def column(self, code: str) -> ColumnInfo | None: ...


def known_unit(unit_kind: str | None, unit: str) -> str:
    """The kind of ``unit`` as the directory knows it (None: it does not), or a refusal."""
    if unit_kind is None:
        raise Refusal(
            "invalid", "Unknown unit", f"no unit {unit!r} in the directory", field="unit"
        )
    return unit_kind


def known_column(catalog: ColumnCatalog, code: str) -> ColumnInfo:
    """The column ``code`` of the catalog, or a refusal: no such column in the rule set."""
    col = catalog.column(code)
    if col is None:
        raise Refusal(
            "invalid",
            "Unknown column",
            f"column {code!r} is not in the catalog of rule set {catalog.rule_set}",
            field="column",
        )
    return col


def require_column(catalog: ColumnCatalog, code: str, unit: str, unit_kind: str) -> ColumnInfo:
    """The column ``code``, or why it does not exist for ``unit`` (a unit of ``unit_kind``)."""
    col = known_column(catalog, code)
    if col.unit_kinds is not None and unit_kind not in col.unit_kinds:
        kinds = ", ".join(sorted(col.unit_kinds))
        raise Refusal(
            "invalid",
            "Column not for this unit",
            f"column {code!r} ({col.name}) exists only for units of kind {kinds}; "
            f"{unit} is a {unit_kind}",
            field="column",
        )
    return col


def check_column(
    catalog: ColumnCatalog,
    code: str,
    *,
    unit: str,
    unit_kind: str,
    hidden: bool | None,
) -> ColumnInfo:
    """The column a post names, or why this unit cannot post to it.

    ``hidden`` is the unit's last keep/hide choice for the column, None if it never chose.
    """
    col = require_column(catalog, code, unit, unit_kind)
    if col.hidden_by_default if hidden is None else hidden:
        raise Refusal(
            "invalid",
            "Column hidden",
            f"{unit} has hidden column {code!r} ({col.name}); keep it before posting to it",
            field="column",
        )
    return col
