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
from gongkai.projection import Projection, driver_cursor, fetch_value, row_statements
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


class ReviewQueueProjection(Projection):
    name = "review_queue"
    #: 2: screened spans masked in the stored state (rebuilds rows kept unmasked by version 1).
    #: 3: a signature without authority (and its conclusion) no longer advances a post.
    schema_version = 3
    filter_subject = "gk.ev.>"
    consumes = frozenset(
        c.event_type for c in (*_POST_EVENTS, *_REVIEW_EVENTS, *_ROLE_EVENTS, ev.ReviewPolicySet)
    )

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
        self.roles = Table(
            "review_roles",
            metadata,
            Column("seq", Integer, primary_key=True, autoincrement=False),
            Column("person_id", String(128), nullable=False, index=True),
            Column("event", Text, nullable=False),
        )
        # Signatures left out for want of authority: their command's conclusion goes with them.
        self.refused = Table(
            "review_refused",
            metadata,
            Column("seq", Integer, primary_key=True, autoincrement=False),
            Column("post_id", String(128), nullable=False, index=True),
            Column("command_id", Text, nullable=False),
        )

    def apply(self, conn: Connection, event: RecordedEvent) -> None:
        env = event.envelope
        p = env.payload
        if isinstance(p, ev.ReviewPolicySet):
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
            return
        if not isinstance(p, _POST_EVENTS + _REVIEW_EVENTS):
            return
        sql = row_statements(self.posts, "state", conn.dialect.paramstyle)
        found = fetch_value(driver_cursor(conn), sql.get, (env.aggregate_id,))
        if found is not None:
            state = ReviewState.model_validate_json(found)
        elif isinstance(p, post_ev.PostSubmitted):
            policy = conn.execute(
                select(self.policies.c.staff_stage).where(self.policies.c.unit == p.unit)
            ).scalar()
            state = ReviewState(staff_stage=policy or "important_only")
        else:
            return  # nothing to review without the submission
        if isinstance(p, _REVIEW_EVENTS) and self._refused(conn, state, event):
            return
        self._save(conn, evolve(state, env))

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
            r = self.refused.c
            found = conn.execute(
                select(r.seq).where(r.post_id == env.aggregate_id, r.command_id == env.command_id)
            ).first()
            tainted = frozenset({env.command_id}) if found else frozenset()
        why = refusal(state, env, grants, tainted)
        if why is None:
            return False
        if isinstance(p, ev.ReviewSigned):
            row = {"seq": event.seq, "post_id": env.aggregate_id, "command_id": env.command_id}
            upsert(conn, self.refused, row, ["seq"])
        log.warning("review_event_refused", seq=event.seq, type=env.type, reason=why)
        return True

    def _grants(self, conn: Connection, person: str) -> list[Envelope[Any]]:
        """The person's role grants and revocations, in log order (as the repository loads them)."""
        r = self.roles.c
        rows = conn.execute(select(r.event).where(r.person_id == person).order_by(r.seq)).all()
        return [REGISTRY.decode(row.event.encode()) for row in rows]

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
