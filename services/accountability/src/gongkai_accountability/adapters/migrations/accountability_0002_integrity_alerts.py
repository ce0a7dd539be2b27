"""Integrity alerts: accountability keeps the events that failed a trust check (acc_alert).

Revision ID: accountability_0002
Revises: accountability_0001
Create Date: 2026-12-02

The accountability projection's schema_version rises with this revision, so the service
rebuilds its rows from the log at its next start; the new table only has to exist. (The single
chain's revision 0003 made it; a database it made keeps it.)
"""

from __future__ import annotations

from gongkai.migrations import drop_tables
from gongkai_accountability.adapters.migrations import create_row_table

revision = "accountability_0002"
down_revision = "accountability_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_row_table("alert")


def downgrade() -> None:
    drop_tables("acc_alert")
