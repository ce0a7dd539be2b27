"""The units' keep/hide choices of columns, as intake projects them from freshness's events.

Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa

from gongkai.migrations import create_table, drop_tables, first_of_branch

revision, down_revision, branch_labels, depends_on = first_of_branch("intake")


def upgrade() -> None:
    create_table(
        "intake_column_choices",
        sa.Column("unit", sa.String(64), primary_key=True),
        sa.Column("column", sa.String(64), primary_key=True),
        sa.Column("hidden", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    drop_tables("intake_column_choices")
