"""The units' keep/hide choices of columns, projected from freshness's events.

freshness owns ColumnHidden / ColumnKept (aggregate ``column``, payload with ``unit`` and
``column``); intake keeps its own copy so a post to a hidden column is refused without asking
another service.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Connection, Engine, MetaData, String, Table, select

from gongkai.directory import upsert
from gongkai.eventlog import RecordedEvent
from gongkai.projection import Memo, Projection, type_subjects

HIDDEN = "ColumnHidden"
KEPT = "ColumnKept"


class ColumnChoicesProjection(Projection):
    name = "intake_column_choices"
    schema_version = 1
    filter_subject = "gk.ev.column.*.*"
    consumes = frozenset({HIDDEN, KEPT})
    # The column's other events (stale, refreshed, due soon) are never sent.
    filter_subjects = type_subjects(consumes)

    def define(self, metadata: MetaData) -> None:
        self.choices = Table(
            "intake_column_choices",
            metadata,
            Column("unit", String(64), primary_key=True),
            Column("column", String(64), primary_key=True),
            Column("hidden", Boolean, nullable=False),
        )

    def apply(self, conn: Connection, event: RecordedEvent) -> None:
        env = event.envelope
        if env.type not in (HIDDEN, KEPT):
            return
        p = env.payload
        upsert(
            conn,
            self.choices,
            {"unit": p.unit, "column": p.column, "hidden": env.type == HIDDEN},
            ["unit", "column"],
        )


class ColumnChoices:
    def __init__(self, engine: Engine, projection: ColumnChoicesProjection) -> None:
        self.engine = engine
        self.p = projection
        # Asked on every submission, changed a few times a year per unit.
        self._hidden: Memo[tuple[str, str], bool | None] = Memo(projection, self._read)

    def hidden(self, unit: str, column: str) -> bool | None:
        """The unit's last choice for the column: True hidden, False kept, None never chose."""
        return self._hidden((unit, column))

    def _read(self, key: tuple[str, str]) -> bool | None:
        unit, column = key
        t = self.p.choices
        with self.engine.connect() as conn:
            v = conn.execute(
                select(t.c.hidden).where(t.c.unit == unit, t.c.column == column)
            ).scalar()
        return None if v is None else bool(v)
