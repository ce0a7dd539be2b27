"""Reaction to intake's PostRevised and PostWithdrawn: void the chain they overtook.

A durable consumer delivers each revision and withdrawal at least once (the server sends it
nothing else); the handler asks the runner (``gongkai.decider.handle``) to decide a
``VoidStale`` on the post's review state and append it with the review aggregate's last
sequence. It is idempotent twice over: a void already
recorded leaves the decider nothing to do, and the void of chain N always carries the same
event id (JetStream dedups a race). A signature that arrives before this reaction settles the
void itself, in the same append.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog

from gongkai.decider import handle as run
from gongkai.eventlog import RecordedEvent
from gongkai.events.contracts.intake import PostRevised, PostWithdrawn
from gongkai.projection import type_subjects
from gongkai.runtime.clock import Clock
from gongkai_review.adapters.repository import ReviewRepository
from gongkai_review.domain.chain import VoidStale

log = structlog.get_logger("gongkai.review")

#: Revisions and withdrawals only, filtered by the server: the consumer read every post event
#: and acknowledged the submissions one by one (a fifth of a county's log, each decoded and
#: verified for nothing).
CHANGES = type_subjects((PostRevised.event_type, PostWithdrawn.event_type))


def void_on_change(
    repository: Callable[[], ReviewRepository], clock: Clock
) -> Callable[[RecordedEvent], Awaitable[None]]:
    async def handle(rec: RecordedEvent) -> None:
        env = rec.envelope
        if not isinstance(env.payload, PostRevised | PostWithdrawn):
            return
        bound = log.bind(
            post_id=env.aggregate_id, event_id=env.event_id, correlation_id=env.correlation_id
        )
        # The void is caused by the revision or withdrawal the state holds (its correlation),
        # whichever path records it: the command carries no cause of its own.
        cmd = VoidStale(env.aggregate_id, at=clock.now())
        # The void events carry their own command id (one per chain, shared with a
        # signature that settles the void); this one only keys the runner's retry check.
        repo = repository()
        # A race with a signature reads afresh and decides again (the runner's one policy);
        # still racing after that, the Refusal makes the consumer redeliver later, then
        # dead-letter after max_deliver.
        h = await run(
            repo.evlog,
            repo.decider(),
            env.aggregate_id,
            cmd,
            command_id=f"void-on:{env.event_id}",
            now=clock.now,
        )
        for e in h.events:
            bound.info("review_voided", void_event_id=e.event_id, chain=e.payload.chain)

    return handle
