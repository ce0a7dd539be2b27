"""Token lifecycle: tokens have a hint, an issue time, an expiry and a revoked flag; freshness
keeps answers to Idempotency-Keys (PUT of a column's visibility).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

``dir_tokens`` is part of the directory projection, whose schema_version goes 1 -> 2 with this
revision: the service empties the directory's tables at its next start and rebuilds them from
the log, so the table is simply made again with its new columns.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tests.integration.legacy_migrations import applies_to

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _tokens(*extra: sa.Column[object]) -> None:
    if sa.inspect(op.get_bind()).has_table("dir_tokens"):
        op.drop_index("ix_dir_tokens_person_id", table_name="dir_tokens", if_exists=True)
        op.drop_table("dir_tokens")
    op.create_table(
        "dir_tokens",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("person_id", sa.String(64), nullable=False),
        *extra,
    )
    op.create_index("ix_dir_tokens_person_id", "dir_tokens", ["person_id"])


def upgrade() -> None:
    _tokens(
        sa.Column("token_hint", sa.String(8), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
    )
    if applies_to("freshness") and not sa.inspect(op.get_bind()).has_table("gk_idempotency"):
        op.create_table(
            "gk_idempotency",
            sa.Column("scope", sa.String(64), primary_key=True),
            sa.Column("key", sa.String(200), primary_key=True),
            sa.Column("request_sha256", sa.String(64), nullable=False),
            sa.Column("status", sa.Integer(), nullable=False),
            sa.Column("body", sa.Text(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        )


def downgrade() -> None:
    if applies_to("freshness") and not applies_to("intake"):
        op.drop_table("gk_idempotency")
    _tokens()
