"""Loads a post's review state from the log, for the runner to decide on (``decider``).

The state folds three aggregates: the post (intake's facts), the review (our signatures) and the
unit's review policy. Only the review aggregate is written, so its last sequence is the
``expected`` of the optimistic-concurrency check: a signature decided on a stale view of the
chain is refused by JetStream and records nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from gongkai.decider import Decider, View
from gongkai.eventlog import EventLog, RecordedEvent
from gongkai.events import Envelope
from gongkai.events.contracts.intake import PostSubmitted
from gongkai.events.contracts.review import ReviewConcluded, ReviewPolicySet, ReviewSigned
from gongkai_review.adapters.history import Histories
from gongkai_review.domain.chain import (
    INITIAL,
    Command,
    ReviewState,
    decide,
    evolve,
    fold_checked,
)

REVIEW = ReviewSigned.aggregate_type
POLICY = ReviewPolicySet.aggregate_type
assert ReviewConcluded.aggregate_type == REVIEW


@dataclass(frozen=True)
class Loaded:
    state: ReviewState
    #: Last stream sequence of the review aggregate (0 when it has no events yet).
    expected: int
    records: tuple[RecordedEvent, ...]
    #: Recorded signatures (and their conclusions) left out for want of authority, and why.
    refused: tuple[tuple[Envelope[Any], str], ...] = ()

    def conclusion_seq(self, event_id: str) -> int | None:
        for r in self.records:
            if r.envelope.event_id == event_id:
                return r.seq
        return None

    def view(self) -> View[ReviewState]:
        """What the runner decides on: the state, and the review aggregate's own events."""
        own = [r for r in self.records if r.envelope.aggregate_type == REVIEW]
        return View(self.state, self.expected, own)


async def _nothing() -> tuple[list[RecordedEvent], int]:
    return [], 0


class ReviewRepository:
    def __init__(self, evlog: EventLog, histories: Histories | None = None) -> None:
        self.evlog = evlog
        #: Histories kept from earlier commands (the service's), read on from where they ended.
        self.histories = histories if histories is not None else Histories()

    def _history(
        self, aggregate_type: str, aggregate_id: str
    ) -> Awaitable[tuple[list[RecordedEvent], int]]:
        return self.histories.load(self.evlog, aggregate_type, aggregate_id)

    async def load(self, post_id: str) -> Loaded:
        (post, _), (review, last) = await asyncio.gather(
            self._history("post", post_id), self._history(REVIEW, post_id)
        )
        unit = next(
            (
                r.envelope.payload.unit
                for r in post
                if isinstance(r.envelope.payload, PostSubmitted)
            ),
            None,
        )
        signers = sorted(
            {
                r.envelope.payload.signer.person
                for r in review
                if isinstance(r.envelope.payload, ReviewSigned)
            }
        )
        # The unit's policy and each signer's role history (to check every recorded
        # signature's authority again) in one round of reads, not one after the other.
        *histories, (policy, _) = await asyncio.gather(
            *(self._history("person", p) for p in signers),
            self._history(POLICY, unit) if unit is not None else _nothing(),
        )
        records = tuple(sorted([*post, *review, *policy], key=lambda r: r.seq))
        grants = {
            person: [r.envelope for r in events]
            for person, (events, _) in zip(signers, histories, strict=True)
        }
        state, refused = fold_checked((r.envelope for r in records), grants)
        return Loaded(state, last, records, tuple(refused))

    def decider(self) -> Decider[ReviewState, Command]:
        """Review's decider for the runner, reading its view through this repository."""

        async def view(post_id: str) -> View[ReviewState]:
            return (await self.load(post_id)).view()

        return Decider(
            REVIEW,
            lambda _id: INITIAL,
            lambda state, rec: evolve(state, rec.envelope),
            lambda state, cmd: decide(cmd, state),
            load=view,
        )

    async def load_policy(self, unit: str) -> tuple[list[RecordedEvent], int]:
        return await self.evlog.load(POLICY, unit)
