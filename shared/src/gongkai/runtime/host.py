"""Runs services: the embedded platform (``gongkai up``) or one service (``gongkai service``).

Start order: nats-server (embedded, unless a URL is given) -> services -> HTTP. Stop order is
the reverse, on Ctrl-C or SIGTERM: HTTP stops taking requests and finishes those in flight, each
service finishes the batch in hand and closes its connections (flushing pending acks), then
nats-server is asked to stop, which flushes JetStream to disk. An acknowledged append is
already on disk (the embedded server syncs every write), so nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import structlog
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import exc as sa_exc

from gongkai import subjects
from gongkai.consumer import keep_heap
from gongkai.eventlog import EventLog, StreamSettings
from gongkai.migrations import DatabaseNotReady
from gongkai.natsserver import (
    NatsServer,
    ServerStartError,
    check_writable_dir,
    free_port,
    port_in_use,
)
from gongkai.runtime import logging as gklogging
from gongkai.runtime.clock import Clock, SystemClock
from gongkai.runtime.datadir import DataDirInUse, DataDirLock
from gongkai.runtime.http import (
    Problem,
    adopt_routes,
    install_problem_handlers,
    problem_response,
)
from gongkai.runtime.http_metrics import HttpMetrics, HttpMetricsMiddleware
from gongkai.runtime.service import Service, ServiceContext, UnknownService, discover
from gongkai.runtime.settings import Settings
from gongkai.runtime.startup import StartupError, check_nats
from gongkai.trust import credentials, matrix
from gongkai.trust.credentials import CredentialsError, NatsAuth

log = structlog.get_logger("gongkai.host")


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the host owns SIGINT/SIGTERM and stop order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def install_database_unavailable_handler(app: FastAPI) -> None:
    """A read model that cannot be read just now answers 503 with Retry-After, not a 500.

    A lock held by another connection beyond the busy timeout, PostgreSQL restarting, a lost
    connection: the request was fine and will work again shortly, so the answer says so. A
    write route that failed here recorded its event or not; the same Idempotency-Key records it
    once either way.
    """

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning(
            "read_model_unavailable",
            path=request.url.path,
            error=f"{type(exc).__name__}: {exc}"[:300],
        )
        resp = problem_response(
            Problem(
                503,
                "Read model unavailable",
                "the service's database could not be used just now; retry shortly",
            ),
            request.url.path,
        )
        resp.headers["Retry-After"] = "1"
        return resp

    for error in (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError):
        app.add_exception_handler(error, _unavailable)


def make_app(services: Sequence[Service], title: str = "gongkai") -> FastAPI:
    # Swagger UI and ReDoc from the package's own copies: a platform on a closed network (a
    # county's intranet) shows its API documentation without reaching a CDN.
    app = FastAPIOffline(title=title, version="0.1.0", static_url="/docs-assets")
    install_problem_handlers(app)
    install_database_unavailable_handler(app)
    # Requests by route template (not by raw path: a post id per series would not do), method
    # and status, with a latency histogram; /metrics and the probes are left out. A registry
    # of the app's own: a second app in one process (the tests) would otherwise count into
    # series nobody exports. The series are prometheus_fastapi_instrumentator's (names,
    # labels, buckets), counted by a lean middleware of ours (``gongkai.runtime.http_metrics``).
    http_registry = CollectorRegistry()
    app.add_middleware(
        HttpMetricsMiddleware,
        metrics=HttpMetrics(
            http_registry,
            namespace="gongkai",
            # Fine enough below 50 ms to see the p99 the front door is held to.
            lowr_buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            excluded=["/metrics", "/healthz", "/readyz"],
        ),
    )
    for svc in services:
        adopt_routes(app.router, svc.router)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """200 while every service can serve: see ``Service.status`` for what that means."""
        statuses = {svc.name: await svc.status() for svc in services}
        ok = all(st["ready"] for st in statuses.values())
        body = {
            "status": "ok" if ok else "not ready",
            "services": {name: st["ready"] for name, st in statuses.items()},
            "reasons": [f"{name}: {r}" for name, st in statuses.items() for r in st["reasons"]],
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/status", tags=["health"])
    async def status() -> dict[str, Any]:
        """Each service's readiness and each projection's progress: position, the stream's
        last sequence, lag, catch-up rate and the time left at that rate."""
        return {"services": {svc.name: await svc.status(exact=True) for svc in services}}

    @app.get("/metrics", tags=["health"])
    async def prom() -> PlainTextResponse:
        for svc in services:
            with contextlib.suppress(Exception):
                await svc.update_lag()
        text = generate_latest().decode() + generate_latest(http_registry).decode()
        return PlainTextResponse(text, media_type=CONTENT_TYPE_LATEST)

    return app


class Host:
    def __init__(
        self,
        settings: Settings,
        *,
        only: Sequence[str] | None = None,
        clock: Clock | None = None,
        after_start: Callable[[Host], object] | None = None,
    ) -> None:
        self.settings = settings
        self.only = only
        self.clock = clock or SystemClock()
        self.after_start = after_start
        self.server: NatsServer | None = None
        self.services: list[Service] = []
        #: The embedded server's users and their public keys (``gongkai.trust.matrix``).
        self.public_keys: dict[str, str] = {}
        self.http: uvicorn.Server | None = None
        #: The embedded platform's hold on its data directory (one ``gongkai up`` per directory).
        self.lock: DataDirLock | None = None
        self._stop = asyncio.Event()

    def build(self, nats_url: str) -> list[Service]:
        try:
            available = discover(self.only or None)
        except UnknownService as exc:
            raise StartupError(str(exc)) from None
        names = list(available)
        settings = self.settings
        auth: dict[str, NatsAuth] = {}
        if self.server is not None:
            # Each service connects as its own NKey user, which may not create streams: the
            # host created them as admin before.
            settings = replace(settings, manage_streams=False)
            auth = {n: NatsAuth(file=self.seed(n)) for n in names}
        ctx = ServiceContext(
            settings=settings, clock=self.clock, nats_url=nats_url, nats_auth=auth
        )
        return [available[n](ctx) for n in names]

    async def start(self) -> FastAPI:
        s = self.settings
        if port_in_use(s.http_host, s.http_port):
            raise StartupError(f"HTTP port {s.http_host}:{s.http_port} is already in use")
        try:
            check_writable_dir(s.data_dir)
        except ServerStartError as exc:
            raise StartupError(str(exc)) from None
        if s.nats_url is None:
            try:
                self.lock = DataDirLock(s.data_dir).acquire()
            except DataDirInUse as exc:
                raise StartupError(str(exc)) from None
            # Built before the server starts, and once: the server's permissions protect the
            # durable consumers the built services name (building connects to nothing).
            self.server = self.embedded_server()
            built = self.build(self.server.url)
            await self.start_embedded(built)
        else:
            url = s.nats_url
            try:
                auth = credentials.resolve(s, "admin")
            except CredentialsError as exc:
                raise StartupError(str(exc)) from None
            await check_nats(url, auth=auth)
            built = self.build(url)
        self.services = built
        if s.demo:
            # Recorded before the services consume: they catch up on the county in batches
            # instead of applying its events one by one as they arrive (ready in 6.3 s instead
            # of 9.1 on two cores, 2.4 s less CPU), /readyz answers once they have applied all
            # of it, and freshness decides each unit's columns on its directory and its history
            # together: seen apart, every column of every unit was recorded stale on joining
            # and refreshed when the history came (1,300 events, and supervision cases).
            await self.load_demo()
        for i, svc in enumerate(self.services):
            try:
                await svc.start()
            except DatabaseNotReady as exc:
                # Only the services already running need stopping; the refusal stays one line.
                self.services = self.services[:i]
                raise StartupError(str(exc)) from None
        app = make_app(self.services)
        return app

    async def load_demo(self) -> None:
        """``--demo``: whatever the ``gongkai.demo`` entry points load, given the services (built;
        ``start`` calls it before starting them) and the time.

        A package of its own (gongkai-demo) provides it, so no service carries the demo.
        """
        hooks = [ep.load() for ep in entry_points(group="gongkai.demo")]
        if not hooks:
            raise StartupError("--demo: no demo is installed (the gongkai-demo package)")
        for hook in hooks:
            try:
                await hook(self.services, self.clock.now())
            except RuntimeError as exc:
                raise StartupError(f"--demo: {exc}") from None

    def seed(self, user: str) -> Path:
        """The NKey seed file of one of the embedded server's users."""
        return credentials.seed_file(self.settings.data_dir, user).resolve()

    def embedded_server(self) -> NatsServer:
        """The embedded nats-server, not yet started, on its port (a free one if none is set).

        Its users' NKeys exist once this returns: the services built next find their seeds.
        """
        s = self.settings
        try:
            self.public_keys = credentials.ensure_credentials(s.data_dir)
        except (CredentialsError, OSError) as exc:
            raise StartupError(f"NATS credentials: {exc}") from None
        server = NatsServer(
            store_dir=(s.data_dir / "nats").resolve(),
            port=s.nats_port,
            # Loopback only: /varz and /jsz tell who is connected, not for the network.
            monitor_port=s.nats_monitor_port,
            sync_always=s.nats_sync_always,
        )
        if server.port == 0:
            # Chosen now, so the services are built with the URL they will connect to.
            server.port = free_port(server.host)
        return server

    def durables(self, built: Sequence[Service]) -> dict[str, tuple[str, ...]] | None:
        """The built services' durable consumer names, when they are every installed service
        (``gongkai up``); None for a part of them (the matrix then finds every service's)."""
        if self.only is not None:
            return None
        return {svc.name: tuple(sorted(svc.durable_names())) for svc in built}

    async def start_embedded(self, built: Sequence[Service]) -> None:
        """Start the embedded server: NKey users only (no anonymous access), streams by admin.

        ``built``: the services about to start, whose durable consumers the permissions protect.
        """
        s = self.settings
        assert self.server is not None, "embedded_server() first"
        self.server.extra_config = matrix.embedded_auth_conf(
            self.public_keys, matrix.build(self.durables(built))
        )
        try:
            self.server.start()
        except ServerStartError as exc:
            raise StartupError(str(exc)) from None
        url = self.server.url
        try:
            admin = await EventLog.connect(
                url, connect_timeout=5, allow_reconnect=False, max_reconnect_attempts=0,
                name="gongkai-admin", **NatsAuth(file=self.seed("admin")).options(),
            )
        except Exception as exc:  # noqa: BLE001 - one line, not a traceback
            raise StartupError(f"cannot connect to the embedded NATS as admin: {exc}") from None
        try:
            await admin.ensure_stream(StreamSettings(replicas=s.stream_replicas))
        except Exception as exc:  # noqa: BLE001
            raise StartupError(f"cannot create the event streams: {exc}") from None
        finally:
            await admin.close()

    async def serve(self) -> None:
        # The handlers come first: a stop asked for while the services start (catching up
        # behind a long log takes minutes) stops what has started, the embedded nats-server
        # included, instead of killing this process and leaving the server running.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stop.set)
        starting = asyncio.create_task(self.start())
        stop_asked = asyncio.create_task(self._stop.wait())
        await asyncio.wait({starting, stop_asked}, return_when=asyncio.FIRST_COMPLETED)
        stop_asked.cancel()
        if not starting.done():
            # Asked again until it stops: nats-py swallows a cancellation that lands in its
            # publish path (Client._flush_pending), and the start then ran on to its end —
            # every service started, the demo loaded — before the stop was seen (4.4 s).
            while not starting.done():
                starting.cancel()
                await asyncio.wait({starting}, timeout=0.05)
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            log.info("stopping", during="start")
            await self.shutdown()
            return
        app = starting.result()
        # What the platform holds once it serves (modules, the app and its routes, the services
        # and their read models' memos) lives as long as the process: out of the cyclic
        # collector's sight from here on. Every full collection walked all of it again, tens of
        # milliseconds that landed on whichever requests were in flight (intake's process
        # under bench_intake: 60 ms a full collection, 12 once frozen).
        keep_heap()
        s = self.settings
        config = uvicorn.Config(
            app, host=s.http_host, port=s.http_port, log_level="warning", lifespan="off"
        )
        self.http = _Uvicorn(config)
        http_task = asyncio.create_task(self.http.serve())
        while not self.http.started:
            if http_task.done():
                await http_task
                raise StartupError(f"HTTP server on {s.http_host}:{s.http_port} did not start")
            await asyncio.sleep(0.02)
        self.announce()
        if self.after_start is not None:
            result = self.after_start(self)
            if asyncio.iscoroutine(result):
                await result
        await self._stop.wait()
        log.info("stopping")
        self.http.should_exit = True
        await http_task
        await self.shutdown()

    async def shutdown(self) -> None:
        try:
            await self._stop_all()
        finally:
            if self.lock is not None:
                # Last: the directory is free only once nats-server has flushed and stopped.
                self.lock.release()
                self.lock = None

    async def _stop_all(self) -> None:
        if not self.services and self.server is None:
            return
        for svc in reversed(self.services):
            try:
                await svc.stop()
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
                log.error("stop_failed", service=svc.name, error=str(exc))
        if self.server is not None:
            self.server.stop()
        log.info("stopped")

    def request_stop(self) -> None:
        self._stop.set()

    def connect_help(self) -> list[str]:
        """How a subscriber and an inspector reach the embedded server (no anonymous access)."""
        assert self.server is not None
        url = self.server.url
        creds = credentials.credentials_dir(self.settings.data_dir).resolve()
        sub, insp = self.seed("subscriber"), self.seed("inspector")
        return [
            f"NATS credentials (NKeys, owner-only) in {creds}; anonymous connections are refused.",
            f"  subscriber   nats-py: await nats.connect(\"{url}\", nkeys_seed=\"{sub}\")",
            f"               nats CLI: nats --server {url} --nkey {sub} stream info "
            f"{subjects.STREAM}",
            f"  inspector    nats --server {url} --nkey {insp} stream info {subjects.STREAM}"
            "   (gongkai audit/events tail find it by themselves)",
        ]

    def announce(self) -> None:
        s = self.settings
        base = f"http://{s.http_host}:{s.http_port}"
        lines = ["gongkai is running:"]
        if self.server is not None:
            sync = "sync every write" if s.nats_sync_always else "default fsync interval"
            lines.append(
                f"  nats-server  {self.server.url}  JetStream in {self.server.store_dir} ({sync})"
            )
            lines.append(
                f"  monitoring   http://{self.server.host}:{self.server.monitor_port}"
                "  (/varz /jsz /healthz; for the NATS Prometheus exporter)"
            )
        else:
            lines.append(f"  NATS         {s.nats_url}")
        for svc in self.services:
            lines.append(f"  {svc.name:<12} db {s.db_url(svc.name)}")
        lines.append(f"  HTTP API     {base}  (/healthz /readyz /metrics /docs)")
        if self.server is not None:
            lines += self.connect_help()
        lines.append("Stop with Ctrl-C.")
        print("\n".join(lines), flush=True)


def run(settings: Settings, *, only: Sequence[str] | None = None) -> int:
    gklogging.configure(settings.log_format, settings.log_level)
    host = Host(settings, only=only)
    try:
        asyncio.run(host.serve())
    except StartupError as exc:
        print(f"gongkai: {exc}", file=sys.stderr)
        with contextlib.suppress(Exception):
            asyncio.run(host.shutdown())
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        # Everything is stopped and flushed by now. The interpreter's collections at exit
        # would walk every object the platform made (0.5 s of CPU after each stop, measured
        # with the four services imported) to free memory the process is about to give back.
        gc.freeze()
    return 0


__all__ = ["Host", "StartupError", "make_app", "run"]


