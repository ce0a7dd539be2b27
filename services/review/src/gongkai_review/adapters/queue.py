"""The work-queue read model: every post's review state and the stage it awaits.

Fed from the log in order with exactly-once checkpoints (``gongkai.projection``). The rows hold
the decider's own state as JSON, folded with the same ``evolve`` the commands use, so the queue
and the decider cannot disagree about which stage is open. The rows keep screened personal data
only masked (``gongkai_review.domain.reading.masked``), the title included: a read model is
never where the unmasked content is read.

A recorded signature advances a post only if its signer had the authority to give it, checked
as ``GET /posts/{id}/review`` checks it (``gongkai_review.domain.chain.refusal``): the projection
keeps every person's role grants and revocations (``review_roles``, the events themselves, as
the repository loads them from the log) and the signatures it left out (``review_refused``, so
the conclusion of such a signature's command is left out with it). A refused event leaves the
post's row as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import structlog
from sqlalchemy import Column, Connection, Engine, Integer, MetaData, String, Table, Text, select

from gongkai.directory import upsert
from gongkai.eventlog import RecordedEvent
from gongkai.events import REGISTRY, Envelope
from gongkai.events.contracts import intake as post_ev
from gongkai.events.contracts import review as ev
from gongkai.events.contracts.review import StaffStagePolicy
from gongkai.projection import (
    Projection,
    checkpoints,
    driver_cursor,
    marker,
    row_statements,
    type_subjects,
)
from gongkai_review.domain.chain import (
    STAGE_ORDER,
    ReviewState,
    evolve,
    may_sign,
    queue_entry,
    refusal,
)
from gongkai_review.domain.reading import masked

_POST_EVENTS = (post_ev.PostSubmitted, post_ev.PostRevised, post_ev.PostWithdrawn)
_REVIEW_EVENTS = (ev.ReviewSigned, ev.ReviewConcluded)
_ROLE_EVENTS = (post_ev.RoleGranted, post_ev.RoleRevoked)
_APPLIED = (*_POST_EVENTS, *_REVIEW_EVENTS, *_ROLE_EVENTS, ev.ReviewPolicySet)

#: Posts' states kept in memory from one batch to the next: live, a post's submission and its
#: signatures arrive in batches of their own. A state is about 10 KB of objects, so past this
#: many (5 MB) they are let go and read again from their rows.
KEPT_STATES = 500
#: Keys per ``IN (...)`` of a batch's reads (SQLite allows 999 parameters in old builds).
_IN_CHUNK = 500

log = structlog.get_logger("gongkai.review")


def _in_log_order(name: str, metadata: MetaData, *, by: str, kept: str) -> Table:
    """A table with one row per event, keyed by its stream sequence, looked up by ``by``."""
    return Table(
        name,
        metadata,
        Column("seq", Integer, primary_key=True, autoincrement=False),
        Column(by, String(128), nullable=False, index=True),
        Column(kept, Text, nullable=False),
    )


class ReviewQueueProjection(Projection):
    name = "review_queue"
    #: 2: screened spans masked in the stored state (rebuilds rows kept unmasked by version 1).
    #: 3: a signature without authority (and its conclusion) no longer advances a post.
    schema_version = 3
    filter_subject = "gk.ev.>"
    consumes = frozenset(
        c.event_type for c in (*_POST_EVENTS, *_REVIEW_EVENTS, *_ROLE_EVENTS, ev.ReviewPolicySet)
    )
    # Publications, columns, tokens, findings... are passed over unread, by subject. The
    # queue reads about three quarters of a county's log: asked to filter by these eight
    # subjects, nats-server spent 235 µs of CPU on each event it sent (180 s behind a
    # million events, more than review's own catch-up), against 6 µs for "gk.ev.>".
    filter_subjects = type_subjects(consumes)
    server_filters = False

    def __init__(self) -> None:
        super().__init__()
        #: Posts' states as their rows hold them (masked), kept across batches (see ``begin``).
        self._states: dict[str, ReviewState] = {}
        self._pending: list[RecordedEvent] = []
        #: The checkpoint the last flush's batch leaves, while ``_states`` are those rows.
        self._kept_through: int | None = None
        self._last_seen = 0
        self._grants_of: dict[str, list[Envelope[Any]]] = {}
        #: The last role event the kept grants know of (see ``begin``).
        self._roles_mark = 0

    def define(self, metadata: MetaData) -> None:
        self.posts = Table(
            "review_posts",
            metadata,
            Column("post_id", String(128), primary_key=True),
            Column("unit", String(128), nullable=False, index=True),
            Column("awaiting", String(16), nullable=True),
            Column("chain", Integer, nullable=True),
            # ISO-8601 UTC text: SQLite drops the zone of a DateTime column.
            Column("waiting_since", String(40), nullable=True),
            Column("state", Text, nullable=False),
        )
        self.policies = Table(
            "review_policies",
            metadata,
            Column("unit", String(128), primary_key=True),
            Column("staff_stage", String(16), nullable=False),
        )
        # Every RoleGranted / RoleRevoked, in log order: whose authority a signature rests on.
        self.roles = _in_log_order("review_roles", metadata, by="person_id", kept="event")
        # Signatures left out for want of authority: their command's conclusion goes with them.
        self.refused = _in_log_order("review_refused", metadata, by="post_id", kept="command_id")

    def begin(self, conn: Connection) -> None:
        self._pending = []
        cur = driver_cursor(conn)
        # The states kept from earlier batches are the rows only while the checkpoint is where
        # the last flush left it: a batch rolled back after it, a reset, or another writer
        # makes them forgotten, and the rows are read again.
        cur.execute(self._marks_sql(conn.dialect.paramstyle), (self.name,))
        ((at, mark),) = cur.fetchall()
        if at != self._kept_through:
            self._states = {}
        self._kept_through = None
        # Signers' grants are kept across batches while the roles table ends where they knew
        # it: a batch rolled back after a role event, or another writer, makes them forgotten.
        mark = mark or 0
        if mark != self._roles_mark:
            self._grants_of = {}
            self._roles_mark = mark

    def apply(self, conn: Connection, event: RecordedEvent) -> None:
        # Kept for ``flush``: the batch's posts, policies and refused signatures are then read
        # with a few queries for all of its events instead of a query or two per event.
        if isinstance(event.envelope.payload, _APPLIED):
            self._pending.append(event)
        self._last_seen = event.seq

    def flush(self, conn: Connection) -> None:
        events, self._pending = self._pending, []
        cur = driver_cursor(conn)
        paramstyle = conn.dialect.paramstyle
        touched = {
            e.envelope.aggregate_id
            for e in events
            if isinstance(e.envelope.payload, _POST_EVENTS + _REVIEW_EVENTS)
        }
        self._read_states(cur, paramstyle, touched - self._states.keys())
        # Only a conclusion asks whether its command's signature was refused, and only a
        # submission asks its unit's policy (one small row a unit; a few hundred in a county).
        concluded = {
            e.envelope.aggregate_id
            for e in events
            if isinstance(e.envelope.payload, ev.ReviewConcluded)
        }
        refused = self._read_refused(cur, paramstyle, concluded) if concluded else set()
        policies: dict[str, StaffStagePolicy] = {}
        if any(isinstance(e.envelope.payload, post_ev.PostSubmitted) for e in events):
            policies = dict(self._all(cur, "SELECT unit, staff_stage FROM review_policies"))
        dirty: dict[str, None] = {}
        for event in events:
            self._fold(conn, event, policies, refused, dirty)
        rows = [self._row(self._states[post_id]) for post_id in dirty]
        if rows:
            cur.executemany(row_statements(self.posts, "state", paramstyle).put, rows)
        if len(self._states) > KEPT_STATES:
            self._states = {}
        self._kept_through = self._last_seen

    def _fold(
        self,
        conn: Connection,
        event: RecordedEvent,
        policies: dict[str, StaffStagePolicy],
        refused: set[tuple[str, str]],
        dirty: dict[str, None],
    ) -> None:
        env = event.envelope
        p = env.payload
        if isinstance(p, ev.ReviewPolicySet):
            # Rare: every post of the unit folds it, those not yet read are read now.
            upsert(conn, self.policies, {"unit": p.unit, "staff_stage": p.staff_stage}, ["unit"])
            policies[p.unit] = p.staff_stage
            m = marker(conn.dialect.paramstyle)
            sql = f"SELECT post_id, state FROM review_posts WHERE unit = {m}"  # noqa: S608
            for post_id, state in self._all(driver_cursor(conn), sql, (p.unit,)):
                if post_id not in self._states:
                    self._states[post_id] = ReviewState.model_validate_json(state)
            for post_id, kept in self._states.items():
                if kept.post is not None and kept.post.unit == p.unit:
                    self._states[post_id] = evolve(kept, env)
                    dirty[post_id] = None
            return
        if isinstance(p, _ROLE_EVENTS):
            # Kept under the person aggregate the event belongs to, as the repository loads it.
            event_json = env.to_json().decode()
            grant = {"seq": event.seq, "person_id": env.aggregate_id, "event": event_json}
            upsert(conn, self.roles, grant, ["seq"])
            self._grants_of.pop(env.aggregate_id, None)
            self._roles_mark = max(self._roles_mark, event.seq)
            return
        state = self._states.get(env.aggregate_id)
        if state is None:
            if not isinstance(p, post_ev.PostSubmitted):
                return  # nothing to review without the submission
            state = ReviewState(staff_stage=policies.get(p.unit, "important_only"))
        if isinstance(p, _REVIEW_EVENTS) and self._refused(conn, state, event, refused):
            return
        new = evolve(state, env)
        if new.post is None:
            return  # no row to write: the next event reads what the row holds
        # What the row will hold (masked), so the batch's next event folds what it would read.
        self._states[env.aggregate_id] = masked(new)
        dirty[env.aggregate_id] = None

    def _refused(
        self,
        conn: Connection,
        state: ReviewState,
        event: RecordedEvent,
        refused: set[tuple[str, str]],
    ) -> bool:
        """Leave out a signature without authority, and the conclusion of its command."""
        env = event.envelope
        p = env.payload
        grants: dict[str, list[Envelope[Any]]] = {}
        tainted: frozenset[str] = frozenset()
        if isinstance(p, ev.ReviewSigned):
            person = p.signer.person
            grants[person] = self._grants(conn, person)
        elif (env.aggregate_id, env.command_id) in refused:
            tainted = frozenset({env.command_id})
        why = refusal(state, env, grants, tainted)
        if why is None:
            return False
        if isinstance(p, ev.ReviewSigned):
            row = {"seq": event.seq, "post_id": env.aggregate_id, "command_id": env.command_id}
            upsert(conn, self.refused, row, ["seq"])
            refused.add((env.aggregate_id, env.command_id))
        log.warning("review_event_refused", seq=event.seq, type=env.type, reason=why)
        return True

    @staticmethod
    def _marks_sql(paramstyle: str) -> str:
        """The projection's checkpoint and the last role event kept, in one statement."""
        return (
            f"SELECT (SELECT last_seq FROM {checkpoints.name} WHERE projection = "  # noqa: S608
            f"{marker(paramstyle)}), (SELECT max(seq) FROM review_roles)"
        )

    @staticmethod
    def _all(cur: Any, sql: str, key: tuple[Any, ...] = ()) -> list[Any]:
        cur.execute(sql, key)
        return list(cur.fetchall())

    def _keyed(
        self, cur: Any, paramstyle: str, sql: str, keys: set[str]
    ) -> Iterator[Any]:
        """The rows ``sql`` selects ``WHERE post_id IN (...)`` for ``keys``, a chunk at a time."""
        ordered = sorted(keys)
        m = marker(paramstyle)
        for lo in range(0, len(ordered), _IN_CHUNK):
            chunk = ordered[lo : lo + _IN_CHUNK]
            yield from self._all(cur, sql + f" ({', '.join([m] * len(chunk))})", tuple(chunk))

    def _read_states(self, cur: Any, paramstyle: str, post_ids: set[str]) -> None:
        sql = "SELECT post_id, state FROM review_posts WHERE post_id IN"
        for post_id, state in self._keyed(cur, paramstyle, sql, post_ids):
            self._states[post_id] = ReviewState.model_validate_json(state)

    def _read_refused(self, cur: Any, paramstyle: str, post_ids: set[str]) -> set[tuple[str, str]]:
        sql = "SELECT post_id, command_id FROM review_refused WHERE post_id IN"
        return {(post, command) for post, command in self._keyed(cur, paramstyle, sql, post_ids)}

    def _grants(self, conn: Connection, person: str) -> list[Envelope[Any]]:
        """The person's role grants and revocations, in log order (as the repository loads them)."""
        kept = self._grants_of.get(person)
        if kept is not None:
            return kept
        r = self.roles.c
        rows = conn.execute(select(r.event).where(r.person_id == person).order_by(r.seq)).all()
        found = [REGISTRY.decode(row.event.encode()) for row in rows]
        self._grants_of[person] = found
        return found

    @staticmethod
    def _row(state: ReviewState) -> tuple[Any, ...]:
        """The post's row: the masked state, and what the queue is asked by."""
        post = state.post
        assert post is not None
        stage, chain, since = queue_entry(state)
        return (
            post.post_id,
            post.unit,
            stage,
            chain,
            since.isoformat() if since else None,
            state.model_dump_json(),
        )


def waiting_for(
    engine: Engine,
    projection: ReviewQueueProjection,
    person_id: str,
    roles: frozenset[tuple[str, str]],
) -> list[ReviewState]:
    """Posts whose awaited stage this person may sign now, oldest wait first."""
    units = sorted({u for u, r in roles if r in STAGE_ORDER})
    if not units:
        return []
    t = projection.posts
    with engine.connect() as conn:
        rows: Iterable[Any] = conn.execute(
            select(t.c.state)
            .where(t.c.unit.in_(units), t.c.awaiting.is_not(None))
            .order_by(t.c.waiting_since, t.c.post_id)
        ).all()
    states = (ReviewState.model_validate_json(r.state) for r in rows)
    return [s for s in states if may_sign(s, person_id, roles) is not None]
