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
    _in_log_order("review_roles", by="person_id", kept="event")
    _in_log_order("review_refused", by="post_id", kept="command_id")


def _in_log_order(name: str, *, by: str, kept: str) -> None:
    """A table with one row per event, keyed by its stream sequence, looked up by ``by``."""
    create_table(
        name,
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column(by, sa.String(128), nullable=False),
        sa.Column(kept, sa.Text(), nullable=False),
        indexes=(by,),
    )


def downgrade() -> None:
    drop_tables("review_refused", "review_roles")
