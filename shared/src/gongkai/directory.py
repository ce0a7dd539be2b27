"""The unit directory as every service sees it, and bearer-token authentication.

intake owns the directory's events (UnitRegistered, PersonRegistered, RoleGranted, RoleRevoked,
TokenIssued, TokenRevoked); every service that authenticates callers keeps this projection of
them in its own database. Tokens are random 256-bit strings; only their sha256 is ever recorded
or stored.

A token authenticates while it is neither revoked nor expired (``expires_at``, compared with the
service's injected clock). A revocation holds on every service from the moment it is recorded,
whatever the lag of the service's projection: before answering from its copy, ``authenticate``
asks the log for the sequence of the person's last event and, if its copy has not applied that
far yet, waits until it has (``DirectoryLog``). A token not found in the copy is looked up again
once the copy has applied the whole log, so a token works as soon as ``people token`` returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog
from fastapi import Request
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from gongkai import subjects
from gongkai.eventlog import RecordedEvent
from gongkai.events import Actor
from gongkai.events.contracts import intake as ev
from gongkai.projection import Memo, Projection
from gongkai.runtime.clock import Clock, SystemClock
from gongkai.runtime.http import Problem
from gongkai.tokens import TokenView, token_hash

log = structlog.get_logger("gongkai.directory")
#: The unit of the platform's own actors (operator tools, the demo, the services).
SYSTEM_UNIT = "system"

#: How long a request waits for its service's directory to apply the caller's latest facts.
CATCH_UP_WAIT_S = 5.0


def _aware(at: datetime) -> datetime:
    # SQLite hands back naive datetimes; the projection only ever stores UTC.
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


class DirectoryLog(Protocol):
    """What ``Directory.authenticate`` asks the log and its service's directory subscription."""

    async def last_sequence(self, filter_subject: str | None = None) -> int:
        """The sequence of the last event matching ``filter_subject`` (all events: None)."""
        ...

    def position(self) -> int:
        """The last sequence the service's directory projection has applied."""
        ...

    async def wait_for(self, seq: int, within: float) -> None:
        """Return once the directory projection has applied ``seq``; TimeoutError if not."""
        ...


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
    #: 2: tokens carry their hint, issue time, expiry and revocation.
    schema_version = 2
    filter_subject = "gk.ev.*.*.*"
    #: Only the units' and people's events reach it (every directory event is one of theirs):
    #: the rest of the log, a million posts and signatures, is never sent to this projection.
    filter_subjects = (
        subjects.aggregate_type_filter("person"),
        subjects.aggregate_type_filter("unit"),
    )

    _types = frozenset(
        {
            "UnitRegistered",
            "PersonRegistered",
            "RoleGranted",
            "RoleRevoked",
            "TokenIssued",
            "TokenRevoked",
        }
    )
    consumes = _types

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
            Column("token_hint", String(8), nullable=False),
            Column("issued_at", DateTime(timezone=True), nullable=False),
            Column("expires_at", DateTime(timezone=True), nullable=False),
            Column("revoked", Boolean, nullable=False),
        )

    def may_keep(self, conn: Connection, actor: Actor) -> bool:
        """Who may change the directory: the platform's own tools (unit ``system``: the
        operator's ``gongkai people``/``directory``, the demo) or a holder of the county
        office's ``office`` role at that point of the log.

        intake decides these events and signs them, and refuses anyone else over HTTP; this
        check is for one in the log anyway (intake's key misused): it is left out, so a token
        it issues opens nothing and a role it grants grants nothing.
        """
        if actor.unit == SYSTEM_UNIT:
            return True
        if actor.role != "office":
            return False
        r = self.roles.c
        row = conn.execute(
            select(r.active).where(
                r.person_id == actor.person, r.unit == actor.unit, r.role == "office"
            )
        ).first()
        return bool(row and row[0])

    def apply(self, conn: Connection, event: RecordedEvent) -> None:
        p = event.envelope.payload
        if event.envelope.type in self._types and not self.may_keep(conn, event.envelope.actor):
            log.warning(
                "directory_change_refused",
                event_id=event.envelope.event_id,
                type=event.envelope.type,
                actor=event.envelope.actor.person,
                seq=event.seq,
            )
            return
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
            issued = event.envelope.recorded_at.astimezone(UTC)
            expires = p.expires_at or issued + timedelta(days=ev.LEGACY_TOKEN_LIFETIME_DAYS)
            upsert(
                conn,
                self.tokens,
                {
                    "token_sha256": p.token_sha256,
                    "person_id": p.person_id,
                    "token_hint": p.token_hint,
                    "issued_at": issued,
                    "expires_at": expires.astimezone(UTC),
                    "revoked": False,
                },
                ["token_sha256"],
            )
        elif isinstance(p, ev.TokenRevoked):
            t = self.tokens.c
            conn.execute(
                update(self.tokens)
                .where(t.token_sha256 == p.token_sha256, t.person_id == p.person_id)
                .values(revoked=True)
            )


class Directory:
    """Queries over a service's own copy of the directory.

    ``log``: how to make sure the copy has the caller's latest facts before authenticating
    (every service passes its own; without one, as in unit tests, the copy is trusted as is).
    """

    def __init__(
        self,
        engine: Engine,
        projection: DirectoryProjection,
        *,
        clock: Clock | None = None,
        log: DirectoryLog | None = None,
    ) -> None:
        self.engine = engine
        self.p = projection
        self.clock = clock or SystemClock()
        self.log = log
        # Every request asks for a caller's token and roles, most submissions for a unit's
        # kind: in memory until the projection applies a directory change (profiled: these
        # reads were a third of a submission's time).
        self._principals: Memo[str, Principal | None] = Memo(projection, self._principal)
        self._tokens: Memo[str, Any] = Memo(projection, self._token_row)
        self._units: Memo[str, dict[str, object] | None] = Memo(projection, self._unit)

    def principal(self, person_id: str) -> Principal | None:
        return self._principals(person_id)

    def _principal(self, person_id: str) -> Principal | None:
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

    def _token(self, digest: str) -> Any:
        return self._tokens(digest)

    def _token_row(self, digest: str) -> Any:
        t = self.p.tokens.c
        with self.engine.connect() as conn:
            return conn.execute(
                select(t.person_id, t.expires_at, t.revoked).where(t.token_sha256 == digest)
            ).first()

    def _valid(self, row: Any) -> Principal | None:
        if row is None or row.revoked or _aware(row.expires_at) <= self.clock.now():
            return None
        return self.principal(row.person_id)

    def by_token(self, token: str) -> Principal | None:
        """The token's holder from this copy as it stands (no wait for the log)."""
        return self._valid(self._token(token_hash(token)))

    async def authenticate(self, token: str) -> Principal | None:
        """The token's holder, or None if it is unknown, revoked or expired.

        With a ``log``: first makes sure this copy has applied the last recorded event of any
        person, the holder's included (for an unknown token, the whole log), so a revocation
        recorded anywhere is honoured by the next request. TimeoutError if the copy cannot
        catch up in time.
        """
        digest = token_hash(token)
        if self.log is None:
            return self._valid(self._token(digest))
        # The row read reflects at least what was applied before it was read (the position
        # moves only after a commit); it is current enough only if that covers the target.
        read_at = self.log.position()
        row = self._token(digest)
        if row is None:
            target = await self.log.last_sequence()
        else:
            # Every person's last event, not only the holder's: one read then serves every
            # request at the time (``ProjectionLog`` shares it), and covering more than the
            # holder's events only asks this copy to be as current as it is anyway.
            target = await self.log.last_sequence(subjects.aggregate_type_filter("person"))
        if read_at < target:
            if self.log.position() < target:
                await self.log.wait_for(target, CATCH_UP_WAIT_S)
            row = self._token(digest)
        return self._valid(row)

    def tokens(self, person_id: str) -> list[TokenView]:
        """The person's live tokens (neither revoked nor expired), oldest first."""
        t = self.p.tokens.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.token_hint, t.issued_at, t.expires_at)
                .where(t.person_id == person_id, t.revoked.is_(False))
                .order_by(t.issued_at, t.token_sha256)
            ).all()
        now = self.clock.now()
        return [
            TokenView(r.token_hint, _aware(r.issued_at), _aware(r.expires_at))
            for r in rows
            if _aware(r.expires_at) > now
        ]

    def unit(self, code: str) -> dict[str, object] | None:
        row = self._units(code)
        return dict(row) if row is not None else None  # a copy: the memo's is shared

    def _unit(self, code: str) -> dict[str, object] | None:
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


async def authenticate_header(directory: Directory, header: str | None) -> Principal:
    """The caller named by an ``Authorization: Bearer`` value, or a 401 (503: not sure yet)."""
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            401,
            "Authentication required",
            "send Authorization: Bearer <token>",
            field="Authorization",
        )
    try:
        principal = await directory.authenticate(token.strip())
    except TimeoutError:
        raise Problem(
            503,
            "Directory catching up",
            "this service has not yet applied the latest directory changes; retry shortly",
        ) from None
    if principal is None:
        raise Problem(
            401,
            "Invalid token",
            "the bearer token is not known, was revoked or has expired",
            field="Authorization",
        )
    return principal


def bearer_auth(
    get_directory: Callable[[], Directory],
) -> Callable[[Request], Any]:
    """A FastAPI dependency: the caller's Principal, or 401 with a problem body."""

    async def dependency(request: Request) -> Principal:
        return await authenticate_header(get_directory(), request.headers.get("authorization"))

    return dependency
