"""review's read-model migrations: the review queue (posts, policies, roles, refused
signatures), and the answer store.

Declared under the ``gongkai.migrations`` entry points; ``gongkai db upgrade`` and the
service's start run them with the shared ones (``gongkai.migrations``).
"""

from __future__ import annotations

from pathlib import Path

from gongkai.migrations import ServiceMigrations

MIGRATIONS = ServiceMigrations(
    location=Path(__file__).resolve().parent,
    uses=("idempotency",),
    projection_schemas={"review_queue": (3, "ce4ac4898f29")},  # review_0002: roles, refused
)
