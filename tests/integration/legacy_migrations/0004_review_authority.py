"""Review's queue checks a signature's authority: role history and refused signatures.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

The review queue folded every recorded ``ReviewSigned``, so a correctly signed signature by a
person without the stage's role (review's key misused) advanced the post in the queue. The
projection now keeps every person's role grants and revocations (``review_roles``) and the
signatures it left out (``review_refused``). Its schema_version goes 2 -> 3 with this revision:
the service empties the queue's tables at its next start and rebuilds them from the log; the
new tables only have to exist.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tests.integration.legacy_migrations import applies_to

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if not applies_to("review"):
        return
    existing = sa.inspect(op.get_bind())
    if not existing.has_table("review_roles"):
        op.create_table(
            "review_roles",
            sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
            sa.Column("person_id", sa.String(128), nullable=False),
            sa.Column("event", sa.Text(), nullable=False),
        )
        op.create_index("ix_review_roles_person_id", "review_roles", ["person_id"])
    if not existing.has_table("review_refused"):
        op.create_table(
            "review_refused",
            sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
            sa.Column("post_id", sa.String(128), nullable=False),
            sa.Column("command_id", sa.Text(), nullable=False),
        )
        op.create_index("ix_review_refused_post_id", "review_refused", ["post_id"])


def downgrade() -> None:
    if applies_to("review"):
        op.drop_table("review_refused")
        op.drop_table("review_roles")
