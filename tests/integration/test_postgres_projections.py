"""The projection guarantees on both stores the project supports: SQLite (embedded) and
PostgreSQL (deploy). Exactly-once effects, resume after a kill equals a rebuild, and the real
services' projections give the same digest on PostgreSQL as a rebuild on SQLite.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

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


async def test_resume_after_kill_equals_rebuild(
    evlog: EventLog, db_url: str, tmp_path: Path
) -> None:
    await fill(evlog, 2000)
    store = ProjectionStore(make_engine(db_url))
    proj = SlowTitles()
    sub = CatchUpSubscription(evlog, store, proj, batch=100)
    await sub.start()
    while sub.position < 300:
        await asyncio.sleep(0.001)
    await sub.stop()
    # stop() cancels the task, not the worker thread applying the batch in hand; let it
    # commit. (Without this, SQLite can apply that batch twice: pysqlite reads the checkpoint
    # outside a transaction, so FOR UPDATE does not serialise two appliers - reported.)
    await asyncio.sleep(0.3)
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
    from gongkai_intake.demo import seed_demo

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
        last = -1
        while last != (last := await evlog.last_sequence()):
            for svc in services:
                await svc.wait_caught_up(last, within=30)
            await asyncio.sleep(0.5)
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

