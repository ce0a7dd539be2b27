"""The review queue: each post's review state, and each unit's staff-stage policy.

Revision ID: review_0001
Revises:
Create Date: 2026-12-04

The tables as the single chain's revision 0001 made them; in a database that chain made, this
revision finds them and only records itself.
"""

from __future__ import annotations

import sqlalchemy as sa

from gongkai.migrations import create_table, drop_tables

revision = "review_0001"
down_revision = None
branch_labels = ("review",)
depends_on = None


def upgrade() -> None:
    create_table(
        "review_posts",
        sa.Column("post_id", sa.String(128), primary_key=True),
        sa.Column("unit", sa.String(128), nullable=False),
        sa.Column("awaiting", sa.String(16), nullable=True),
        sa.Column("chain", sa.Integer(), nullable=True),
        sa.Column("waiting_since", sa.String(40), nullable=True),
        sa.Column("state", sa.Text(), nullable=False),
        indexes=("unit",),
    )
    create_table(
        "review_policies",
        sa.Column("unit", sa.String(128), primary_key=True),
        sa.Column("staff_stage", sa.String(16), nullable=False),
    )


def downgrade() -> None:
    drop_tables("review_policies", "review_posts")
