"""Reaction to intake's PostRevised and PostWithdrawn: void the chain they overtook.

A durable consumer delivers each post event at least once; the handler loads the post's review
state, asks the decider for a ``VoidStale`` and appends with the review aggregate's last
sequence. It is idempotent twice over: a void already recorded leaves the decider nothing to
do, and the void of chain N always carries the same event id (JetStream dedups a race).
A signature that arrives before this reaction settles the void itself, in the same append.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog

from gongkai.eventlog import ConcurrencyConflict, RecordedEvent
from gongkai.events.contracts.intake import PostRevised, PostWithdrawn
from gongkai.runtime.clock import Clock
from gongkai_review.adapters.repository import ReviewRepository
from gongkai_review.domain.chain import VoidStale, decide

log = structlog.get_logger("gongkai.review")

#: Every post event; the handler ignores all but revisions and withdrawals.
POST_EVENTS = "gk.ev.post.*.*"
ATTEMPTS = 5


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
        repo = repository()
        for _ in range(ATTEMPTS):
            loaded = await repo.load(env.aggregate_id)
            cmd = VoidStale(env.aggregate_id, at=clock.now(), correlation_id=env.correlation_id)
            events = decide(cmd, loaded.state)
            if not events:
                return
            try:
                await repo.append(events, loaded.expected)
            except ConcurrencyConflict:
                continue  # a signature landed meanwhile: decide again on the new state
            for e in events:
                bound.info("review_voided", void_event_id=e.event_id, chain=e.payload.chain)
            return
        # Raising makes the consumer redeliver later, then dead-letter after max_deliver.
        raise RuntimeError(f"could not void the review of {env.aggregate_id}: kept conflicting")

    return handle
