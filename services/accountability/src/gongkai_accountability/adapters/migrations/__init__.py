"""accountability's read-model migrations: one table per kind of row, a JSON body per row.

Declared under the ``gongkai.migrations`` entry points; ``gongkai db upgrade`` and the
service's start run them with the shared ones (``gongkai.migrations``).
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from gongkai.migrations import ServiceMigrations, create_table

MIGRATIONS = ServiceMigrations(
    location=Path(__file__).resolve().parent,
    # 0002: acc_alert. 4: the printed forms' fields in the rows' JSON bodies; 5: steps,
    # people and forms in them kept as arrays. No column changed in either, so no revision:
    # the bump alone makes the service rebuild its rows at start.
    projection_schemas={"accountability": (5, "25d8717026ba")},
)


def create_row_table(kind: str) -> None:
    """In a revision: the table of one kind of row, ``acc_<kind>`` (a row's key, its unit and
    tag to select by, its JSON body), unless it exists."""
    create_table(
        f"acc_{kind}",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("unit", sa.String(128), nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        indexes=("unit", "tag"),
    )
