"""Composition root of the review service: the one place that wires domain, adapters and routes.

Configuration (environment):
    GONGKAI_REVIEW_OVERDUE_AFTER   working days a work-queue item may wait before it is marked
                                   overdue (default 3)
"""

from __future__ import annotations

import os

from gongkai.runtime.service import Service, ServiceContext
from gongkai_review.entrypoints.http import make_router
from gongkai_review.entrypoints.reactions import CHANGES, void_on_change
from gongkai_review.service import ReviewConfig, ReviewService

OVERDUE_ENV = "GONGKAI_REVIEW_OVERDUE_AFTER"


def config_from_env() -> ReviewConfig:
    raw = os.environ.get(OVERDUE_ENV, "").strip()
    if not raw:
        return ReviewConfig()
    try:
        days = int(raw)
    except ValueError:
        raise ValueError(
            f"{OVERDUE_ENV} must be a whole number of working days, got {raw!r}"
        ) from None
    if days < 0:
        raise ValueError(f"{OVERDUE_ENV} must be >= 0, got {days}")
    return ReviewConfig(overdue_after_working_days=days)


def build(ctx: ServiceContext) -> Service:
    svc = ReviewService(ctx, config_from_env())
    svc.add_reaction("void-on-revision", CHANGES, void_on_change(svc.repository, ctx.clock))
    svc.router.include_router(make_router(svc))
    return svc
