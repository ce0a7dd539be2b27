"""Review's queue checks a signature's authority: role history and refused signatures.

Revision ID: review_0002
Revises: review_0001
Create Date: 2026-12-03

The review queue folded every recorded ``ReviewSigned``, so a correctly signed signature by a
person without the stage's role (review's key misused) advanced the post in the queue. The
projection now keeps every person's role grants and revocations (``review_roles``) and the
signatures it left out (``review_refused``). Its schema_version goes 2 -> 3 with this revision:
the service empties the queue's tables at its next start and rebuilds them from the log; the
new tables only have to exist. (The single chain's revision 0004 made them; a database it made
keeps them.)
"""

from __future__ import annotations

import sqlalchemy as sa

from gongkai.migrations import create_table, drop_tables

revision = "review_0002"
down_revision = "review_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_table(
        "review_roles",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("person_id", sa.String(128), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        indexes=("person_id",),
    )
    create_table(
        "review_refused",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("post_id", sa.String(128), nullable=False),
        sa.Column("command_id", sa.Text(), nullable=False),
        indexes=("post_id",),
    )


def downgrade() -> None:
    drop_tables("review_refused", "review_roles")
