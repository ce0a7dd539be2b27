"""Tokens recorded before expiries existed (TokenIssued v1), and the decisions on tokens."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import create_engine

from gongkai.directory import Directory, DirectoryProjection
from gongkai.eventlog import RecordedEvent
from gongkai.events import Actor, EventPayload, canonical_json, new_event
from gongkai.events.contracts.intake import PersonRegistered, TokenIssued, TokenRevoked
from gongkai.events.envelope import HDR_TYPE, HDR_VERSION, REGISTRY
from gongkai.projection import ProjectionStore
from gongkai.refusal import Refusal
from gongkai.runtime.clock import FixedClock
from gongkai.tokens import token_hash
from gongkai_intake.domain import directory as d

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
ACTOR = Actor(person="operator:test", role="operator", unit="system")
TOKEN = "gk_legacy-token"


def v1_token_issued(at: datetime) -> bytes:
    env = new_event(
        TokenIssued(person_id="p1", token_sha256=token_hash(TOKEN), token_hint=TOKEN[-4:]),
        aggregate_id="p1",
        actor=ACTOR,
        command_id="legacy",
        recorded_at=at,
    )
    raw = env.model_dump(mode="json")
    raw["schema_version"] = 1
    del raw["payload"]["expires_at"]  # v1 had no such field
    return canonical_json(raw)


def test_a_v1_token_reads_as_v2_without_an_expiry() -> None:
    env = REGISTRY.decode(v1_token_issued(T0), {HDR_TYPE: "TokenIssued", HDR_VERSION: "1"})
    assert env.schema_version == 2
    assert isinstance(env.payload, TokenIssued) and env.payload.expires_at is None


def test_a_v1_token_expires_90_days_after_it_was_recorded() -> None:
    engine = create_engine("sqlite://")
    store = ProjectionStore(engine)
    proj = DirectoryProjection()
    store.prepare(proj)
    person = new_event(
        PersonRegistered(person_id="p1", name="某人"),
        aggregate_id="p1",
        actor=ACTOR,
        command_id="p",
        recorded_at=T0,
    )
    legacy = REGISTRY.decode(v1_token_issued(T0), {HDR_TYPE: "TokenIssued", HDR_VERSION: "1"})
    store.apply(
        proj,
        [
            RecordedEvent(1, "gk.ev.person.p1.PersonRegistered", 0, person, b""),
            RecordedEvent(2, "gk.ev.person.p1.TokenIssued", 0, legacy, b""),
        ],
    )
    clock = FixedClock(T0 + timedelta(days=90, seconds=-1))
    directory = Directory(engine, proj, clock=clock)
    assert directory.by_token(TOKEN) is not None
    [view] = directory.tokens("p1")
    assert (view.issued_at, view.expires_at) == (T0, T0 + timedelta(days=90))
    clock.advance(seconds=1)
    assert directory.by_token(TOKEN) is None and directory.tokens("p1") == []


ADMIN = d.Context(admin=True, today=date(2026, 3, 2), now=T0)


def person_with(*tokens: tuple[str, str, datetime]) -> d.PersonState:
    state = d.evolve_person(d.PERSON_INITIAL, PersonRegistered(person_id="p1", name="某人"))
    for sha, hint, expires in tokens:
        state = d.evolve_person(
            state,
            TokenIssued(person_id="p1", token_sha256=sha, token_hint=hint, expires_at=expires),
        )
    return state


def test_issuing_replaces_only_live_tokens_and_a_hint_must_name_one() -> None:
    later = T0 + timedelta(days=10)
    state = person_with(
        ("a" * 64, "aaaa", later),
        ("b" * 64, "same", later),
        ("c" * 64, "same", later),
        ("d" * 64, "dddd", T0),  # expired at T0
    )
    evs = d.issue_token(d.IssueToken("p1", "e" * 64, "eeee", later, replace=True), state, ADMIN)
    assert isinstance(evs[0], TokenIssued)
    assert [(e.token_sha256[0], e.reason) for e in evs[1:] if isinstance(e, TokenRevoked)] == [
        ("a", "replaced"), ("b", "replaced"), ("c", "replaced")
    ]
    # The same live token again: nothing (a retry); kept others: no revocation.
    live = person_with(("e" * 64, "eeee", later))
    assert d.issue_token(d.IssueToken("p1", "e" * 64, "eeee", later), live, ADMIN) == []
    with pytest.raises(Refusal) as exc:
        d.revoke_tokens(d.RevokeTokens("p1", token_hint="same"), state, ADMIN)
    assert exc.value.kind == "conflict" and exc.value.field == "token"
    [one] = d.revoke_tokens(d.RevokeTokens("p1", token_hint="aaaa"), state, ADMIN)
    assert one.token_sha256 == "a" * 64 and one.reason == "revoked"
    revoked = d.evolve_person(state, one)
    assert "a" * 64 not in revoked.live_tokens(T0)


class RacingLog:
    """A directory's view of the log in which the projection commits the revocation while the
    service is asking the log how far the person's events go (the race a live service meets)."""

    def __init__(self, store: ProjectionStore, proj: DirectoryProjection, pending: RecordedEvent):
        self.store, self.proj, self.pending = store, proj, pending
        self.applied = 2

    async def last_sequence(self, filter_subject: str | None = None) -> int:
        self.store.apply(self.proj, [self.pending])
        self.applied = self.pending.seq
        return self.pending.seq

    def position(self) -> int:
        return self.applied

    async def wait_for(self, seq: int, within: float) -> None:
        raise AssertionError("already applied: nothing to wait for")


async def test_a_revocation_applied_while_the_log_is_asked_is_honoured() -> None:
    engine = create_engine("sqlite://")
    store = ProjectionStore(engine)
    proj = DirectoryProjection()
    store.prepare(proj)

    def rec(seq: int, payload: EventPayload) -> RecordedEvent:
        env = new_event(
            payload, aggregate_id="p1", actor=ACTOR, command_id=f"c{seq}", recorded_at=T0
        )
        return RecordedEvent(seq, f"gk.ev.person.p1.{env.type}", 0, env, b"")

    sha = token_hash(TOKEN)
    issued = TokenIssued(
        person_id="p1", token_sha256=sha, token_hint="oken", expires_at=T0 + timedelta(days=1)
    )
    store.apply(proj, [rec(1, PersonRegistered(person_id="p1", name="某人")), rec(2, issued)])
    revoked = rec(3, TokenRevoked(person_id="p1", token_sha256=sha, token_hint="oken"))
    directory = Directory(engine, proj, clock=FixedClock(T0), log=RacingLog(store, proj, revoked))
    assert await directory.authenticate(TOKEN) is None
