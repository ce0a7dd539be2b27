"""Integrity alerts: accountability keeps the events that failed a trust check (acc_alert).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

The accountability projection's schema_version rises with this revision, so the service
rebuilds its rows from the log at its next start; the new table only has to exist.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tests.integration.legacy_migrations import applies_to

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if not applies_to("accountability"):
        return
    if sa.inspect(op.get_bind()).has_table("acc_alert"):
        return
    op.create_table(
        "acc_alert",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("unit", sa.String(128), nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
    )
    op.create_index("ix_acc_alert_unit", "acc_alert", ["unit"])
    op.create_index("ix_acc_alert_tag", "acc_alert", ["tag"])


def downgrade() -> None:
    if applies_to("accountability"):
        op.drop_table("acc_alert")
