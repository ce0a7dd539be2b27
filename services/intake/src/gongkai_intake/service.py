"""The intake service as the host runs it: the directory and the units' column choices it
follows, the answer store, and the command server on the bus.

What its commands do is ``entrypoints.api`` (one ``IntakeApp`` for HTTP and the bus); the
composition root (``bootstrap``) wires the routes and the command server to this service.
"""

from __future__ import annotations

from typing import Protocol

from nats.aio.client import Client

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
from gongkai.runtime.http import Problem
from gongkai.runtime.idempotency import IdempotencyStore
from gongkai.runtime.idempotency import metadata as idempotency_tables
from gongkai.runtime.service import Service, ServiceContext
from gongkai_intake.adapters.columns import ColumnChoices, ColumnChoicesProjection
from gongkai_intake.domain.columns import ColumnCatalog


class RequestServer(Protocol):
    """What serves the commands on the bus (``entrypoints.bus.CommandServer``)."""

    async def start(self, nc: Client) -> None: ...

    async def stop(self) -> None: ...


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
        self._directory: Directory | None = None
        self._stores: tuple[ColumnChoices, IdempotencyStore] | None = None
        #: The bus's command server (``entrypoints.bus``), set by the composition root.
        self.commands: RequestServer | None = None

    def directory(self) -> Directory:
        if self._directory is None:
            raise Problem(503, "Starting", "intake is not started yet")
        return self._directory

    def stores(self) -> tuple[ColumnChoices, IdempotencyStore]:
        """The units' column choices and the answer store, once started (503 before)."""
        if self._stores is None:
            raise Problem(503, "Starting", "intake is not started yet")
        return self._stores

    async def start(self) -> None:
        # The database is touched only here: building the service must not (AsyncAPI is
        # generated from a built, never started, service).
        self._directory = self.open_directory(self.directory_projection)
        await super().start()
        self._stores = (
            ColumnChoices(self.engine, self.choices_projection), IdempotencyStore(self.engine)
        )


    async def serve_requests(self) -> None:
        # On the log's connection: a request's reply and its append share the socket writes.
        if self.commands is not None:
            await self.commands.start(self.evlog.nc)

    async def stop_requests(self) -> None:
        if self.commands is not None:
            await self.commands.stop()

