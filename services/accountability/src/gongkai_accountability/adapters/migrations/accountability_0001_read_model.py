"""accountability's read model: posts, publications, units, columns, cases, findings,
violations and the office's to-do rows.

Revision ID: accountability_0001
Revises:
Create Date: 2026-12-04

The tables as the single chain's revision 0001 made them; in a database that chain made, this
revision finds them and only records itself.
"""

from __future__ import annotations

from gongkai.migrations import drop_tables
from gongkai_accountability.adapters.migrations import create_row_table

revision = "accountability_0001"
down_revision = None
branch_labels = ("accountability",)
depends_on = None

_KINDS = ("post", "publication", "unit", "column", "case", "finding", "violation", "todo")


def upgrade() -> None:
    for kind in _KINDS:
        create_row_table(kind)


def downgrade() -> None:
    drop_tables(*(f"acc_{kind}" for kind in _KINDS))
