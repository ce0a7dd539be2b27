"""The projection guarantees on both stores the project supports: SQLite (embedded) and
PostgreSQL (deploy). Exactly-once effects, resume after a kill equals a rebuild, and the real
services' projections give the same digest on PostgreSQL as a rebuild on SQLite.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bench.bench_memory import post_events
from gongkai import migrations
from gongkai.consumer import CatchUpSubscription
from gongkai.eventlog import EventLog
from gongkai.natsserver import NatsServer
from gongkai.projection import ProjectionStore, make_engine
from gongkai.runtime.clock import FixedClock
from gongkai.runtime.service import ServiceContext, discover
from gongkai.runtime.settings import Settings
from tests.chain import matches
from tests.integration.test_projection_consumers import SlowTitles, TitlesPerPost, fill
from tests.pg import fresh_database, pg_server
from tests.waiting import stable, wait_until

__all__ = ["pg_server"]  # the fixture, imported for pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'read.db'}"
    return fresh_database(request.getfixturevalue("pg_server"))


async def _rebuild(evlog: EventLog, url: str) -> str:
    store = ProjectionStore(make_engine(url))
    proj = TitlesPerPost()
    store.prepare(proj)
    store.apply(proj, [e async for e in evlog.replay()])
    digest = store.digest(proj)
    store.engine.dispose()
    return digest


class Threads:
    """``asyncio.to_thread`` on a pool of the test's own that keeps its futures, so a test can
    wait for the threads it started to finish rather than for a length of time."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(4, thread_name_prefix="test-to-thread")
        self.futures: list[Future[Any]] = []

    async def to_thread(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        future = self.pool.submit(call)
        self.futures.append(future)
        return await asyncio.wrap_future(future)

    def idle(self) -> bool:
        return all(f.done() for f in self.futures)


async def test_resume_after_kill_equals_rebuild(
    evlog: EventLog, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await fill(evlog, 2000)
    store = ProjectionStore(make_engine(db_url))
    proj = SlowTitles()
    sub = CatchUpSubscription(evlog, store, proj, batch=100)
    threads = Threads()
    monkeypatch.setattr(asyncio, "to_thread", threads.to_thread)
    await sub.start()
    await wait_until(lambda: sub.position >= 300, 30, "300 events applied", every=0.001)
    await sub.stop()
    # stop() cancels the task, not the worker thread applying the batch in hand; wait until
    # it has committed. (Without this, SQLite can apply that batch twice: pysqlite reads the
    # checkpoint outside a transaction, so FOR UPDATE does not serialise two appliers.)
    await wait_until(threads.idle, 30, "the batch in hand is committed")
    monkeypatch.undo()
    threads.pool.shutdown()
    assert 0 < store.checkpoint(proj) < 2000
    await fill(evlog, 500, tag="more")
    sub2 = CatchUpSubscription(evlog, store, TitlesPerPost(), batch=100)
    await sub2.start()
    await sub2.wait_for(2500, within=30)
    await sub2.stop()
    assert store.checkpoint(proj) == 2500
    live = store.digest(proj)
    store.engine.dispose()
    # the rebuild goes to SQLite: the digest does not depend on the store
    assert live == await _rebuild(evlog, f"sqlite:///{tmp_path / 'rebuild.db'}")


async def test_redelivery_is_applied_once(evlog: EventLog, db_url: str) -> None:
    await fill(evlog, 200)
    store = ProjectionStore(make_engine(db_url))
    proj = TitlesPerPost()
    store.prepare(proj)
    events = [e async for e in evlog.replay()]
    assert store.apply(proj, events) == 200
    assert store.apply(proj, events[100:]) == 0
    assert store.checkpoint(proj) == 200
    store.engine.dispose()


async def test_service_projections_on_postgres_equal_a_sqlite_rebuild(
    nats_server: NatsServer, evlog: EventLog, pg_server: str, tmp_path: Path
) -> None:
    from gongkai_demo.county import seed_demo

    clock = FixedClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))
    names = list(discover())
    urls = {n: fresh_database(pg_server, n) for n in names}
    for name, url in urls.items():
        # the init step: deploy-mode services refuse an un-migrated PostgreSQL database
        engine = make_engine(url)
        migrations.upgrade(engine, name)
        engine.dispose()
    ctx = ServiceContext(
        settings=Settings(data_dir=tmp_path, db_urls=urls), clock=clock, nats_url=nats_server.url
    )
    services = [build(ctx) for build in discover().values()]
    for svc in services:
        await svc.start()
    try:
        await seed_demo(evlog, clock.now(), units=["finance", "water"])
        # Posts through the whole chain (submitted, signed, concluded, published; some
        # columns stale then refreshed; one published without the leader), so every
        # projection's row writes run on PostgreSQL, not only the directory's.
        for i in range(40):
            for event in post_events(i, ("finance", "water"), timedelta(hours=3)):
                await evlog.append([event])
        # The services react (accountability records a violation): wait for the log to rest.
        log_stopped = stable(evlog.last_sequence)

        async def rests() -> bool:
            last = await evlog.last_sequence()
            for svc in services:
                await svc.wait_caught_up(last, within=30)
            return await log_stopped()

        await wait_until(rests, 60, "the log rests", every=0.5)
        events = [e async for e in evlog.replay()]
        for svc in services:
            for p in svc.projections:
                live = svc.store.digest(p)
                path = tmp_path / f"{svc.name}-{p.name}.db"
                rebuilt = ProjectionStore(make_engine(f"sqlite:///{path}"))
                fresh = type(p)()
                rebuilt.prepare(fresh)
                rebuilt.apply(fresh, [e for e in events if matches(p.filter_subject, e.subject)])
                assert rebuilt.digest(fresh) == live, f"{svc.name}/{p.name}"
                if p.name in ("review_queue", "accountability"):
                    # not two empty tables compared: the posts' rows are there
                    assert sum(len(list(svc.store.rows(t))) for t in p.tables()) >= 40, p.name
                rebuilt.engine.dispose()
    finally:
        for svc in reversed(services):
            await svc.stop()

