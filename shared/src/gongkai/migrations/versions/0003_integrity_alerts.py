"""Integrity alerts: moved to accountability's own migrations (accountability_0002).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

Kept, empty, so that a database the single chain brought to 0003 or beyond is known to this
code; what it made is accountability's to make now.
"""

from __future__ import annotations

from gongkai.migrations import unchanged

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

upgrade = downgrade = unchanged
