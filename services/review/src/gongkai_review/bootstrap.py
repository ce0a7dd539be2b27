"""Composition root of the review service."""

from __future__ import annotations

from gongkai.runtime.service import Service, ServiceContext


class ReviewService(Service):
    name = "review"


def build(ctx: ServiceContext) -> Service:
    return ReviewService(ctx)
