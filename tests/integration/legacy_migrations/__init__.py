"""A frozen copy of the single revision chain (0001-0004) that covered every service's tables
before each service owned its migrations (as of commit 9a24ee9), for the test that upgrades a
database it made. Only its import of ``applies_to`` differs: that helper left ``gongkai``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import context

LOCATION = Path(__file__).resolve().parent


def applies_to(*services: str) -> bool:
    """The old chain's filter: does the database being migrated belong to one of ``services``?"""
    target = context.config.attributes.get("service")
    return target is None or target in services
