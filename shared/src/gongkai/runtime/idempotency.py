"""``Idempotency-Key`` for POST and PUT routes: a retry returns the first answer and records
nothing new; the same key with another request is refused (422).

The key also fixes the command id (and so the event ids) of the command, so two concurrent
requests with one key that both miss the stored answer still record once: JetStream's
``Nats-Msg-Id`` dedup turns the second append into a duplicate.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Response
from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, String, Table, Text

from gongkai.runtime.http import Problem

_meta = MetaData()
answers = Table(
    "gk_idempotency",
    _meta,
    Column("scope", String(64), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("request_sha256", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

#: The answer store's table, for a service's schema (``Service.add_tables``).
metadata = _meta

MAX_KEY = 200


@dataclass(frozen=True)
class Stored:
    status: int
    body: Any


def request_digest(method: str, path: str, body: Any) -> str:
    raw = json.dumps([method, path, body], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


class IdempotencyStore:
    """The first answer to each (caller, key), in the service's database.

    Every command reads it once and writes it once: on driver SQL written here once (as a
    projection's ``RowStatements``), on a pooled DBAPI connection without SQLAlchemy's
    statement building, which profiled at several times the database's own work. The read
    takes no lock (SQLite: a plain snapshot read, not the write lock every SQLAlchemy
    transaction of a service begins with); the write is one statement, its own transaction.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        _meta.create_all(engine)
        m = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        q = engine.dialect.identifier_preparer.quote
        cols = ", ".join(q(c.name) for c in answers.columns)
        where = f"{q('scope')} = {m} AND {q('key')} = {m}"
        # Names are the table's own, never input.
        self._select = (
            f"SELECT {q('request_sha256')}, {q('status')}, {q('body')} "  # noqa: S608
            f"FROM {q(answers.name)} WHERE {where}"
        )
        # A concurrent twin that stored the same answer first wins; this one is the same.
        self._insert = (
            f"INSERT INTO {q(answers.name)} ({cols}) "  # noqa: S608
            f"VALUES ({', '.join([m] * len(answers.columns))}) "
            f"ON CONFLICT ({q('scope')}, {q('key')}) DO NOTHING"
        )
        # The column type's own conversion, so a row reads back as SQLAlchemy wrote it.
        self._at = answers.c.created_at.type.bind_processor(engine.dialect) or (lambda v: v)

    def _execute(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        raw = self.engine.raw_connection()
        try:
            cur = raw.cursor()
            try:
                cur.execute(sql, params)
                rows = list(cur.fetchall()) if cur.description is not None else []
            finally:
                cur.close()
            raw.commit()  # a no-op on SQLite's autocommit connection; PostgreSQL's ends here
            return rows
        finally:
            raw.close()

    @staticmethod
    def scope(person_id: str) -> str:
        # Keys are per caller: one person's key can never replay another person's answer.
        return hashlib.sha256(person_id.encode()).hexdigest()[:32]

    @staticmethod
    def command_id(person_id: str, key: str | None, route: str) -> str:
        if not key:
            return str(uuid.uuid4())
        return hashlib.sha256(f"{person_id}\x00{route}\x00{key}".encode()).hexdigest()[:40]

    @staticmethod
    def check_key(key: str | None) -> None:
        if key is not None and not (0 < len(key) <= MAX_KEY and key.isprintable()):
            raise Problem(
                400,
                "Invalid Idempotency-Key",
                f"1-{MAX_KEY} printable characters",
                field="Idempotency-Key",
            )

    def lookup(self, person_id: str, key: str | None, request_sha256: str) -> Stored | None:
        if not key:
            return None
        rows = self._execute(self._select, (self.scope(person_id), key))
        if not rows:
            return None
        stored_sha, status, body = rows[0]
        if stored_sha != request_sha256:
            raise Problem(
                422,
                "Idempotency-Key reused",
                "this key was used for a different request",
                field="Idempotency-Key",
            )
        return Stored(int(status), json.loads(body))

    def save(
        self,
        person_id: str,
        key: str | None,
        request_sha256: str,
        status: int,
        body: Any,
        at: datetime,
    ) -> None:
        if not key:
            return
        self._execute(
            self._insert,
            (
                self.scope(person_id),
                key,
                request_sha256,
                status,
                json.dumps(body, ensure_ascii=False, default=str),
                self._at(at),
            ),
        )

    async def once(
        self,
        person_id: str,
        key: str | None,
        request: tuple[str, str, Any],
        run: Callable[[], Awaitable[Any]],
        now: Callable[[], datetime],
        status: int = 200,
    ) -> tuple[Any, bool]:
        """``run`` once per (caller, key): (its answer, False), or (the first answer, True).

        ``request`` is (method, path, body) as the caller sent it; a key seen with another
        request raises the 422 ``lookup`` raises. A refusal (a raised Problem) is not stored,
        as on every POST route: the caller may fix the request and retry with the same key.
        """
        self.check_key(key)
        digest = request_digest(*request)
        stored = self.lookup(person_id, key, digest)
        if stored is not None:
            return stored.body, True
        answer = await run()
        self.save(person_id, key, digest, status, answer, now())
        return answer, False

    async def answer_once(
        self,
        response: Response,
        person_id: str,
        key: str | None,
        request: tuple[str, str, Any],
        run: Callable[[], Awaitable[dict[str, Any]]],
        now: Callable[[], datetime],
    ) -> dict[str, Any]:
        """``once`` for a route: the answer, with the response marked ``Idempotent-Replayed``
        when it is the first answer again (as every POST of intake marks it)."""
        answer, replayed = await self.once(person_id, key, request, run, now)
        if replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return dict(answer)
