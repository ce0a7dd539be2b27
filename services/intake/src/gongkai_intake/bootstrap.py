"""Composition root of the intake service."""

from __future__ import annotations

from gongkai.runtime.service import Service, ServiceContext


class IntakeService(Service):
    name = "intake"


def build(ctx: ServiceContext) -> Service:
    return IntakeService(ctx)
