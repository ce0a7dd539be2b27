"""The review service as the host runs it: the sign-off chains, the work queues, the directory.

Its routes (``entrypoints.http``) and the reaction that voids a chain when its post changes
(``entrypoints.reactions``) are wired to it by the composition root (``bootstrap``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from gongkai.calendar import WorkingCalendar
from gongkai.directory import Directory, DirectoryProjection
from gongkai.events.contracts.review import ReviewConcluded, ReviewPolicySet, ReviewSigned
from gongkai.runtime.clock import Clock
from gongkai.runtime.idempotency import IdempotencyStore
from gongkai.runtime.idempotency import metadata as idempotency_tables
from gongkai.runtime.service import Service, ServiceContext
from gongkai_review.adapters.history import Histories
from gongkai_review.adapters.queue import ReviewQueueProjection, waiting_for
from gongkai_review.adapters.repository import ReviewRepository
from gongkai_review.domain.chain import ReviewState


@dataclass(frozen=True)
class ReviewConfig:
    #: Items waiting more than this many working days are marked overdue in work queues.
    overdue_after_working_days: int = 3


class ReviewService(Service):
    name = "review"
    description = (
        "The sign-off chain of Attachment 1: staff opinion, secrecy review where needed, "
        "principal leader; each signature bound to one content digest."
    )
    owns = (ReviewSigned, ReviewConcluded, ReviewPolicySet)

    def __init__(self, ctx: ServiceContext, config: ReviewConfig) -> None:
        super().__init__(ctx)
        self.config = config
        self.directory_projection = DirectoryProjection()
        self.add_projection(self.directory_projection)
        self.queue_projection = ReviewQueueProjection()
        self.add_projection(self.queue_projection)
        self.histories = Histories()
        self.add_tables(idempotency_tables)

    # ---- ports used by the routes (entrypoints.http.Ports) -----------------------------

    @property
    def clock(self) -> Clock:
        return self.ctx.clock

    @property
    def calendar(self) -> WorkingCalendar:
        return self.ctx.calendar

    def repository(self) -> ReviewRepository:
        return ReviewRepository(self.evlog, self.histories)

    @functools.cached_property
    def _directory(self) -> Directory:
        return self.open_directory(self.directory_projection)

    def directory(self) -> Directory:
        return self._directory

    @functools.cached_property
    def _idempotency(self) -> IdempotencyStore:
        # Created on first use, after start: building must not touch the database.
        return IdempotencyStore(self.engine)

    def idempotency(self) -> IdempotencyStore:
        return self._idempotency

    def waiting_for(self, person_id: str, roles: frozenset[tuple[str, str]]) -> list[ReviewState]:
        return waiting_for(self.engine, self.queue_projection, person_id, roles)

