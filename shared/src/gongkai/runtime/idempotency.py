"""``Idempotency-Key`` for POST and PUT routes: a retry returns the first answer and records
nothing new; the same key with another request is refused (422).

The key also fixes the command id (and so the event ids) of the command, so two concurrent
requests with one key that both miss the stored answer still record once: JetStream's
``Nats-Msg-Id`` dedup turns the second append into a duplicate.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
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

#: Answers waiting for their transaction: (the row, the future its caller awaits).
_Batch = list[tuple[tuple[Any, ...], "asyncio.Future[None]"]]


@dataclass(frozen=True)
class Stored:
    status: int
    body: Any


def request_digest(method: str, path: str, body: Any) -> str:
    raw = json.dumps([method, path, body], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


#: What orjson would write otherwise than ``json(default=str)`` does, handed back to ``json``.
_PASS_ON = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _body_text(body: Any) -> str:
    """An answer's body as stored: JSON that ``lookup`` reads back to the same value.

    orjson (compact) for the JSON values answers are (1.5 % of a submission's samples with
    ``json``); a datetime or another value JSON has no type for is written as ``str`` gives it,
    as before, by ``json``, and so is whatever orjson refuses.
    """
    try:
        return orjson.dumps(body, option=_PASS_ON).decode()
    except orjson.JSONEncodeError:
        return json.dumps(body, ensure_ascii=False, default=str)


class IdempotencyStore:
    """The first answer to each (caller, key), in the service's database.

    Every command reads it once and writes it once: on driver SQL written here once (as a
    projection's ``RowStatements``), on a pooled DBAPI connection without SQLAlchemy's
    statement building, which profiled at several times the database's own work. The read
    takes no lock (SQLite: a plain snapshot read, not the write lock every SQLAlchemy
    transaction of a service begins with). ``record`` shares one transaction among the
    answers of one turn of the event loop, and returns once it is committed: an answer is
    stored before it is sent. ``save`` writes one at once, its own transaction.
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
        self._sqlite = engine.dialect.name == "sqlite"
        #: Rows ``record`` was given in this turn of each event loop, with their waiters (by
        #: loop: a batch belongs to the loop its flush is scheduled on).
        self._pending: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batch] = (
            weakref.WeakKeyDictionary()
        )

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
        """Store the first answer to (caller, key) at once, in a transaction of its own: for a
        caller writing from a thread of its own (review), with no event loop turn to share."""
        if not key:
            return
        self._execute(self._insert, self._row(person_id, key, request_sha256, status, body, at))

    def _row(
        self, person_id: str, key: str, request_sha256: str, status: int, body: Any,
        at: datetime,
    ) -> tuple[Any, ...]:
        return (
            self.scope(person_id),
            key,
            request_sha256,
            status,
            _body_text(body),
            self._at(at),
        )

    async def record(
        self, person_id: str, key: str | None, request_sha256: str, status: int, body: Any,
        at: datetime,
    ) -> None:
        """Store the first answer to (caller, key), committed with the other answers recorded
        in the same turn of the event loop: one connection checkout, one transaction and one
        commit for them all (an INSERT committed alone was 57 µs of CPU, 38 of it outside
        SQLite's own work; 50 together, 13 each). A twin's answer that arrives second (in the
        same transaction or a later one) leaves the first in place.

        Returns once the answer is committed, so a caller that sends it after this has stored
        it first; a failed commit raises here for every answer in it. The rows are written in
        a callback of their own once the turn's other callbacks ran: a caller cancelled while
        it waits has its answer stored all the same (its events are in the log).
        """
        if not key:
            return
        # Built (the body's JSON) here: a body that cannot be written fails its own caller.
        row = self._row(person_id, key, request_sha256, status, body, at)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        batch = self._pending.get(loop)
        if batch is None:
            batch = self._pending[loop] = []
            loop.call_soon(self._flush, loop)
        batch.append((row, done))
        await done

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._pending.pop(loop, [])
        try:
            self._insert_rows([row for row, _ in batch])
        except Exception as exc:  # noqa: BLE001 - handed to every waiter of the batch
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
        else:
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

    def _insert_rows(self, rows: list[tuple[Any, ...]]) -> None:
        if len(rows) == 1:
            self._execute(self._insert, rows[0])
            return
        raw = self.engine.raw_connection()
        try:
            cur = raw.cursor()
            try:
                if self._sqlite:
                    # The engine's SQLite connections are in autocommit (the driver opens no
                    # transactions): one is opened here, with the write lock taken first as
                    # every transaction of a service takes it (``make_engine``).
                    cur.execute("BEGIN IMMEDIATE")
                cur.executemany(self._insert, rows)
            except BaseException:
                raw.rollback()
                raise
            finally:
                cur.close()
            raw.commit()
        finally:
            raw.close()

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
        await self.record(person_id, key, digest, status, answer, now())
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
