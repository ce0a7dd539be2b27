"""The unit directory as every service sees it, and bearer-token authentication.

intake owns the directory's events (UnitRegistered, PersonRegistered, RoleGranted, RoleRevoked,
TokenIssued); every service that authenticates callers keeps this projection of them in its own
database. Tokens are random 256-bit strings; only their sha256 is ever recorded or stored.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    MetaData,
    String,
    Table,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gongkai.eventlog import RecordedEvent
from gongkai.events.contracts import intake as ev
from gongkai.projection import Projection
from gongkai.runtime.http import Problem

TOKEN_PREFIX = "gk_"  # noqa: S105 - a marker, not a secret


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """An authenticated caller and the roles they hold, as (unit, role) pairs."""

    person_id: str
    name: str
    roles: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    def has(self, unit: str, role: str) -> bool:
        return (unit, role) in self.roles

    def units(self) -> set[str]:
        return {u for u, _ in self.roles}

    def roles_in(self, unit: str) -> set[str]:
        return {r for u, r in self.roles if u == unit}


def upsert(conn: Connection, table: Table, values: dict[str, object], keys: list[str]) -> None:
    """Insert or update by primary key, portable across SQLite and PostgreSQL."""
    dialect = conn.dialect.name
    ins = (pg_insert if dialect == "postgresql" else sqlite_insert)(table).values(**values)
    update = {k: v for k, v in values.items() if k not in keys}
    if update:
        stmt = ins.on_conflict_do_update(index_elements=keys, set_=update)
    else:
        stmt = ins.on_conflict_do_nothing(index_elements=keys)
    conn.execute(stmt)


class DirectoryProjection(Projection):
    name = "directory"
    schema_version = 1
    filter_subject = "gk.ev.*.*.*"

    _types = frozenset(
        {"UnitRegistered", "PersonRegistered", "RoleGranted", "RoleRevoked", "TokenIssued"}
    )

    def define(self, metadata: MetaData) -> None:
        self.units = Table(
            "dir_units",
            metadata,
            Column("code", String(64), primary_key=True),
            Column("name", String(200), nullable=False),
            Column("kind", String(32), nullable=False),
            Column("contact_name", String(100), nullable=False),
            Column("contact_mobile", String(32), nullable=False),
        )
        self.people = Table(
            "dir_people",
            metadata,
            Column("person_id", String(64), primary_key=True),
            Column("name", String(100), nullable=False),
        )
        self.roles = Table(
            "dir_roles",
            metadata,
            Column("person_id", String(64), primary_key=True),
            Column("unit", String(64), primary_key=True),
            Column("role", String(32), primary_key=True),
            Column("active", Boolean, nullable=False),
        )
        self.tokens = Table(
            "dir_tokens",
            metadata,
            Column("token_sha256", String(64), primary_key=True),
            Column("person_id", String(64), nullable=False, index=True),
        )

    def apply(self, conn: Connection, event: RecordedEvent) -> None:
        p = event.envelope.payload
        if isinstance(p, ev.UnitRegistered):
            upsert(
                conn,
                self.units,
                {
                    "code": p.code,
                    "name": p.name,
                    "kind": p.kind,
                    "contact_name": p.contact_name,
                    "contact_mobile": p.contact_mobile,
                },
                ["code"],
            )
        elif isinstance(p, ev.PersonRegistered):
            upsert(conn, self.people, {"person_id": p.person_id, "name": p.name}, ["person_id"])
        elif isinstance(p, ev.RoleGranted | ev.RoleRevoked):
            upsert(
                conn,
                self.roles,
                {
                    "person_id": p.person_id,
                    "unit": p.unit,
                    "role": p.role,
                    "active": isinstance(p, ev.RoleGranted),
                },
                ["person_id", "unit", "role"],
            )
        elif isinstance(p, ev.TokenIssued):
            upsert(
                conn,
                self.tokens,
                {"token_sha256": p.token_sha256, "person_id": p.person_id},
                ["token_sha256"],
            )


class Directory:
    """Queries over a service's own copy of the directory."""

    def __init__(self, engine: Engine, projection: DirectoryProjection) -> None:
        self.engine = engine
        self.p = projection

    def principal(self, person_id: str) -> Principal | None:
        with self.engine.connect() as conn:
            person = conn.execute(
                select(self.p.people).where(self.p.people.c.person_id == person_id)
            ).first()
            if person is None:
                return None
            roles = conn.execute(
                select(self.p.roles.c.unit, self.p.roles.c.role).where(
                    self.p.roles.c.person_id == person_id, self.p.roles.c.active.is_(True)
                )
            ).all()
        return Principal(person.person_id, person.name, frozenset((r.unit, r.role) for r in roles))

    def by_token(self, token: str) -> Principal | None:
        digest = token_hash(token)
        with self.engine.connect() as conn:
            row = conn.execute(
                select(self.p.tokens.c.person_id).where(self.p.tokens.c.token_sha256 == digest)
            ).first()
        return self.principal(row.person_id) if row else None

    def unit(self, code: str) -> dict[str, object] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(self.p.units).where(self.p.units.c.code == code)).first()
        return dict(row._mapping) if row else None

    def holders(self, unit: str, role: str) -> list[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(self.p.roles.c.person_id).where(
                    self.p.roles.c.unit == unit,
                    self.p.roles.c.role == role,
                    self.p.roles.c.active.is_(True),
                )
            ).all()
        return [r.person_id for r in rows]


def bearer_auth(get_directory: Callable[[], Directory]) -> Callable[[Request], Principal]:
    """A FastAPI dependency: the caller's Principal, or 401 with a problem body."""

    def dependency(request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Problem(
                401,
                "Authentication required",
                "send Authorization: Bearer <token>",
                field="Authorization",
            )
        principal = get_directory().by_token(token.strip())
        if principal is None:
            raise Problem(
                401, "Invalid token", "the bearer token is not known", field="Authorization"
            )
        return principal

    return dependency
