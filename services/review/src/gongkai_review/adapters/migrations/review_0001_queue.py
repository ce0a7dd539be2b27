"""The review queue: each post's review state, and each unit's staff-stage policy.

Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa

from gongkai.migrations import create_table, drop_tables, first_of_branch

revision, down_revision, branch_labels, depends_on = first_of_branch("review")


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
