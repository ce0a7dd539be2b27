"""The answer store of commands carrying an Idempotency-Key (``gongkai.runtime.idempotency``).

Revision ID: idempotency_0001
Revises:
Create Date: 2026-12-04

In the databases of the services that declare ``uses=("idempotency",)``. The single chain
made this table in revision 0001 (intake, review) or 0002 (freshness); a database it made
keeps its table and only records this revision.
"""

from __future__ import annotations

import sqlalchemy as sa

from gongkai.migrations import create_table, drop_tables

revision = "idempotency_0001"
down_revision = None
branch_labels = ("idempotency",)
depends_on = None


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
