"""The read models as of gongkai 0.1: checkpoints, answers, directory, and each service's own.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

The baseline. Databases created before migrations existed (services used to create their
tables themselves, with the same definitions) are adopted: a table that already exists is left
as it is, so upgrading such a database only records the revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tests.integration.legacy_migrations import applies_to

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _acc_tables() -> list[str]:
    return [
        f"acc_{t}"
        for t in ("post", "publication", "unit", "column", "case", "finding", "violation", "todo")
    ]


def _create(name: str, *columns: sa.Column[object], indexes: tuple[str, ...] = ()) -> None:
    if sa.inspect(op.get_bind()).has_table(name):
        return
    op.create_table(name, *columns)
    for col in indexes:
        op.create_index(f"ix_{name}_{col}", name, [col])


def upgrade() -> None:
    # Every service: the projections' checkpoints and its copy of the unit directory.
    _create(
        "gk_checkpoint",
        sa.Column("projection", sa.String(64), primary_key=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
    )
    _create(
        "dir_units",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("contact_name", sa.String(100), nullable=False),
        sa.Column("contact_mobile", sa.String(32), nullable=False),
    )
    _create(
        "dir_people",
        sa.Column("person_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
    )
    _create(
        "dir_roles",
        sa.Column("person_id", sa.String(64), primary_key=True),
        sa.Column("unit", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(32), primary_key=True),
        sa.Column("active", sa.Boolean(), nullable=False),
    )
    _create(
        "dir_tokens",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("person_id", sa.String(64), nullable=False),
        indexes=("person_id",),
    )

    if applies_to("intake", "review"):
        # The answers to commands carrying an Idempotency-Key.
        _create(
            "gk_idempotency",
            sa.Column("scope", sa.String(64), primary_key=True),
            sa.Column("key", sa.String(200), primary_key=True),
            sa.Column("request_sha256", sa.String(64), nullable=False),
            sa.Column("status", sa.Integer(), nullable=False),
            sa.Column("body", sa.Text(), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        )

    if applies_to("intake"):
        _create(
            "intake_column_choices",
            sa.Column("unit", sa.String(64), primary_key=True),
            sa.Column("column", sa.String(64), primary_key=True),
            sa.Column("hidden", sa.Boolean(), nullable=False),
        )

    if applies_to("review"):
        _create(
            "review_posts",
            sa.Column("post_id", sa.String(128), primary_key=True),
            sa.Column("unit", sa.String(128), nullable=False),
            sa.Column("awaiting", sa.String(16), nullable=True),
            sa.Column("chain", sa.Integer(), nullable=True),
            sa.Column("waiting_since", sa.String(40), nullable=True),
            sa.Column("state", sa.Text(), nullable=False),
            indexes=("unit",),
        )
        _create(
            "review_policies",
            sa.Column("unit", sa.String(128), primary_key=True),
            sa.Column("staff_stage", sa.String(16), nullable=False),
        )

    if applies_to("accountability"):
        # One table per kind of row, a JSON body per row.
        for name in _acc_tables():
            _create(
                name,
                sa.Column("key", sa.String(200), primary_key=True),
                sa.Column("unit", sa.String(128), nullable=False),
                sa.Column("tag", sa.String(64), nullable=False),
                sa.Column("data", sa.Text(), nullable=False),
                indexes=("unit", "tag"),
            )


def downgrade() -> None:
    names = [
        *_acc_tables(),
        "review_policies",
        "review_posts",
        "intake_column_choices",
        "gk_idempotency",
        "dir_tokens",
        "dir_roles",
        "dir_people",
        "dir_units",
        "gk_checkpoint",
    ]
    bind = op.get_bind()
    for name in names:
        if sa.inspect(bind).has_table(name):
            op.drop_table(name)
