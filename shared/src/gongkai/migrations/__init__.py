"""Versioned migrations of the read-model databases, with Alembic.

Every service has a database of its own (PostgreSQL in deploy, one SQLite file per service
embedded). One revision chain covers all of them: each revision changes only the tables of the
services it names (``applies_to``), so every database carries the same revision numbers but only
its own service's tables. The chain ships inside this package, so ``gongkai db upgrade`` works
from an installed wheel or image without the source tree.

How this meets the projections' own ``schema_version`` (see docs/operations.md, "Upgrading"):
migrations own the *shape* of the tables; a projection's ``schema_version`` owns its *content*.
A revision that changes what a projection stores comes with a bump of that projection's
``schema_version`` (``PROJECTION_SCHEMAS`` below records the pair, and a test holds it to the
code), so the service empties those tables and rebuilds them from the log at its next start.
A revision that only adds an index needs no rebuild.

Deploy runs the chain once, in an init step, before the services start; a service started on a
database behind the code's head refuses to start (``verify``). The embedded default on SQLite
upgrades its own files at start (``auto``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, make_url, text
from sqlalchemy.exc import SQLAlchemyError

#: Alembic's version table, named like gongkai's other bookkeeping tables.
VERSION_TABLE = "gk_migrations"
#: The services the chain knows by name; another installed service gets the common tables only.
SERVICES = ("intake", "review", "freshness", "accountability")
#: Every projection's (schema_version, shape fingerprint) as of the head revision. A revision
#: that changes a projection's columns bumps its schema_version in the code and here.
PROJECTION_SCHEMAS: dict[str, tuple[int, str]] = {
    "directory": (2, "7f4d163fc254"),
    "intake_column_choices": (1, "7880de31a954"),
    "review_queue": (3, "ce4ac4898f29"),  # 0004: review_roles, review_refused
    "accountability": (3, "25d8717026ba"),  # 0003: acc_alert (integrity alerts)
}

_SCRIPTS = Path(__file__).resolve().parent
# Two migrators on one PostgreSQL database (a re-run Job, two operators) queue on this lock
# instead of failing half-way; the second then finds the database at head and does nothing.
_PG_LOCK = 0x676B6D6967  # "gkmig"

Mode = Literal["auto", "verify"]


class DatabaseNotReady(RuntimeError):
    """The database cannot serve this code (behind, unknown revision, unreachable): one line."""


def display_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is shown as the user typed it, minus nothing
        return "<unparsable database URL>"


def alembic_config(connection: Connection | None = None, service: str | None = None) -> Config:
    """Alembic's configuration for the packaged chain, bound to one connection and service."""
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    cfg.set_main_option("version_table", VERSION_TABLE)
    cfg.attributes["connection"] = connection
    cfg.attributes["service"] = service
    return cfg


def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The revision this code needs."""
    found = scripts().get_current_head()
    if found is None:
        raise RuntimeError("the migration chain has no revisions")
    return found


def current(conn: Connection) -> str | None:
    """The revision the database is at; None before the first upgrade."""
    ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_revision()


def applies_to(*services: str) -> bool:
    """In a revision script: does the database being migrated belong to one of ``services``?

    A database migrated without a service name (``--url`` alone, a test) gets every table.
    """
    target = context.config.attributes.get("service")
    return target is None or target in services


def upgrade(engine: Engine, service: str | None, revision: str = "head") -> tuple[str | None, str]:
    """Bring the database to ``revision`` in one transaction; returns (before, after)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
        before = current(conn)
        # The connection is already in a transaction, so Alembic runs every revision inside it
        # (PostgreSQL and SQLite both have transactional DDL): all or nothing.
        command.upgrade(alembic_config(conn, service), revision)
        after = current(conn)
    return before, after or "base"


def status(engine: Engine) -> tuple[str | None, str]:
    """(the database's revision, the code's head)."""
    with engine.connect() as conn:
        return current(conn), head()


def check(engine: Engine, service: str) -> None:
    """Raise ``DatabaseNotReady`` unless the database is exactly at the code's head."""
    where = f"{service}: database {display_url(str(engine.url))}"
    try:
        at, want = status(engine)
    except SQLAlchemyError as exc:
        raise DatabaseNotReady(f"{where} cannot be read: {_reason(exc)}") from None
    if at == want:
        return
    if at is None:
        raise DatabaseNotReady(
            f"{where} has no migrations applied (the code needs {want}): "
            "run `gongkai db upgrade` (the init step) first"
        )
    if at not in {s.revision for s in scripts().walk_revisions()}:
        raise DatabaseNotReady(
            f"{where} is at revision {at}, unknown to this version of gongkai (needs {want}): "
            "it was migrated by a newer release"
        )
    raise DatabaseNotReady(
        f"{where} is at revision {at}, behind the code's {want}: "
        "run `gongkai db upgrade` (the init step) first"
    )


def prepare(engine: Engine, service: str, mode: Mode) -> None:
    """At a service's start: upgrade (``auto``) or insist on the head (``verify``)."""
    if mode == "verify":
        check(engine, service)
        return
    try:
        upgrade(engine, service)
    except SQLAlchemyError as exc:
        where = f"{service}: database {display_url(str(engine.url))}"
        raise DatabaseNotReady(f"{where} could not be upgraded: {_reason(exc)}") from None


def shape(metadata: MetaData | Iterable[MetaData]) -> str:
    """A short fingerprint of the tables' columns (names, types, nullability, keys).

    Indexes are left out on purpose: adding one changes no row, so it needs no rebuild.
    """
    metas = [metadata] if isinstance(metadata, MetaData) else list(metadata)
    parts: list[str] = []
    for meta in metas:
        for table in sorted(meta.tables.values(), key=lambda t: t.name):
            for col in table.columns:
                parts.append(
                    f"{table.name}.{col.name}:{col.type!r}:{col.nullable}:{col.primary_key}"
                )
    return hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()[:12]


def _reason(exc: SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    text_ = str(orig if orig is not None else exc).strip().splitlines()
    return text_[0] if text_ else type(exc).__name__


__all__ = [
    "PROJECTION_SCHEMAS",
    "SERVICES",
    "VERSION_TABLE",
    "DatabaseNotReady",
    "Mode",
    "alembic_config",
    "applies_to",
    "check",
    "current",
    "display_url",
    "head",
    "prepare",
    "scripts",
    "shape",
    "status",
    "upgrade",
]
