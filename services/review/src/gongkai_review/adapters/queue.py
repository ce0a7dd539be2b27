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

from collections.abc import Iterable
from typing import Any

import structlog
from sqlalchemy import Column, Connection, Engine, Integer, MetaData, String, Table, Text, select

from gongkai.directory import upsert
from gongkai.eventlog import RecordedEvent
from gongkai.events import REGISTRY, Envelope
from gongkai.events.contracts import intake as post_ev
from gongkai.events.contracts import review as ev
from gongkai.projection import (
    Projection,
    driver_cursor,
    fetch_value,
    marker,
    row_statements,
    type_subjects,
)
from gongkai_review.domain.chain import (
    STAGE_ORDER,
    ReviewState,
    awaiting,
    current_chain,
    evolve,
    may_sign,
    refusal,
    waiting_since,
)
from gongkai_review.domain.reading import masked

_POST_EVENTS = (post_ev.PostSubmitted, post_ev.PostRevised, post_ev.PostWithdrawn)
_REVIEW_EVENTS = (ev.ReviewSigned, ev.ReviewConcluded)
_ROLE_EVENTS = (post_ev.RoleGranted, post_ev.RoleRevoked)

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
    # Publications, columns, tokens, findings... are never sent: the server filters by type.
    filter_subjects = type_subjects(consumes)

    def __init__(self) -> None:
        super().__init__()
        self._states: dict[str, ReviewState] = {}
        self._dirty: dict[str, None] = {}
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
        # A batch's memory: a post touched by several events of the batch (submitted, signed,
        # concluded) is read once and written once.
        self._states = {}
        self._dirty = {}
        # Signers' grants are kept across batches while the roles table ends where they knew
        # it: a batch rolled back after a role event, or another writer, makes them forgotten.
        mark = fetch_value(driver_cursor(conn), self._roles_end, ()) or 0
        if mark != self._roles_mark:
            self._grants_of = {}
            self._roles_mark = mark

    def flush(self, conn: Connection) -> None:
        for post_id in self._dirty:
            self._save(conn, self._states[post_id])
        self._dirty = {}

    def apply(self, conn: Connection, event: RecordedEvent) -> None:
        env = event.envelope
        p = env.payload
        if isinstance(p, ev.ReviewPolicySet):
            # Rare: the kept states go to their rows first, so the query reads them all.
            self.flush(conn)
            self._states = {}
            upsert(conn, self.policies, {"unit": p.unit, "staff_stage": p.staff_stage}, ["unit"])
            rows = conn.execute(select(self.posts).where(self.posts.c.unit == p.unit)).all()
            for row in rows:
                self._save(conn, evolve(ReviewState.model_validate_json(row.state), env))
            return
        if isinstance(p, _ROLE_EVENTS):
            # Kept under the person aggregate the event belongs to, as the repository loads it.
            event_json = env.to_json().decode()
            grant = {"seq": event.seq, "person_id": env.aggregate_id, "event": event_json}
            upsert(conn, self.roles, grant, ["seq"])
            self._grants_of.pop(env.aggregate_id, None)
            self._roles_mark = max(self._roles_mark, event.seq)
            return
        if not isinstance(p, _POST_EVENTS + _REVIEW_EVENTS):
            return
        state = self._states.get(env.aggregate_id)
        if state is None:
            sql = row_statements(self.posts, "state", conn.dialect.paramstyle)
            found = fetch_value(driver_cursor(conn), sql.get, (env.aggregate_id,))
            if found is not None:
                state = ReviewState.model_validate_json(found)
            elif isinstance(p, post_ev.PostSubmitted):
                stage = row_statements(self.policies, "staff_stage", conn.dialect.paramstyle)
                policy = fetch_value(driver_cursor(conn), stage.get, (p.unit,))
                state = ReviewState(staff_stage=policy or "important_only")
            else:
                return  # nothing to review without the submission
        if isinstance(p, _REVIEW_EVENTS) and self._refused(conn, state, event):
            return
        new = evolve(state, env)
        if new.post is None:
            return  # no row to write: the next event reads what the row holds
        # What the row will hold (masked), so the batch's next event folds what it would read.
        self._states[env.aggregate_id] = masked(new)
        self._dirty[env.aggregate_id] = None

    def _refused(self, conn: Connection, state: ReviewState, event: RecordedEvent) -> bool:
        """Leave out a signature without authority, and the conclusion of its command."""
        env = event.envelope
        p = env.payload
        grants: dict[str, list[Envelope[Any]]] = {}
        tainted: frozenset[str] = frozenset()
        if isinstance(p, ev.ReviewSigned):
            person = p.signer.person
            grants[person] = self._grants(conn, person)
        else:
            found = fetch_value(
                driver_cursor(conn),
                self._refused_sql(conn.dialect.paramstyle),
                (env.aggregate_id, env.command_id),
            )
            tainted = frozenset({env.command_id}) if found is not None else frozenset()
        why = refusal(state, env, grants, tainted)
        if why is None:
            return False
        if isinstance(p, ev.ReviewSigned):
            row = {"seq": event.seq, "post_id": env.aggregate_id, "command_id": env.command_id}
            upsert(conn, self.refused, row, ["seq"])
        log.warning("review_event_refused", seq=event.seq, type=env.type, reason=why)
        return True

    _roles_end = "SELECT max(seq) FROM review_roles"

    @staticmethod
    def _refused_sql(paramstyle: str) -> str:
        m = marker(paramstyle)
        return f"SELECT seq FROM review_refused WHERE post_id = {m} AND command_id = {m}"  # noqa: S608

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

    def _save(self, conn: Connection, state: ReviewState) -> None:
        post = state.post
        if post is None:
            return
        state = masked(state)
        since = waiting_since(state)
        chain = current_chain(state)
        driver_cursor(conn).execute(
            row_statements(self.posts, "state", conn.dialect.paramstyle).put,
            (
                post.post_id,
                post.unit,
                awaiting(state),
                chain.number if chain else None,
                since.isoformat() if since else None,
                state.model_dump_json(),
            ),
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
