"""The distributed run, for real, on one machine.

A 3-node nats-server cluster on loopback (deploy/nats/auth.conf accounts, R3 stream created by
the init user), PostgreSQL from the Debian package, and the four services each as its own
`gongkai service NAME` process with its own NATS user and database. A load of posts is appended
with intake's credentials; in the middle the stream leader is killed (SIGKILL). Asserted: the
load finishes, no acknowledged event is lost, none is duplicated, and every service's
projections (in PostgreSQL) equal a rebuild from the log. Printed: the stall while the cluster
elects a new leader, and the time until every service has caught up.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats.errors
import pytest

from gongkai import subjects
from gongkai.eventlog import EventLog, EventLogError, StreamSettings
from gongkai.natsserver import NatsServer, free_port
from gongkai.projection import ProjectionStore, make_engine
from gongkai.runtime.service import ServiceContext, discover
from gongkai.runtime.settings import Settings
from tests.integration.test_projection_consumers import submitted
from tests.natsauth import auth_config, nats_passwords
from tests.pg import fresh_database, pg_server

__all__ = ["pg_server"]

POSTS = 600
WRITERS = 16


def _cluster(base: Path) -> list[NatsServer]:
    ports = [free_port() for _ in range(3)]
    routes = ", ".join(f'"nats-route://127.0.0.1:{p}"' for p in ports)
    nodes = []
    for i, cport in enumerate(ports, 1):
        extra = (
            "cluster {\n  name: gk-test\n"
            f'  listen: "127.0.0.1:{cport}"\n  routes: [{routes}]\n}}\n' + auth_config()
        )
        nodes.append(
            NatsServer(store_dir=base / f"n{i}", server_name=f"n{i}", sync_always=False,
                       extra_config=extra)
        )
    for n in nodes:
        n.start()
    return nodes


async def _connect(url: str, user: str, pw: str, **kw: Any) -> EventLog:
    nc = await nats.connect(url, user=user, password=pw, max_reconnect_attempts=-1,
                            reconnect_time_wait=0.2, **kw)
    return EventLog(nc, timeout=2.0)


async def _init_streams(url: str, pw: str) -> EventLog:
    deadline = time.monotonic() + 30
    while True:
        try:
            init = await _connect(url, "init", pw)
            await init.ensure_stream(StreamSettings(replicas=3, duplicate_window_s=600))
            return init
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


@pytest.mark.timeout(240)
async def test_killing_the_stream_leader_loses_and_duplicates_nothing(
    tmp_path: Path, pg_server: str
) -> None:
    from gongkai_intake.demo import seed_demo

    procs: list[subprocess.Popen[bytes]] = []
    with nats_passwords() as pw:
        nodes = _cluster(tmp_path)
        try:
            init = await _init_streams(nodes[0].url, pw["init"])
            info = await init.js.stream_info(subjects.STREAM)
            assert info.config.num_replicas == 3
            leader_name = info.cluster.leader if info.cluster else None
            leader = next(n for n in nodes if n.server_name == leader_name)
            survivors = [n for n in nodes if n is not leader]

            # the four services, each its own process, user and PostgreSQL database
            names = list(discover())
            dbs = {n: fresh_database(pg_server, n) for n in names}
            http: dict[str, int] = {}
            for i, name in enumerate(names):
                http[name] = free_port()
                env = {
                    **os.environ,
                    # services spread over the nodes, the leader's included: its clients must
                    # fail over too
                    "GONGKAI_NATS_URL": nodes[i % 3].url,
                    "GONGKAI_NATS_USER": name,
                    "GONGKAI_NATS_PASSWORD": pw[name],
                    "GONGKAI_STREAM_MANAGE": "false",
                    "GONGKAI_STREAM_REPLICAS": "3",
                    "GONGKAI_HTTP_PORT": str(http[name]),
                    "GONGKAI_LOG_FORMAT": "json",
                    "GONGKAI_DATA_DIR": str(tmp_path / "var"),
                    f"GONGKAI_DB_URL_{name.upper()}": dbs[name],
                }
                log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115
                procs.append(subprocess.Popen(
                    [str(Path(sys.executable).parent / "gongkai"), "service", name],
                    env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                ))
                log.close()

            intake = await _connect(survivors[0].url, "intake", pw["intake"])
            t_seed = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
            await seed_demo(intake, t_seed, units=["finance"])

            async with httpx.AsyncClient(timeout=2) as client:

                async def all_ready() -> bool:
                    for port in http.values():
                        try:
                            r = await client.get(f"http://127.0.0.1:{port}/readyz")
                        except httpx.HTTPError:
                            return False
                        if r.status_code != 200:
                            return False
                    return True

                deadline = time.monotonic() + 60
                while not await all_ready():
                    assert all(p.poll() is None for p in procs), _logs(tmp_path, names)
                    assert time.monotonic() < deadline, _logs(tmp_path, names)
                    await asyncio.sleep(0.3)

                # the load: one new post per command, with its optimistic-concurrency guard;
                # a failed append is retried with the same event (same Nats-Msg-Id)
                queue: asyncio.Queue[int] = asyncio.Queue()
                for i in range(POSTS):
                    queue.put_nowait(i)
                acked: dict[str, int] = {}
                ack_times: list[float] = []
                retries = Counter[str]()

                async def writer() -> None:
                    while not queue.empty():
                        i = queue.get_nowait()
                        env = submitted(f"FO-{i}", f"failover-{i}", f"title {i}")
                        while True:
                            try:
                                res = await intake.append([env], expected=0)  # type: ignore[list-item]
                                break
                            except (EventLogError, nats.errors.Error, TimeoutError) as exc:
                                retries[type(exc).__name__] += 1
                                await asyncio.sleep(0.2)
                        acked[env.event_id] = res.last  # type: ignore[attr-defined]
                        ack_times.append(time.monotonic())

                t0 = time.monotonic()
                writers = [asyncio.create_task(writer()) for _ in range(WRITERS)]
                while len(acked) < POSTS // 3:
                    await asyncio.sleep(0.01)
                t_kill = time.monotonic()
                leader.kill()
                await asyncio.gather(*writers)
                t_done = time.monotonic()

                ts = sorted(ack_times)
                gaps = [b - a for a, b in itertools.pairwise(ts)]

                deadline = time.monotonic() + 90
                while not await all_ready():
                    assert time.monotonic() < deadline, _logs(tmp_path, names)
                    await asyncio.sleep(0.2)
                t_caught_up = time.monotonic()
                # services may still be reacting (freshness records column events); wait until
                # the log stops growing and everyone has applied it
                last = -1
                while last != (last := await intake.last_sequence()) or not await all_ready():
                    assert time.monotonic() < deadline, _logs(tmp_path, names)
                    await asyncio.sleep(0.5)

            # nothing lost, nothing duplicated
            recorded = [e async for e in intake.replay()]
            ids = Counter(e.envelope.event_id for e in recorded)
            dups = [i for i, c in ids.items() if c > 1]
            assert not dups, f"duplicated: {dups[:5]}"
            by_id = {e.envelope.event_id: e.seq for e in recorded}
            lost = [i for i in acked if i not in by_id]
            assert not lost, f"acknowledged but lost: {lost[:5]}"
            assert all(by_id[i] == s for i, s in acked.items()), "an ack named the wrong sequence"
            assert len(acked) == POSTS
            assert [e.seq for e in recorded] == list(range(1, last + 1))

            # every projection (PostgreSQL, written by the service processes) equals a rebuild
            ctx = ServiceContext(settings=Settings(data_dir=tmp_path / "rebuild"))
            for name, build in discover().items():
                svc = build(ctx)
                live = ProjectionStore(make_engine(dbs[name]))
                for p in svc.projections:
                    fresh = type(p)()
                    rb = ProjectionStore(make_engine(f"sqlite:///{tmp_path / name}-{p.name}.db"))
                    rb.prepare(fresh)
                    rb.apply(fresh, [e for e in recorded if _matches(p.filter_subject, e.subject)])
                    assert live.digest(p) == rb.digest(fresh), f"{name}/{p.name}"
                    rb.engine.dispose()
                live.engine.dispose()

            print(
                f"\nfailover: {POSTS} posts by {WRITERS} writers in {t_done - t0:.1f} s; "
                f"leader {leader_name} killed after {POSTS // 3} acks; "
                f"election stall (longest gap between acks) {max(gaps):.1f} s; "
                f"all four services caught up {t_caught_up - t_kill:.1f} s after the kill "
                f"({t_caught_up - t_done:.1f} s after the load ended); retries {dict(retries)}"
            )
            await intake.close()
            await init.close()
        finally:
            for p in procs:
                with contextlib.suppress(ProcessLookupError):
                    p.terminate()
            for p in procs:
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
            for n in nodes:
                n.stop()


def _logs(tmp_path: Path, names: list[str]) -> str:
    return "\n".join(
        f"--- {n}\n" + (tmp_path / f"{n}.log").read_text(errors="replace")[-1500:] for n in names
    )


def _matches(pattern: str, subject: str) -> bool:
    pt, st = pattern.split("."), subject.split(".")
    for i, tok in enumerate(pt):
        if tok == ">":
            return len(st) > i
        if i >= len(st) or (tok != "*" and tok != st[i]):
            return False
    return len(pt) == len(st)
