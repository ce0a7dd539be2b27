"""Alembic's environment for gongkai's read models.

Always run through ``gongkai.migrations`` (``gongkai db upgrade``, a service's start), which
hands over an open connection inside a transaction and the revision directories of the service
whose database it is (``version_locations``); there is no alembic.ini.
"""

from __future__ import annotations

from alembic import context

from gongkai.migrations import VERSION_TABLE

config = context.config
connection = config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("run migrations with `gongkai db upgrade`, not the alembic command")

context.configure(
    connection=connection,
    version_table=VERSION_TABLE,
    # SQLite cannot ALTER most things: batch mode recreates the table instead.
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
