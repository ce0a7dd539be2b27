"""Shared fixtures: a real nats-server per test session on a free loopback port; the
hypothesis profiles of ``make test`` and ``make fuzz`` (tests/determinism.py)."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import gc
import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies import models as fastapi_dependencies
from nats.aio.client import Client as NATS

from gongkai import migrations, subjects
from gongkai.eventlog import EventLog, StreamSettings
from gongkai.natsserver import NatsServer
from gongkai.projection import make_engine
from gongkai.runtime.clock import FixedClock
from gongkai.runtime.host import make_app
from gongkai.runtime.service import Service, ServiceContext, discover
from gongkai.runtime.settings import Settings
from gongkai.trust.keys import provision
from tests.determinism import (
    fuzz_selection,
    pytest_report_header,  # noqa: F401 - pytest finds hooks here
)
from tests.ordering import (
    longest_first,
    pytest_configure,  # noqa: F401 - pytest finds hooks here
)

# httpx's ASGITransport, the tests' way into the services, asks ``import sniffio`` on every
# request (is trio running?). sniffio is not installed, and a failed import is not remembered:
# each request searched every sys.path entry again, 0.1-0.5 ms, a tenth of a schemathesis
# request. None in sys.modules makes the import fail at once, as it would anyway.
if importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]

# A full collection walks every object the process holds. In a worker that has imported the
# services, collected the whole suite and run part of it, one took 0.4-0.8 s, and each worker
# ran 35-45 of them (make test at stop 22: 120 full collections, 70 s inside them on three
# workers). Python starts one after 10 collections of the middle generation; here after 100.
# The next run, with this, made 70 (35-55 s): most of the rest were fold_log's own collection
# after each fold, which now collects the young generations only, and the heap they walked had
# grown with every platform a worker had started (``forget_routes``). Stop 23: 25 full
# collections, 10 s on three workers. The young generations, where most garbage dies, are
# collected as before; the services' own processes keep Python's settings.
_YOUNG, _MIDDLE, _ = gc.get_threshold()
gc.set_threshold(_YOUNG, _MIDDLE, 100)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    fuzz_selection(config, items)  # make fuzz: only the generating tests (tests/determinism.py)
    longest_first(items)  # the longest files to the workers first (tests/ordering.py)


# One set of signing keys and trust anchors for the whole test process (and the service
# processes it starts, which inherit the environment): every service signs what it appends and
# verifies what it reads, and the tests' own EventLog clients sign as the owning service, as the
# operator's tools do on the embedded default (gongkai.eventlog.local_keyring).
if "GONGKAI_KEYS_DIR" not in os.environ:
    _KEYS = Path(tempfile.mkdtemp(prefix="gongkai-test-keys-"))
    provision(_KEYS)
    os.environ["GONGKAI_KEYS_DIR"] = str(_KEYS)


@pytest.fixture(scope="session", autouse=True)
async def _close_leftover_nats_clients() -> AsyncIterator[None]:
    """At the end of the session, close every NATS client a test left open.

    Such a client keeps reconnecting to a server that is gone, and on Python 3.11 its
    reconnect loop can swallow a cancellation (asyncio.wait_for completing with the refused
    connection at the moment it is cancelled): closing the session's event loop would wait for
    it forever. close() ends the loop by state, not by cancellation.
    """
    yield
    left = [obj for obj in gc.get_objects() if isinstance(obj, NATS) and not obj.is_closed]
    # All at once: a client whose server is gone can take its whole 2 s to close, and this
    # wait is at the end of every worker, where nothing else runs beside it.
    await asyncio.gather(*(_close_client(nc) for nc in left))


async def _close_client(nc: NATS) -> None:
    try:
        await asyncio.wait_for(nc.close(), 2)
    except asyncio.CancelledError:
        # A client whose server is gone has its socket's close waiter cancelled by its own
        # reader: close() then ends in CancelledError though nobody cancelled this clean-up
        # (seen once at the end of test_cluster_failover). Only a real cancellation of the
        # session's teardown (which gather passes on to this task) goes on.
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
    except Exception:  # best effort: the client is being thrown away
        pass


@contextlib.contextmanager
def _nats_server() -> Iterator[NatsServer]:
    with tempfile.TemporaryDirectory(prefix="gongkai-test-nats-") as d:
        # Tests favour speed; the embedded default keeps sync_interval: always.
        srv = NatsServer(store_dir=Path(d), sync_always=False).start()
        try:
            yield srv
        finally:
            srv.stop()


@contextlib.asynccontextmanager
async def _fresh_log(url: str) -> AsyncIterator[EventLog]:
    log = await EventLog.connect(url)
    await log.ensure_stream(StreamSettings(duplicate_window_s=120))
    try:
        yield log
    finally:
        for name in (subjects.STREAM, subjects.DLQ_STREAM):
            with contextlib.suppress(Exception):
                await log.js.delete_stream(name)
        await log.close()


@pytest.fixture
def nats_server() -> Iterator[NatsServer]:
    """A nats-server of the test's own: no consumer, stream or connection outlives a test.

    Starting one takes a few tens of milliseconds; sharing one across tests let a stopped
    service's leftovers (durable consumers, in-flight requests) disturb the next test.
    """
    with _nats_server() as srv:
        yield srv


@pytest.fixture
async def evlog(nats_server: NatsServer) -> AsyncIterator[EventLog]:
    """A connected client on fresh streams: each test starts with an empty log.

    Deleting the whole stream is allowed (deny_delete/deny_purge protect its messages); only
    tests do it, to start clean.
    """
    async with _fresh_log(nats_server.url) as log:
        yield log


@dataclass
class Platform:
    """Every installed service started in-process on the test nats-server, behind one ASGI app."""

    services: dict[str, Service]
    client: httpx.AsyncClient
    evlog: EventLog
    clock: FixedClock
    ctx: ServiceContext
    app: FastAPI

    @contextlib.asynccontextmanager
    async def own_client(self) -> AsyncIterator[Platform]:
        """The same platform behind a client of its own: no cookie (a console session) set by
        another test of a shared platform reaches this one."""
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url=str(self.client.base_url)
        )
        try:
            yield dataclasses.replace(self, client=client)
        finally:
            await client.aclose()

    async def settle(self, within: float = 10.0) -> None:
        """Wait until every service's projections have applied the whole log."""
        last = await self.evlog.last_sequence()
        await asyncio.gather(*(s.wait_caught_up(last, within) for s in self.services.values()))


PLATFORM_T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai, a Monday

#: Each service's read-model database as its migrations leave a new one, made once a test
#: process by the code under test (``migrations.upgrade``), by (service, page size).
_MIGRATED: dict[tuple[str, int | None], Path] = {}
_BUILDERS: dict[str, Callable[[ServiceContext], Service]] = {}


def _migrated(name: str, page_size: int | None) -> Path | None:
    """The file ``migrations.upgrade`` makes for a new database of ``name``, or None if it
    cannot be copied as one file (a WAL left beside it)."""
    key = (name, page_size)
    if key not in _MIGRATED:
        made = tempfile.mkdtemp(prefix="gongkai-test-db-")
        atexit.register(shutil.rmtree, made, ignore_errors=True)
        path = Path(made) / f"{name}.db"
        engine = make_engine(f"sqlite:///{path}", page_size=page_size)
        migrations.upgrade(engine, name)
        engine.dispose()  # the last connection's close checkpoints the WAL into the file
        _MIGRATED[key] = path
    path = _MIGRATED[key]
    return None if path.with_name(f"{name}.db-wal").exists() else path


def _with_migrated_databases(services: dict[str, Service], settings: Settings) -> None:
    """Give each service a copy of a new database already migrated to head.

    Migrating a new database from empty took 25-70 ms of CPU a service, at every platform a
    test starts (hundreds in the suite); at start each service still runs its migrations on
    the copy, and finds it at head. The migrations themselves, from empty and from every older
    shape, are tested in test_migrations.py; ``gongkai up`` and ``gongkai service`` in the
    end-to-end tests still make their databases from nothing.
    """
    for name, svc in services.items():
        target = settings.data_dir / f"{name}.db"
        if settings.db_url(name) != f"sqlite:///{target}" or target.exists():
            continue
        made = _migrated(name, svc.db_page_size)
        if made is not None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(made, target)


def forget_routes() -> None:
    """Let go of the routes of the apps built so far, and through them of their services.

    FastAPI remembers whether each endpoint and dependency is a coroutine or a generator in
    caches keyed by the function itself (4,096 entries each, ``lru_cache`` in
    ``fastapi.dependencies.models``). A service's routes are closures over the service, so
    every platform a test process started stayed alive there with its projections, rows and
    engines: a worker's heap grew from 0.3 to 1.7 million objects over make test, and each
    full collection walked them all (1-1.6 s each by the end). A service process builds its
    routes once; a test process builds them for every platform, and empties the caches when
    one stops (the next build fills them again with its own functions, as a cache miss
    would anyway).
    """
    for cached in vars(fastapi_dependencies).values():
        clear = getattr(cached, "cache_clear", None)  # each of the module's lru_caches
        if callable(clear):
            clear()


@contextlib.asynccontextmanager
async def _running_platform(
    url: str, evlog: EventLog, data_dir: Path, node: pytest.Item | pytest.Collector
) -> AsyncIterator[Platform]:
    marker = node.get_closest_marker("services")
    clock = FixedClock(PLATFORM_T0)
    settings = Settings(data_dir=data_dir)
    ctx = ServiceContext(settings=settings, clock=clock, nats_url=url)
    wanted = set(marker.args) if marker else None
    if not _BUILDERS:
        _BUILDERS.update(discover())  # entry points read once a process, not per platform
    services = {
        name: build(ctx)
        for name, build in _BUILDERS.items()
        if wanted is None or name in wanted
    }
    _with_migrated_databases(services, settings)
    for svc in services.values():
        await svc.start()
    app = make_app(list(services.values()))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gongkai")
    try:
        yield Platform(services, client, evlog, clock, ctx, app)
    finally:
        await client.aclose()
        for svc in reversed(list(services.values())):
            await svc.stop()
        forget_routes()


@pytest.fixture
async def platform(
    nats_server: NatsServer, evlog: EventLog, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Platform]:
    """All installed services, or those named by ``@pytest.mark.services("intake", ...)``.

    Starting only what a test exercises keeps the other services' reactions (freshness
    evaluating every new unit's columns, accountability opening cases) out of its way and time.
    """
    async with _running_platform(nats_server.url, evlog, tmp_path, request.node) as p:
        yield p


@pytest.fixture(scope="module")
async def module_platform(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> AsyncIterator[Platform]:
    """``platform`` once for a whole test file, on a nats-server of the file's own.

    For files whose tests only add to the log and judge what they added (a request refused
    records nothing after the sequence read before it; a post is read back by its own id):
    starting the services and seeding a directory for each of them was most of their time.
    A file that stops, kills or restarts a service, or needs an empty log, keeps ``platform``.
    """
    with _nats_server() as srv:
        async with (
            _fresh_log(srv.url) as log,
            _running_platform(
                srv.url, log, tmp_path_factory.mktemp("platform"), request.node
            ) as p,
        ):
            yield p


@pytest.fixture(scope="module")
async def demo_county(module_platform: Platform) -> Platform:
    """The demo county's three weeks (tests/consolekit.py), played once for a test file."""
    from tests.consolekit import demo_history  # consolekit imports this module

    await demo_history(module_platform)
    return module_platform


@pytest.fixture
async def county(demo_county: Platform) -> AsyncIterator[Platform]:
    """The file's demo county, settled, behind a client of the test's own, for tests that ask
    about its history. What a test adds to it is seen by the file's later tests: a test whose
    checks count what it adds (alerts, checkpoints) or that changes the county takes
    ``platform``; one that adds only what no other check reads may take this."""
    await demo_county.settle()
    async with demo_county.own_client() as p:
        yield p
