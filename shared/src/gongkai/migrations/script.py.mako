"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

Changes a projection's columns? Bump its ``schema_version`` in the code and in
``gongkai.migrations.PROJECTION_SCHEMAS`` so the service rebuilds it from the log.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gongkai.migrations import applies_to

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
