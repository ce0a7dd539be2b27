"""Versioned migrations of the read-model databases, with Alembic.

Every service has a database of its own (PostgreSQL in deploy, one SQLite file per service
embedded), and every service owns the migrations of its own tables: its package declares a
``ServiceMigrations`` under the ``gongkai.migrations`` entry-point group, with the directory
of its revisions (one branch, labelled with the service's name) and the shared parts it uses.
This package holds only what is not any one service's: the runner, and two branches of its own
— ``versions/`` (the projections' checkpoints and the unit directory, in every database) and
``idempotency/`` (the answer store, in the databases of the services that use it). A service's
database records one head per branch in ``gk_migrations``.

Revisions 0001-0004 of ``versions/`` are the ids of the single chain that once covered every
service's tables; a database created by that chain (at 0004, one row) upgrades like any other:
the services' first revisions find their tables already there and only record themselves.

How this meets the projections' own ``schema_version`` (see docs/operations.md, "Upgrading"):
migrations own the *shape* of the tables; a projection's ``schema_version`` owns its *content*.
A revision that changes what a projection stores comes with a bump of that projection's
``schema_version`` (recorded with the revisions that own it: ``PROJECTION_SCHEMAS`` below for
the directory, ``ServiceMigrations.projection_schemas`` for a service's; a test holds both to
the code), so the service empties those tables and rebuilds them from the log at its next start.
A revision that only adds an index needs no rebuild.

Deploy runs the migrations once, in an init step, before the services start; a service started
on a database behind the code's heads refuses to start (``verify``). The embedded default on
SQLite upgrades its own files at start (``auto``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from alembic import command, op
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, make_url, text
from sqlalchemy.exc import SQLAlchemyError

#: Alembic's version table, named like gongkai's other bookkeeping tables.
VERSION_TABLE = "gk_migrations"
#: The entry-point group under which a service package declares its ``ServiceMigrations``.
ENTRY_POINTS = "gongkai.migrations"
#: The shared projection's (schema_version, shape fingerprint) as of the head of ``versions/``.
#: A revision that changes its columns bumps its schema_version in the code and here.
PROJECTION_SCHEMAS: dict[str, tuple[int, str]] = {
    "directory": (2, "7f4d163fc254"),
}

_SCRIPTS = Path(__file__).resolve().parent
#: Shared branches a service opts into (``ServiceMigrations.uses``), by name.
PARTS: dict[str, Path] = {"idempotency": _SCRIPTS / "idempotency"}
# Two migrators on one PostgreSQL database (a re-run Job, two operators) queue on this lock
# instead of failing half-way; the second then finds the database at head and does nothing.
_PG_LOCK = 0x676B6D6967  # "gkmig"

Mode = Literal["auto", "verify"]


class DatabaseNotReady(RuntimeError):
    """The database cannot serve this code (behind, unknown revision, unreachable): one line."""


@dataclass(frozen=True)
class ServiceMigrations:
    """What a service package declares about its tables (entry-point group ``gongkai.migrations``).

    ``location`` is the directory of its revision scripts (one branch, its first revision
    labelled with the service's name; None for a service whose tables are all shared ones);
    ``uses`` names the shared parts (``PARTS``) its database
    also holds; ``projection_schemas`` records its projections' (schema_version, ``shape``) as of
    its head, as ``PROJECTION_SCHEMAS`` does for the shared one.
    """

    location: Path | None
    uses: tuple[str, ...] = ()
    projection_schemas: Mapping[str, tuple[int, str]] = field(default_factory=dict)


def installed() -> dict[str, ServiceMigrations]:
    """Every installed service's migrations, by service name."""
    found: dict[str, ServiceMigrations] = {}
    for ep in entry_points(group=ENTRY_POINTS):
        declared = ep.load()
        if not isinstance(declared, ServiceMigrations):
            raise TypeError(f"entry point {ep.value} is not a gongkai.migrations.ServiceMigrations")
        found[ep.name] = declared
    return dict(sorted(found.items()))


def locations(service: str | None) -> list[Path]:
    """The revision directories a database of ``service`` is migrated with.

    Without a service name (a test), every installed service's and every shared part: every
    table. A service installed without migrations of its own gets the shared tables only.
    """
    owned = installed()
    if service is None:
        chosen = list(owned.values())
    else:
        chosen = [owned[service]] if service in owned else []
    if service is not None and not chosen and service not in _installed_services():
        raise DatabaseNotReady(
            f"{service}: neither the service nor its migrations are installed here; "
            "migrate its database with the service's own image or package"
        )
    parts = {p for m in chosen for p in m.uses} if service is not None else set(PARTS)
    unknown = parts - set(PARTS)
    if unknown:
        raise RuntimeError(f"{service}: uses unknown shared migrations {sorted(unknown)}")
    own = [m.location for m in chosen if m.location is not None]
    return [_SCRIPTS / "versions", *(PARTS[p] for p in sorted(parts)), *own]


def _installed_services() -> set[str]:
    return {ep.name for ep in entry_points(group="gongkai.services")}


def display_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is shown as the user typed it, minus nothing
        return "<unparsable database URL>"


def alembic_config(service: str | None, connection: Connection | None = None) -> Config:
    """Alembic's configuration for one service's database, bound to one connection."""
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(map(str, locations(service))))
    cfg.set_main_option("version_table", VERSION_TABLE)
    cfg.attributes["connection"] = connection
    return cfg


def scripts(service: str | None) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(service))


def label(revisions: Iterable[str]) -> str:
    """One database's revisions (one per branch) as one word: ``0004+review_0002``."""
    return "+".join(sorted(revisions))


def head(service: str | None) -> str:
    """The revisions this code needs in a database of ``service``, as a ``label``."""
    found = scripts(service).get_heads()
    if not found:
        raise RuntimeError("the migrations have no revisions")
    return label(found)


def current(conn: Connection) -> str | None:
    """The revisions the database is at, as a ``label``; None before the first upgrade."""
    ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    found = ctx.get_current_heads()
    return label(found) if found else None


def upgrade(engine: Engine, service: str | None, revision: str = "heads") -> tuple[str | None, str]:
    """Bring the database to ``revision`` in one transaction; returns (before, after)."""
    cfg = alembic_config(service)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
        before = current(conn)
        cfg.attributes["connection"] = conn
        # The connection is already in a transaction, so Alembic runs every revision inside it
        # (PostgreSQL and SQLite both have transactional DDL): all or nothing.
        command.upgrade(cfg, revision)
        after = current(conn)
    return before, after or "base"


def status(engine: Engine, service: str | None) -> tuple[str | None, str]:
    """(the database's revisions, the code's heads)."""
    want = head(service)
    with engine.connect() as conn:
        return current(conn), want


def check(engine: Engine, service: str) -> None:
    """Raise ``DatabaseNotReady`` unless the database is exactly at the code's heads."""
    where = f"{service}: database {display_url(str(engine.url))}"
    try:
        at, want = status(engine, service)
    except SQLAlchemyError as exc:
        raise DatabaseNotReady(f"{where} cannot be read: {_reason(exc)}") from None
    if at == want:
        return
    if at is None:
        raise DatabaseNotReady(
            f"{where} has no migrations applied (the code needs {want}): "
            "run `gongkai db upgrade` (the init step) first"
        )
    known = {s.revision for s in scripts(service).walk_revisions()}
    if not set(at.split("+")) <= known:
        raise DatabaseNotReady(
            f"{where} is at revision {at}, unknown to this version of gongkai (needs {want}): "
            "it was migrated by a newer release"
        )
    raise DatabaseNotReady(
        f"{where} is at revision {at}, behind the code's {want}: "
        "run `gongkai db upgrade` (the init step) first"
    )


def prepare(engine: Engine, service: str, mode: Mode) -> None:
    """At a service's start: upgrade (``auto``) or insist on the heads (``verify``)."""
    if mode == "verify":
        check(engine, service)
        return
    try:
        upgrade(engine, service)
    except SQLAlchemyError as exc:
        where = f"{service}: database {display_url(str(engine.url))}"
        raise DatabaseNotReady(f"{where} could not be upgraded: {_reason(exc)}") from None


def first_of_branch(branch: str) -> tuple[str, None, tuple[str], None]:
    """In the first revision of a branch: its ``revision, down_revision, branch_labels,
    depends_on``, which Alembic reads as the module's attributes once it has imported it.

    A branch (each shared part, each service's own) starts at ``<branch>_0001``, with no
    predecessor and no dependency, labelled with the branch's name. (``versions/`` is older
    than this rule: its first revision is ``0001``.)
    """
    return f"{branch}_0001", None, (branch,), None


def unchanged() -> None:
    """The upgrade and the downgrade of a revision kept for its id alone (what it made moved
    to a service's own branch): a database that reached it is known, and nothing changes."""


def create_table(name: str, *columns: sa.Column[object], indexes: tuple[str, ...] = ()) -> None:
    """In a revision script: create a table and its one-column indexes unless it exists.

    A table that exists is left as it is: the databases made before migrations existed, and
    those made by the single chain before each service owned its migrations, already hold it.
    """
    if sa.inspect(op.get_bind()).has_table(name):
        return
    op.create_table(name, *columns)
    for col in indexes:
        op.create_index(f"ix_{name}_{col}", name, [col])


def drop_tables(*names: str) -> None:
    """In a revision script's downgrade: drop the tables that exist."""
    bind = op.get_bind()
    for name in names:
        if sa.inspect(bind).has_table(name):
            op.drop_table(name)


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
    "ENTRY_POINTS",
    "PARTS",
    "PROJECTION_SCHEMAS",
    "VERSION_TABLE",
    "DatabaseNotReady",
    "Mode",
    "ServiceMigrations",
    "alembic_config",
    "check",
    "create_table",
    "current",
    "display_url",
    "drop_tables",
    "first_of_branch",
    "head",
    "installed",
    "label",
    "locations",
    "prepare",
    "scripts",
    "shape",
    "status",
    "upgrade",
]
