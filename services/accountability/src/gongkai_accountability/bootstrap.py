"""Composition root of the accountability service: policy, read model, routes."""

from __future__ import annotations

from gongkai.runtime.service import Service, ServiceContext
from gongkai_accountability.domain.decide import Policy
from gongkai_accountability.entrypoints.console.routes import build_console_router
from gongkai_accountability.entrypoints.http import build_router
from gongkai_accountability.service import AccountabilityService, policy_from_env


def build(ctx: ServiceContext, policy: Policy | None = None) -> Service:
    svc = AccountabilityService(ctx, policy or policy_from_env())
    svc.router.include_router(build_router(svc))
    svc.router.include_router(build_console_router(svc))
    return svc
