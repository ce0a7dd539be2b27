"""The units' keep/hide choices of columns, as intake projects them from freshness's events.

Revision ID: intake_0001
Revises:
Create Date: 2026-12-04

The table as the single chain's revision 0001 made it; in a database that chain made, this
revision finds it and only records itself.
"""

from __future__ import annotations

import sqlalchemy as sa

from gongkai.migrations import create_table, drop_tables

revision = "intake_0001"
down_revision = None
branch_labels = ("intake",)
depends_on = None


def upgrade() -> None:
    create_table(
        "intake_column_choices",
        sa.Column("unit", sa.String(64), primary_key=True),
        sa.Column("column", sa.String(64), primary_key=True),
        sa.Column("hidden", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    drop_tables("intake_column_choices")
