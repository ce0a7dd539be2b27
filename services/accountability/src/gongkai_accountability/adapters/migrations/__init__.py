"""accountability's read-model migrations: one table per kind of row, a JSON body per row.

Declared under the ``gongkai.migrations`` entry points; ``gongkai db upgrade`` and the
service's start run them with the shared ones (``gongkai.migrations``).
"""

from __future__ import annotations

from pathlib import Path

from gongkai.migrations import ServiceMigrations

MIGRATIONS = ServiceMigrations(
    location=Path(__file__).resolve().parent,
    # 0002: acc_alert. 4: the printed forms' fields in the rows' JSON bodies; no column
    # changed, so no revision: the bump alone makes the service rebuild its rows at start.
    projection_schemas={"accountability": (4, "25d8717026ba")},
)
