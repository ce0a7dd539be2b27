"""accountability's read model: posts, publications, units, columns, cases, findings,
violations and the office's to-do rows.

Create Date: 2026-12-04
"""

from __future__ import annotations

from gongkai.migrations import drop_tables, first_of_branch
from gongkai_accountability.adapters.migrations import create_row_table

revision, down_revision, branch_labels, depends_on = first_of_branch("accountability")

_KINDS = ("post", "publication", "unit", "column", "case", "finding", "violation", "todo")


def upgrade() -> None:
    for kind in _KINDS:
        create_row_table(kind)


def downgrade() -> None:
    drop_tables(*(f"acc_{kind}" for kind in _KINDS))
