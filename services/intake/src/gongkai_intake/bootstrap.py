"""Composition root of the intake service: the one place its parts are wired together."""

from __future__ import annotations

from gongkai.rules import default_catalog
from gongkai.runtime.service import Service, ServiceContext
from gongkai_intake.entrypoints.api import app_of
from gongkai_intake.entrypoints.bus import install_bus
from gongkai_intake.entrypoints.http import install_routes
from gongkai_intake.service import IntakeService


def build(ctx: ServiceContext) -> Service:
    svc = IntakeService(ctx, catalog=default_catalog())
    app = app_of(svc)
    install_routes(svc.router, app, svc.directory)
    svc.commands = install_bus(svc.broker, app, svc.directory)
    return svc
