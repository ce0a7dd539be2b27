"""Review's role history and refused signatures: moved to review's own migrations (review_0002).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

Kept, empty, so that a database the single chain brought to 0004 (its last revision) is known
to this code; what it made is review's to make now.
"""

from __future__ import annotations

from gongkai.migrations import unchanged

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

upgrade = downgrade = unchanged
