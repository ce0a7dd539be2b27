"""Composition root of the intake service: the one place its parts are wired together."""

from __future__ import annotations

from gongkai.directory import Directory, DirectoryProjection
from gongkai.events.contracts.intake import (
    LeadershipDutiesChanged,
    PersonRegistered,
    PostPublished,
    PostRevised,
    PostSubmitted,
    PostWithdrawn,
    PublicationImported,
    PublicationRemoved,
    RoleGranted,
    RoleRevoked,
    TokenIssued,
    TokenRevoked,
    UnitRegistered,
)
from gongkai.rules import default_catalog
from gongkai.runtime.http import Problem
from gongkai.runtime.idempotency import IdempotencyStore
from gongkai.runtime.idempotency import metadata as idempotency_tables
from gongkai.runtime.service import Service, ServiceContext
from gongkai_intake.adapters.columns import ColumnChoices, ColumnChoicesProjection
from gongkai_intake.app import IntakeApp
from gongkai_intake.domain.columns import ColumnCatalog
from gongkai_intake.entrypoints.bus import install_bus
from gongkai_intake.entrypoints.http import install_routes


class IntakeService(Service):
    name = "intake"
    description = (
        "The front door: the unit directory, submitted posts and their revisions, publication "
        "reports. Validates and screens content before anything is recorded. Commands over "
        "HTTP and on gk.cmd.intake.<command> (request/reply)."
    )
    owns = (
        UnitRegistered,
        PersonRegistered,
        RoleGranted,
        RoleRevoked,
        TokenIssued,
        TokenRevoked,
        LeadershipDutiesChanged,
        PostSubmitted,
        PostRevised,
        PostWithdrawn,
        PostPublished,
        PublicationRemoved,
        PublicationImported,
    )

    def __init__(self, ctx: ServiceContext, catalog: ColumnCatalog) -> None:
        super().__init__(ctx)
        self.catalog = catalog
        self.directory_projection = DirectoryProjection()
        self.choices_projection = ColumnChoicesProjection()
        self.add_projection(self.directory_projection)
        self.add_projection(self.choices_projection)
        self.add_tables(idempotency_tables)
        self._app: IntakeApp | None = None
        self._directory: Directory | None = None
        install_routes(self.router, self.app, self.directory)
        self.commands = install_bus(self.broker, self.app, self.directory)

    def app(self) -> IntakeApp:
        if self._app is None:
            raise Problem(503, "Starting", "intake is not started yet")
        return self._app

    def directory(self) -> Directory:
        if self._directory is None:
            raise Problem(503, "Starting", "intake is not started yet")
        return self._directory

    async def start(self) -> None:
        # The database is touched only here: building the service must not (AsyncAPI is
        # generated from a built, never started, service).
        self._directory = self.open_directory(self.directory_projection)
        await super().start()
        self._app = IntakeApp(
            evlog=self.evlog,
            directory=self._directory,
            choices=ColumnChoices(self.engine, self.choices_projection),
            catalog=self.catalog,
            idempotency=IdempotencyStore(self.engine),
            clock=self.ctx.clock,
        )


    async def serve_requests(self) -> None:
        # On the log's connection: a request's reply and its append share the socket writes.
        await self.commands.start(self.evlog.nc)

    async def stop_requests(self) -> None:
        await self.commands.stop()


def build(ctx: ServiceContext) -> Service:
    return IntakeService(ctx, catalog=default_catalog())
