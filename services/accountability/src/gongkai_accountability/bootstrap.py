"""Composition root of the accountability service."""

from __future__ import annotations

from gongkai.runtime.service import Service, ServiceContext


class AccountabilityService(Service):
    name = "accountability"


def build(ctx: ServiceContext) -> Service:
    return AccountabilityService(ctx)
