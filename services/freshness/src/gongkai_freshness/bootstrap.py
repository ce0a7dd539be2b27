"""Composition root of the freshness service: configuration, rule sets, register, routes."""

from __future__ import annotations

from gongkai.rules import RuleSetError
from gongkai.runtime.service import Service, ServiceContext
from gongkai.runtime.startup import StartupError
from gongkai_freshness.adapters.config import ConfigError, FreshnessConfig
from gongkai_freshness.adapters.register import ColumnRegister
from gongkai_freshness.entrypoints.http import build_router
from gongkai_freshness.service import FreshnessService


def build(ctx: ServiceContext, config: FreshnessConfig | None = None) -> Service:
    """The freshness service, its rule sets validated: a bad file stops start-up, by name."""
    try:
        cfg = config or FreshnessConfig.from_env()
        rule_sets = cfg.load_rule_sets()
    except (ConfigError, RuleSetError) as exc:
        raise StartupError(f"freshness: {exc}") from None
    svc = FreshnessService(ctx, ColumnRegister(rule_sets, ctx.calendar), cfg)
    svc.router.include_router(build_router(svc))
    return svc
