"""Composition root of the freshness service."""

from __future__ import annotations

from gongkai.runtime.service import Service, ServiceContext


class FreshnessService(Service):
    name = "freshness"


def build(ctx: ServiceContext) -> Service:
    return FreshnessService(ctx)
