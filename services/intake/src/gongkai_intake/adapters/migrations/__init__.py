"""intake's read-model migrations: its copy of the units' column choices, and the answer store.

Declared under the ``gongkai.migrations`` entry points; ``gongkai db upgrade`` and the
service's start run them with the shared ones (``gongkai.migrations``).
"""

from __future__ import annotations

from pathlib import Path

from gongkai.migrations import ServiceMigrations

MIGRATIONS = ServiceMigrations(
    location=Path(__file__).resolve().parent,
    uses=("idempotency",),
    projection_schemas={"intake_column_choices": (1, "7880de31a954")},
)
