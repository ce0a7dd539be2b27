"""The answer store of commands carrying an Idempotency-Key (``gongkai.runtime.idempotency``).

Create Date: 2026-12-04

In the databases of the services that declare ``uses=("idempotency",)``. The single chain
made this table in revision 0001 (intake, review) or 0002 (freshness); a database it made
keeps its table and only records this revision.
"""

from __future__ import annotations

import sqlalchemy as sa

from gongkai.migrations import create_table, drop_tables, first_of_branch

revision, down_revision, branch_labels, depends_on = first_of_branch("idempotency")


def upgrade() -> None:
    create_table(
        "gk_idempotency",
        sa.Column("scope", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    drop_tables("gk_idempotency")
