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
from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, String, Table, Text, select
from sqlalchemy.exc import IntegrityError

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
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        _meta.create_all(engine)

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
        with self.engine.connect() as conn:
            row = conn.execute(
                select(answers).where(
                    answers.c.scope == self.scope(person_id), answers.c.key == key
                )
            ).first()
        if row is None:
            return None
        if row.request_sha256 != request_sha256:
            raise Problem(
                422,
                "Idempotency-Key reused",
                "this key was used for a different request",
                field="Idempotency-Key",
            )
        return Stored(row.status, json.loads(row.body))

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
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    answers.insert().values(
                        scope=self.scope(person_id),
                        key=key,
                        request_sha256=request_sha256,
                        status=status,
                        body=json.dumps(body, ensure_ascii=False, default=str),
                        created_at=at,
                    )
                )
        except IntegrityError:
            pass  # a concurrent twin stored the same answer first

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
