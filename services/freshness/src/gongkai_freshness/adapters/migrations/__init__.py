"""freshness's read-model migrations: none of its own (the register lives in memory, rebuilt
from the log); its database holds the shared tables and the answer store.

Declared under the ``gongkai.migrations`` entry points; ``gongkai db upgrade`` and the
service's start run the shared ones it names (``gongkai.migrations``).
"""

from __future__ import annotations

from gongkai.migrations import ServiceMigrations

MIGRATIONS = ServiceMigrations(location=None, uses=("idempotency",))
