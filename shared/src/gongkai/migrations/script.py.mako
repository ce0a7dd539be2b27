"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

Changes a projection's columns? Bump its ``schema_version`` in the code and where its
migrations record it (``ServiceMigrations.projection_schemas``, or
``gongkai.migrations.PROJECTION_SCHEMAS`` for the directory) so the service rebuilds it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gongkai.migrations import create_table, drop_tables

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
