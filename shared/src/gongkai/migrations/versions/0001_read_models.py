"""The tables of every service's database: the projections' checkpoints and the directory.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

The baseline. Databases created before migrations existed (services used to create their
tables themselves, with the same definitions) are adopted: a table that already exists is left
as it is, so upgrading such a database only records the revision. This revision once also made
the answer store and the services' own tables; those are now in ``idempotency/`` and in each
service's migrations, which find them in a database this revision made.
"""

from __future__ import annotations

import sqlalchemy as sa

from gongkai.migrations import create_table, drop_tables

revision = "0001"
down_revision = None
branch_labels = ("gongkai",)
depends_on = None


def upgrade() -> None:
    create_table(
        "gk_checkpoint",
        sa.Column("projection", sa.String(64), primary_key=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
    )
    create_table(
        "dir_units",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("contact_name", sa.String(100), nullable=False),
        sa.Column("contact_mobile", sa.String(32), nullable=False),
    )
    create_table(
        "dir_people",
        sa.Column("person_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
    )
    create_table(
        "dir_roles",
        sa.Column("person_id", sa.String(64), primary_key=True),
        sa.Column("unit", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(32), primary_key=True),
        sa.Column("active", sa.Boolean(), nullable=False),
    )
    create_table(
        "dir_tokens",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("person_id", sa.String(64), nullable=False),
        indexes=("person_id",),
    )


def downgrade() -> None:
    drop_tables("dir_tokens", "dir_roles", "dir_people", "dir_units", "gk_checkpoint")
