"""The submission path's in-memory answers (issue 18): the directory and the column choices from
memory until their projection changes, and the answer store on driver SQL, on SQLite and
PostgreSQL alike.

A memo must never answer older than the rows: each test changes the rows through the projection
store, as a service's subscription does, and asks again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, event, func, select

from gongkai.directory import Directory, DirectoryProjection
from gongkai.eventlog import RecordedEvent
from gongkai.events import Actor, EventPayload, new_event
from gongkai.events.contracts.freshness import ColumnHidden, ColumnKept
from gongkai.events.contracts.intake import (
    PersonRegistered,
    PostSubmitted,
    RoleGranted,
    TokenIssued,
    TokenRevoked,
    UnitRegistered,
)
from gongkai.projection import Memo, ProjectionStore, make_engine
from gongkai.runtime.clock import FixedClock
from gongkai.runtime.http import Problem
from gongkai.runtime.idempotency import IdempotencyStore, answers
from gongkai.tokens import token_hash
from gongkai_intake.adapters.columns import ColumnChoices, ColumnChoicesProjection
from tests.pg import fresh_database, pg_server

__all__ = ["pg_server"]  # the fixture, imported for pytest

T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)
SYSTEM = Actor(person="operator:test", role="operator", unit="system")
TOKEN = "gk_memo-test-token"


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/memo.db"
    else:
        url = fresh_database(request.getfixturevalue("pg_server"))
    eng = make_engine(url)
    try:
        yield eng
    finally:
        eng.dispose()


class Log:
    """Events with consecutive sequences, as the log hands them to a projection."""

    def __init__(self) -> None:
        self.seq = 0

    def __call__(self, payload: EventPayload, aggregate: str) -> RecordedEvent:
        self.seq += 1
        env = new_event(
            payload, aggregate_id=aggregate, actor=SYSTEM, command_id=f"c{self.seq}",
            recorded_at=T0,
        )
        subject = f"gk.ev.{env.aggregate_type}.{aggregate}.{env.type}"
        return RecordedEvent(self.seq, subject, 0, env, b"")


def directory_with_token(engine: Engine) -> tuple[ProjectionStore, DirectoryProjection, Log]:
    store = ProjectionStore(engine)
    proj = DirectoryProjection()
    store.prepare(proj)
    log = Log()
    store.apply(
        proj,
        [
            log(UnitRegistered(code="finance", name="县财政局", kind="department",
                               contact_name="张三", contact_mobile="13800000000"), "finance"),
            log(PersonRegistered(person_id="p1", name="李四"), "p1"),
            log(RoleGranted(person_id="p1", unit="finance", role="maker"), "p1"),
            log(TokenIssued(person_id="p1", token_sha256=token_hash(TOKEN), token_hint="oken",
                            expires_at=T0 + timedelta(days=30)), "p1"),
        ],
    )
    return store, proj, log


def post(log: Log, i: int) -> RecordedEvent:
    return log(
        PostSubmitted(
            unit="finance", column="work_news", title=f"工作动态 {i}", body="正文",
            origin="produced", channel="website", information_date=T0.date(),
            content_digest="a" * 64,
        ),
        f"post-{i}",
    )


def test_the_directory_answers_from_memory_until_it_changes(engine: Engine) -> None:
    store, proj, log = directory_with_token(engine)
    directory = Directory(engine, proj, clock=FixedClock(T0))
    reads: list[str] = []
    load = directory._principals.load
    directory._principals.load = lambda key: reads.append(key) or load(key)  # type: ignore[method-assign]

    first = directory.by_token(TOKEN)
    assert first is not None and first.roles == {("finance", "maker")}
    # Events the directory does not act on (every submission is one) keep the memo.
    store.apply(proj, [post(log, i) for i in range(3)])
    assert directory.by_token(TOKEN) == first
    assert directory.unit("finance") == directory.unit("finance") != None  # noqa: E711
    assert reads == ["p1"]

    # A role granted, then the token revoked: each answered at once, from the rows.
    store.apply(proj, [log(RoleGranted(person_id="p1", unit="finance", role="leader"), "p1")])
    again = directory.by_token(TOKEN)
    assert again is not None and again.roles == {("finance", "maker"), ("finance", "leader")}
    store.apply(
        proj, [log(TokenRevoked(person_id="p1", token_sha256=token_hash(TOKEN),
                                token_hint="oken"), "p1")]
    )
    assert directory.by_token(TOKEN) is None
    assert reads == ["p1", "p1"]


def test_a_read_that_races_a_commit_is_not_kept(engine: Engine) -> None:
    """The projection commits between the memo's generation and its read: that answer is used
    once, as a plain read would be, and read again next time."""
    store, proj, log = directory_with_token(engine)
    revoked = log(TokenRevoked(person_id="p1", token_sha256=token_hash(TOKEN), token_hint="oken"),
                  "p1")
    directory = Directory(engine, proj, clock=FixedClock(T0))
    inner = directory._token_row
    raced: list[bool] = []

    def read_then_commit(digest: str) -> object:
        row = inner(digest)
        if not raced:
            raced.append(True)
            store.apply(proj, [revoked])  # committed after the read, before the memo keeps it
        return row

    directory._tokens = Memo(proj, read_then_commit)
    assert directory.by_token(TOKEN) is not None  # the row as read: not yet revoked
    assert directory.by_token(TOKEN) is None  # not the memo's older row


def test_column_choices_follow_their_projection(engine: Engine) -> None:
    store = ProjectionStore(engine)
    proj = ColumnChoicesProjection()
    store.prepare(proj)
    choices = ColumnChoices(engine, proj)
    assert choices.hidden("finance", "work_news") is None

    def choice(seq: int, kind: type[ColumnHidden | ColumnKept]) -> RecordedEvent:
        payload = kind(unit="finance", column="work_news", reason="与本单位职能不符")
        env = new_event(payload, aggregate_id="finance-work_news", actor=SYSTEM,
                        command_id=f"c{seq}", recorded_at=T0)
        return RecordedEvent(seq, f"gk.ev.column.finance-work_news.{env.type}", 0, env, b"")

    store.apply(proj, [choice(1, ColumnHidden)])
    assert choices.hidden("finance", "work_news") is True
    store.apply(proj, [choice(2, ColumnKept)])
    assert choices.hidden("finance", "work_news") is False
    # A reset (a rebuild) empties the rows, and the memo with them.
    store.reset(proj)
    assert choices.hidden("finance", "work_news") is None


def test_the_answer_store_keeps_the_first_answer(engine: Engine) -> None:
    store = IdempotencyStore(engine)
    assert store.lookup("p1", "k1", "d" * 64) is None
    store.save("p1", "k1", "d" * 64, 201, {"post_id": "post-1", "单位": "县财政局"}, T0)
    # A concurrent twin's answer arrives second: the first stays.
    store.save("p1", "k1", "d" * 64, 201, {"post_id": "post-2"}, T0 + timedelta(seconds=1))
    found = store.lookup("p1", "k1", "d" * 64)
    assert found is not None
    assert (found.status, found.body) == (201, {"post_id": "post-1", "单位": "县财政局"})
    # Keys are per caller; a key reused for another request is refused.
    assert store.lookup("p2", "k1", "d" * 64) is None
    with pytest.raises(Problem) as refused:
        store.lookup("p1", "k1", "e" * 64)
    assert refused.value.status == 422 and refused.value.field == "Idempotency-Key"
    # The row reads back through SQLAlchemy as the table declares it (an aware UTC time).
    with engine.connect() as conn:
        row = conn.execute(select(answers)).one()
    assert json.loads(row.body)["post_id"] == "post-1"
    stored_at = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    assert stored_at == T0


async def test_answers_of_one_turn_share_a_transaction_committed_before_they_return(
    engine: Engine,
) -> None:
    store = IdempotencyStore(engine)
    checkouts: list[object] = []
    event.listen(engine, "checkout", lambda *_: checkouts.append(None))
    bodies = [{"post_id": f"post-{i}", "单位": "县财政局"} for i in range(20)]
    # Twenty commands answering at once, and a twin of the first with another answer.
    await asyncio.gather(
        *(store.record(f"p{i}", "k", "d" * 64, 201, b, T0) for i, b in enumerate(bodies)),
        store.record("p0", "k", "d" * 64, 201, {"post_id": "post-twin"}, T0),
    )
    assert len(checkouts) == 1  # one connection, one transaction for the turn
    # Committed by the time they returned: another connection reads every answer, the
    # first of the twins kept.
    for i, b in enumerate(bodies):
        found = store.lookup(f"p{i}", "k", "d" * 64)
        assert found is not None and (found.status, found.body) == (201, b)
    # A lone answer is its own statement; no key, nothing to record.
    await store.record("p1", "k2", "e" * 64, 200, {"post_id": "post-1"}, T0)
    await store.record("p1", None, "e" * 64, 200, {"post_id": "post-x"}, T0)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(answers)).scalar_one() == 21


async def test_a_failed_commit_fails_every_answer_of_its_turn(engine: Engine) -> None:
    store = IdempotencyStore(engine)
    answers.drop(engine)  # the write fails: every waiter of the batch hears it
    results = await asyncio.gather(
        *(store.record(f"p{i}", "k", "d" * 64, 201, {}, T0) for i in range(3)),
        return_exceptions=True,
    )
    assert all(isinstance(r, Exception) for r in results), results
    # The next turn starts a batch of its own (and fails on its own for the same reason).
    with pytest.raises(Exception):  # noqa: B017 - the driver's error (SQLite or psycopg)
        await store.record("p9", "k", "d" * 64, 201, {}, T0)
