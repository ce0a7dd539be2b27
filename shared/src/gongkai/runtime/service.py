"""The shape every gongkai service has, and what the runtime gives it.

A service package exposes ``build(ctx) -> Service`` under the ``gongkai.services`` entry-point
group: that function is the service's one composition root. Building must not connect to
anything (the AsyncAPI generator builds services offline); ``start`` connects.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import structlog
from fastapi import APIRouter
from faststream.nats import JStream, NatsBroker
from faststream.security import SASLPlaintext
from sqlalchemy import Engine, MetaData, text

from gongkai import metrics, migrations, subjects
from gongkai.calendar import WorkingCalendar
from gongkai.consumer import CatchUpSubscription, DurableConsumer
from gongkai.directory import Directory, DirectoryProjection
from gongkai.eventlog import EventLog, StreamSettings
from gongkai.events.envelope import REGISTRY, Envelope, EventPayload
from gongkai.projection import Projection, ProjectionStore, checkpoints, make_engine
from gongkai.runtime.clock import Clock, SystemClock
from gongkai.runtime.coalesce import Fresh
from gongkai.runtime.http import ServiceRouter
from gongkai.runtime.progress import Snapshot
from gongkai.runtime.settings import Settings
from gongkai.trust import credentials
from gongkai.trust.credentials import NatsAuth
from gongkai.trust.keys import CHECKS, service_keyring

#: A projection that committed this recently has shown its database works: no probe query.
DB_QUIET_S = 5.0


@dataclass
class ServiceContext:
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    calendar: WorkingCalendar = field(default_factory=WorkingCalendar.default)
    #: The NATS URL to connect to; set by the host once the server is known.
    nats_url: str = ""
    #: How the services built with this context authenticate, by service name (the embedded
    #: host gives each its own NKey seed); a service not listed finds its own
    #: (``gongkai.trust.credentials.resolve``).
    nats_auth: dict[str, NatsAuth] = field(default_factory=dict)


class Service:
    """Base class: owns the service's NATS connections, database, subscriptions and routes."""

    name: str = "service"
    description: str = ""
    #: Event types this service appends (documented in its AsyncAPI).
    owns: Sequence[type[EventPayload]] = ()
    #: Event types it reads from the log by itself, outside its projections and reactions.
    also_consumes: Collection[str] = ()
    #: SQLite's page size for the read-model database it creates (``make_engine``); None: 4,096.
    db_page_size: int | None = None

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.log = structlog.get_logger(f"gongkai.{self.name}")
        self.router: APIRouter = ServiceRouter()
        creds: dict[str, Any] = {}
        auth = self.nats_auth()
        if auth.user:
            # faststream takes credentials as a security object (user=/password= are refused).
            creds = {
                "security": SASLPlaintext(username=auth.user, password=auth.password or "")
            }
        elif auth.file is not None:
            creds = auth.options()
        self.broker = NatsBroker(
            [u.strip() for u in (ctx.nats_url or "nats://localhost:4222").split(",") if u.strip()],
            graceful_timeout=10.0,
            logger=None,
            **creds,
        )
        self.projections: list[Projection] = []
        #: Tables beside the projections' (an answer store, say): part of the schema that the
        #: migrations must produce, checked by the tests.
        self.extra_tables: list[MetaData] = []
        self.reactions: list[tuple[str, str | Sequence[str], Callable[..., Any]]] = []
        self.subscriptions: list[CatchUpSubscription] = []
        self.durables: list[DurableConsumer] = []
        self._evlog: EventLog | None = None
        self._engine: Engine | None = None
        self._store: ProjectionStore | None = None
        self._health: ThreadPoolExecutor | None = None
        self.started = False
        # declare=False: EventLog.ensure_stream creates and checks the stream. Left to
        # faststream, broker.start() (run once a service has bus subscribers) would try to
        # rewrite the stream's config and fail on deny_delete.
        log_stream = JStream(subjects.STREAM, declare=False)
        for cls in self.owns:
            self.broker.publisher(
                subjects.type_filter(cls.event_type, cls.aggregate_type),
                stream=log_stream,
                title=f"{cls.event_type}",
                description=inspect.cleandoc(cls.__doc__ or ""),
                schema=Envelope[cls],  # type: ignore[valid-type]
            )

    def nats_auth(self) -> NatsAuth:
        """This service's NATS credentials: the host's, else found like any client's."""
        given = self.ctx.nats_auth.get(self.name)
        if given is not None:
            return given
        return credentials.resolve(self.ctx.settings, self.name)

    # ---- wiring, used by subclasses in __init__ ---------------------------------------

    def add_projection(self, projection: Projection) -> Projection:
        self.projections.append(projection)
        return projection

    def add_tables(self, metadata: MetaData) -> None:
        """Declare tables the service uses beside its projections' (see ``schema``)."""
        self.extra_tables.append(metadata)

    def schema(self) -> MetaData:
        """Every table this service's database holds: what its migrations must create."""
        merged = MetaData()
        for meta in [checkpoints.metadata, *(p.metadata for p in self.projections)]:
            for table in meta.tables.values():
                if table.name not in merged.tables:
                    table.to_metadata(merged)
        for meta in self.extra_tables:
            for table in meta.tables.values():
                if table.name not in merged.tables:
                    table.to_metadata(merged)
        return merged

    def add_reaction(
        self, name: str, filter_subject: str | Sequence[str], handler: Callable[..., Any]
    ) -> None:
        """A durable consumer: at-least-once, unordered, for idempotent appends."""
        self.reactions.append((name, filter_subject, handler))

    def consumes(self) -> list[str]:
        """Every event type this service reads, as its AsyncAPI document lists them: what its
        projections act on, what its reactions' filters let through, and ``also_consumes``."""
        def through(filt: str) -> set[str]:
            return {
                name
                for name, cls in REGISTRY.types().items()
                if subjects.matches(filt, f"{subjects.EVENTS}.{cls.aggregate_type}._.{name}")
            }

        types = set(self.also_consumes)
        for p in self.projections:
            types |= through(p.filter_subject) if p.consumes is None else set(p.consumes)
        for _, filt, _ in self.reactions:
            for one in (filt,) if isinstance(filt, str) else filt:
                types |= through(one)
        return sorted(types)

    def durable_names(self) -> list[str]:
        """The names of this service's durable consumers (no other NATS user may touch them)."""
        return [f"{self.name}-{name}" for name, _, _ in self.reactions]

    # ---- resources available once started ----------------------------------------------

    @property
    def evlog(self) -> EventLog:
        if self._evlog is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._evlog

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(
                self.ctx.settings.db_url(self.name), page_size=self.db_page_size
            )
        return self._engine

    @property
    def store(self) -> ProjectionStore:
        if self._store is None:
            self._store = ProjectionStore(self.engine, manage_schema=False)
        return self._store

    def prepare_database(self) -> None:
        """Bring the database to the code's migration head, or refuse (``DatabaseNotReady``).

        Runs first at start, before anything reads or writes a table.
        """
        try:
            mode = self.ctx.settings.db_migrate_mode(self.name)
        except ValueError as exc:
            raise migrations.DatabaseNotReady(f"{self.name}: {exc}") from None
        migrations.prepare(self.engine, self.name, mode)

    # ---- lifecycle ---------------------------------------------------------------------

    async def connect(self) -> EventLog:
        opts: dict[str, Any] = {
            "name": f"gongkai-{self.name}",
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": 0.5,
        }
        opts.update(self.nats_auth().options())
        keys = await asyncio.to_thread(service_keyring, self.ctx.settings.keys_path, self.name)
        evlog = await EventLog.connect(self.ctx.nats_url, keys=keys, **opts)
        evlog.service = self.name
        return evlog

    async def open_log(self) -> EventLog:
        """A connection to the log as this service, its streams made (or checked) first."""
        evlog = await self.connect()
        try:
            if self.ctx.settings.manage_streams:
                await evlog.ensure_stream(
                    StreamSettings(replicas=self.ctx.settings.stream_replicas)
                )
            else:
                await evlog.verify_stream()
        except BaseException:
            with contextlib.suppress(Exception):
                await evlog.close()
            raise
        return evlog

    async def start(self) -> None:
        await asyncio.to_thread(self.prepare_database)
        self._evlog = await self.open_log()
        for p in self.projections:
            sub = CatchUpSubscription(self.evlog, self.store, p, owner=self.name)
            self.subscriptions.append(sub)
            await sub.start()
        for name, filt, handler in self.reactions:
            durable = f"{self.name}-{name}"  # durable_names(): the permission matrix's
            d = DurableConsumer(self.evlog, durable, filt, handler, owner=self.name)
            self.durables.append(d)
            await d.start()
        await self.serve_requests()
        metrics.start_series(
            self.name,
            [cls.event_type for cls in self.owns],
            [s.name for s in self.subscriptions],
            [d.name for d in self.durables],
            CHECKS,
        )
        self.started = True
        self.log.info("service_started", service=self.name)

    async def stop(self) -> None:
        """Stop taking work, finish what is in hand, then close connections."""
        if self.started:
            with contextlib.suppress(Exception):
                await self.stop_requests()
        for d in self.durables:
            await d.stop()
        self.log.debug("stop_step", service=self.name, step="durables")
        for sub in self.subscriptions:
            await sub.stop()
        self.log.debug("stop_step", service=self.name, step="subscriptions")
        if self._evlog is not None:
            with contextlib.suppress(Exception):
                await self._evlog.close()
        self.log.debug("stop_step", service=self.name, step="connection")
        if self._health is not None:
            self._health.shutdown(wait=False, cancel_futures=True)
            self._health = None
        if self._engine is not None:
            self._engine.dispose()
        self.started = False
        self.log.info("service_stopped", service=self.name)

    async def serve_requests(self) -> None:
        """Start answering the service's bus requests, once its projections run: by default
        faststream serves the subscribers declared on ``broker``; a service on its hot path
        may serve them itself (and keep the declarations for its AsyncAPI document)."""
        if self.broker.subscribers:
            await self.broker.start()

    async def stop_requests(self) -> None:
        """Stop taking bus requests and finish those in hand (the first step of ``stop``)."""
        if self.broker.subscribers:
            await self.broker.stop()

    async def ready(self) -> bool:
        return (await self.status())["ready"] is True

    async def status(self, *, exact: bool = False) -> dict[str, Any]:
        """Readiness with its reasons, and each projection's progress (``/status``).

        Ready: started, connected to NATS, the database answers, every projection has caught
        up once since start, and none is stalled (behind with no progress for
        ``ready_stall_seconds``). Not "zero lag now": under steady writes a projection is
        always a little behind, and a probe must not take the service out of rotation for it.

        A probe (``exact=False``) asks nobody: under load every NATS request waits its turn
        behind the writes (measured: 0.2-0.8 s each with 20 writers in flight), and a probe of
        a dozen requests outlived the kubelet's one-second timeout. The lag it goes by is what
        each subscription was told with its last message. ``exact``: the lag as the server
        counts it (``/status``, ``/metrics``).
        """
        reasons: list[str] = []
        snapshots: list[Snapshot] = []
        if not self.started or self._evlog is None:
            reasons.append("not started")
        elif not self._evlog.nc.is_connected:
            reasons.append("not connected to NATS")
        else:
            snapshots = await self._snapshots(exact)
            reason = await self._database_reason()
            if reason:
                reasons.append(reason)
            reasons.extend(await self.readiness_reasons())
            stall = self.ctx.settings.ready_stall_seconds
            for snap in snapshots:
                if not snap.caught_up_once:
                    reasons.append(f"{snap.name} catching up ({snap.lag} behind)")
                elif snap.stalled >= stall:
                    reasons.append(f"{snap.name} stalled for {snap.stalled:.0f} s")
        ok = not reasons
        metrics.READY.labels(service=self.name).set(1 if ok else 0)
        return {
            "ready": ok,
            "reasons": reasons,
            "projections": [s.as_dict() for s in snapshots],
        }

    async def readiness_reasons(self) -> list[str]:
        """Why a service with state of its own beside the projections is not ready yet."""
        return []

    async def _database_reason(self) -> str | None:
        """Why the database is not usable, or None; asked only of a service at rest.

        A projection that committed within the last ``DB_QUIET_S`` seconds has just shown the
        database works (its checkpoint is in the same transaction). Otherwise one ``SELECT 1``
        on a thread of its own: under load the shared thread pool queues behind the writers'
        statements, and a probe waiting its turn there times out although nothing is wrong.
        """
        recent = max((s.progress.moved_at for s in self.subscriptions), default=0.0)
        if time.monotonic() - recent < DB_QUIET_S:
            return None
        if self._health is None:
            self._health = ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-health")
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.run_in_executor(self._health, self._select_one), 5)
        except Exception as exc:  # noqa: BLE001 - any failure means "not usable now"
            return f"database unusable: {type(exc).__name__}"
        return None

    def _select_one(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    async def _snapshots(self, exact: bool) -> list[Snapshot]:
        last = 0
        if exact:
            try:
                last = await self.evlog.last_sequence()
            except Exception:  # noqa: BLE001 - the connection dropped between checks
                exact = False
        out = []
        for sub in self.subscriptions:
            if exact:
                # A filtered projection's position stops at the last event its filter matches,
                # so ``last - position`` alone would never fall to 0 once other services
                # append: ask the server whether anything it matches is left first.
                lag = 0 if await sub.sync_state() else max(0, last - sub.position)
            elif not sub.caught_up.is_set():
                # Until caught up once, ask the server: a filtered projection whose filter
                # matches nothing after its checkpoint is delivered nothing, so nothing it
                # receives would ever tell it that it is there. Once caught up, a probe asks
                # nobody.
                lag = 0 if await sub.sync_state() else max(1, sub.lag_hint())
            else:
                lag = sub.lag_hint()
            snap = sub.progress.snapshot(
                sub.name, sub.position, max(last, sub.delivered, sub.position), lag,
                sub.caught_up.is_set(),
            )
            if exact:
                metrics.CONSUMER_LAG.labels(consumer=sub.name).set(lag)
            metrics.STALLED.labels(consumer=sub.name).set(snap.stalled)
            out.append(snap)
        return out

    async def update_lag(self) -> None:
        if self._evlog is not None:
            await self._snapshots(exact=True)

    async def wait_caught_up(self, seq: int | None = None, within: float = 10.0) -> None:
        """Block until every projection of this service has applied ``seq`` (default: the end)."""
        target = seq if seq is not None else await self.evlog.last_sequence()
        await asyncio.gather(*(s.wait_for(target, within) for s in self.subscriptions))

    def projection_log(self, projection: Projection) -> ProjectionLog:
        """The log as one of this service's projections sees it (``gongkai.directory``)."""
        return ProjectionLog(self, projection)

    def open_directory(self, projection: DirectoryProjection) -> Directory:
        """The directory over this service's copy of it, on the service's clock.

        It touches the database, so a service calls it from ``start`` or on first use, never
        while being built.
        """
        return Directory(
            self.engine, projection, clock=self.ctx.clock, log=self.projection_log(projection)
        )


class ProjectionLog:
    """How far the log is, and how far one projection of a service has applied it.

    ``last_sequence`` is the event log's (answered by the stream's leader). Concurrent askers
    of one filter share a read sent after they asked (``Fresh``): the directory asks once per
    request.
    """

    def __init__(self, service: Service, projection: Projection) -> None:
        self.service = service
        self.projection = projection
        self._reads: dict[str, Fresh[int]] = {}
        self._sub: CatchUpSubscription | None = None
        self._scanned = 0

    async def last_sequence(self, filter_subject: str | None = None) -> int:
        if filter_subject is None:
            return await self.service.evlog.last_sequence()
        read = self._reads.get(filter_subject)
        if read is None:
            read = self._reads[filter_subject] = Fresh(
                functools.partial(self.service.evlog.last_sequence, filter_subject)
            )
        return await read()

    def _subscription(self) -> CatchUpSubscription | None:
        # Asked twice per authenticated request: the scan is done again only when the
        # service's subscriptions changed (it appends them as it starts).
        subs = self.service.subscriptions
        if len(subs) != self._scanned:
            self._scanned = len(subs)
            self._sub = next((s for s in subs if s.projection is self.projection), None)
        return self._sub

    def position(self) -> int:
        sub = self._subscription()
        return sub.position if sub is not None else 0

    async def wait_for(self, seq: int, within: float) -> None:
        sub = self._subscription()
        if sub is None:
            raise TimeoutError(f"{self.projection.name} is not subscribed")
        await sub.wait_for(seq, within)


class UnknownService(LookupError):
    """A service asked for by name that no installed package provides."""


def discover(only: Sequence[str] | None = None) -> dict[str, Callable[[ServiceContext], Service]]:
    """Every installed service, by name, from the ``gongkai.services`` entry points.

    ``only``: just those, in that order, and only their packages imported (one service's
    process, restarted by the tests after each kill, need not import the other three).
    """
    # By name: services share nothing but the log, so no service needs another started first.
    installed = {
        ep.name: ep
        for ep in sorted(entry_points(group="gongkai.services"), key=lambda ep: ep.name)
    }
    if only is None:
        return {name: ep.load() for name, ep in installed.items()}
    unknown = [n for n in only if n not in installed]
    if unknown:
        raise UnknownService(
            f"unknown service {unknown[0]!r}; installed: {', '.join(installed) or 'none'}"
        )
    return {name: installed[name].load() for name in only}
