"""The distributed run, for real, on one machine.

A 3-node nats-server cluster on loopback whose routes authenticate (deploy/nats: a `route` user,
route URLs carrying its password), the deploy accounts of deploy/nats/auth.conf, an R3 stream
created by the admin user; PostgreSQL from the Debian package, migrated by `gongkai db upgrade`
(the init step); and the four services, each its own `gongkai service NAME` process with its own
NATS user and database, verifying the schema as in deploy.

The load goes through the whole chain over HTTP, as the people and the CMS would: a maker
submits a normative document (intake), the staff and the principal leader sign it (review), the
CMS reports it online (intake /publications). Every request carries an Idempotency-Key and is
retried with it on a 5xx or a broken connection. In the middle the stream leader is killed
(SIGKILL). Asserted: the load finishes, no acknowledged event is lost, none is duplicated, and
every service's projections (in PostgreSQL) equal a rebuild from the log. Printed: the stall
while the cluster elects a new leader, and the time until every service has caught up.

Also here: a node that presents the wrong route credentials does not join the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from gongkai import subjects
from gongkai.eventlog import EventLog, StreamSettings, local_keyring
from gongkai.natsserver import NatsServer, ServerStartError, free_port
from gongkai.projection import ProjectionStore, make_engine
from gongkai.runtime.service import ServiceContext, discover
from gongkai.runtime.settings import Settings
from tests.chain import GONGKAI, ChainLoad, answers_reach, matches
from tests.natsauth import auth_config, cluster_config, nats_passwords, route_url
from tests.pg import fresh_database, pg_server

__all__ = ["pg_server"]

#: Posts taken through the whole chain: 4 HTTP requests and 5 events each.
POSTS = 100
#: Concurrent people/CMS sessions, each walking one post at a time through the chain.
WORKERS = 16


class Cluster:
    """Three nats-servers with authenticated routes, and their monitoring ports."""

    def __init__(self, base: Path, route_password: str, wrong: frozenset[int] = frozenset()):
        cports = [free_port() for _ in range(3)]
        self.monitor: dict[str, int] = {}
        self.nodes: list[NatsServer] = []
        for i, cport in enumerate(cports):
            name = f"n{i + 1}"
            # A node in ``wrong`` knows another route password: it offers it when it connects
            # and expects it from the others.
            pw = f"{route_password}x" if i in wrong else route_password
            routes = [route_url(pw, "127.0.0.1", p) for p in cports]
            self.monitor[name] = free_port()
            extra = (
                f'http: "127.0.0.1:{self.monitor[name]}"\n'
                + cluster_config("gk-test", cport, pw, routes)
                + auth_config()
            )
            self.nodes.append(
                NatsServer(store_dir=base / name, server_name=name, sync_always=False,
                           extra_config=extra)
            )

    def start(self) -> Cluster:
        try:
            for n in self.nodes:
                n.start()
        except BaseException:
            # A node that could not start (its port taken meanwhile: free_port only finds
            # one free at the time) left the ones before it running for the rest of the
            # machine's day: the caller's stop is only reached once start has returned.
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()

    async def routes(self, client: httpx.AsyncClient, name: str) -> set[str]:
        """The servers ``name`` has a route to, from its /routez monitoring endpoint."""
        r = await client.get(f"http://127.0.0.1:{self.monitor[name]}/routez")
        r.raise_for_status()
        return {route["remote_name"] for route in r.json().get("routes") or []}

    def log(self, name: str) -> str:
        node = next(n for n in self.nodes if n.server_name == name)
        return (node.store_dir / "nats-server.log").read_text(errors="replace")


#: Clusters tried before a port taken by another process fails the test: free_port finds a port
#: free when it looks, and the node that listens on it starts a second or two later, while the
#: suite's other workers start servers and open connections (their local ports come from the
#: same range). Two of three runs of the suite on one afternoon lost a router port that way.
START_TRIES = 3


def started_cluster(
    base: Path, route_password: str, wrong: frozenset[int] = frozenset()
) -> Cluster:
    """A cluster started on ports chosen afresh if one chosen was taken before its node
    listened on it (a new directory for each try: nothing of a failed one is reused)."""
    for attempt in range(1, START_TRIES):
        try:
            return Cluster(base / f"cluster{attempt}", route_password, wrong).start()
        except ServerStartError as exc:
            if "already in use" not in str(exc):
                raise
    return Cluster(base / f"cluster{START_TRIES}", route_password, wrong).start()


async def _until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        await asyncio.sleep(0.1)


async def test_a_node_with_wrong_route_credentials_does_not_join(tmp_path: Path) -> None:
    with nats_passwords():
        cluster = started_cluster(tmp_path, "gkRoutePw", wrong=frozenset({2}))
        try:
            async with httpx.AsyncClient(timeout=2) as client:

                async def good_pair() -> bool:
                    return "n2" in await cluster.routes(client, "n1")

                await _until(good_pair, 10, "n1 and n2 route to each other")

                # n3 has tried (both ways) and was refused: the good nodes logged it.
                async def refused() -> bool:
                    return all(
                        "Authentication Failure" in cluster.log(n) for n in ("n1", "n2")
                    )

                await _until(refused, 10, "n3's route attempts are refused")
                assert await cluster.routes(client, "n1") == {"n2"}
                assert await cluster.routes(client, "n2") == {"n1"}
                assert await cluster.routes(client, "n3") == set()
        finally:
            cluster.stop()


async def _connect(url: str, user: str, pw: str) -> EventLog:
    nc = await nats.connect(url, user=user, password=pw, max_reconnect_attempts=-1,
                            reconnect_time_wait=0.2)
    # Signed as the owning service with the test session's keys, as the operator's tools do.
    return EventLog(nc, timeout=2.0).use_keys(local_keyring())


async def _init_streams(url: str, pw: str) -> EventLog:
    deadline = time.monotonic() + 30
    while True:
        init: EventLog | None = None
        try:
            init = await _connect(url, "admin", pw)
            await init.ensure_stream(StreamSettings(replicas=3, duplicate_window_s=600))
            return init
        except Exception:
            # A client of a failed attempt would go on reconnecting (without end) to a cluster
            # that the test stops later, and the session's clean-up would meet it half-closed.
            if init is not None:
                await init.close()
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


@pytest.mark.timeout(240)
async def test_killing_the_stream_leader_loses_and_duplicates_nothing(
    tmp_path: Path, pg_server: str
) -> None:
    from gongkai_demo.county import seed_demo

    procs: list[subprocess.Popen[bytes]] = []
    t_start = time.monotonic()
    with nats_passwords() as pw:
        cluster = started_cluster(tmp_path, "gk" + pw["sys"][2:14])
        nodes = cluster.nodes
        clients: list[EventLog] = []
        try:
            # the init steps, as compose and the Kubernetes Jobs run them: the databases are
            # migrated (in the background) while the streams are created
            names = list(discover())
            dbs = {n: fresh_database(pg_server, n) for n in names}
            db_env = {f"GONGKAI_DB_URL_{n.upper()}": url for n, url in dbs.items()}
            migrate = subprocess.Popen(
                [GONGKAI, "db", "upgrade"], env={**os.environ, **db_env},
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            )
            init = await _init_streams(nodes[0].url, pw["admin"])
            clients.append(init)
            info = await init.js.stream_info(subjects.STREAM)
            assert info.config.num_replicas == 3
            leader_name = info.cluster.leader if info.cluster else None
            leader = next(n for n in nodes if n.server_name == leader_name)
            survivors = [n for n in nodes if n is not leader]
            out, _ = await asyncio.to_thread(migrate.communicate, timeout=60)
            assert migrate.returncode == 0, out.decode()

            # the four services, each its own process, user and PostgreSQL database
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
                    "GONGKAI_DB_MIGRATE": "verify",
                    "GONGKAI_HTTP_PORT": str(http[name]),
                    "GONGKAI_LOG_FORMAT": "json",
                    "GONGKAI_DATA_DIR": str(tmp_path / "var"),
                    f"GONGKAI_DB_URL_{name.upper()}": dbs[name],
                }
                log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115
                procs.append(subprocess.Popen(
                    [GONGKAI, "service", name],
                    env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                ))
                log.close()

            intake = await _connect(survivors[0].url, "intake", pw["intake"])
            clients.append(intake)
            # Now: the services run on the real clock, and the demo's tokens expire in 90 days.
            await seed_demo(intake, datetime.now(UTC), units=["finance"])

            async with httpx.AsyncClient(timeout=15) as client:
                # the cluster formed over authenticated routes
                for n in nodes:
                    others = {m.server_name for m in nodes} - {n.server_name}
                    assert await cluster.routes(client, n.server_name) == others

                async def every_service(path: str, ok: Callable[[Any], bool]) -> bool:
                    """Whether every service answers ``path`` with 200 and a body ``ok`` likes."""
                    for port in http.values():
                        try:
                            r = await client.get(f"http://127.0.0.1:{port}{path}")
                        except httpx.HTTPError:
                            return False
                        if r.status_code != 200 or not ok(r.json()):
                            return False
                    return True

                async def all_ready() -> bool:
                    return await every_service("/readyz", lambda _: True)

                async def all_applied() -> bool:
                    # Readiness goes by what each projection was last told (a probe asks
                    # nobody); /status asks the server whether anything is left to apply.
                    return await every_service("/status", lambda body: not any(
                        p["lag"] for st in body["services"].values() for p in st["projections"]
                    ))

                deadline = time.monotonic() + 60
                while not await all_ready():
                    assert all(p.poll() is None for p in procs), _logs(tmp_path, names)
                    assert time.monotonic() < deadline, _logs(tmp_path, names)
                    await asyncio.sleep(0.3)

                load = ChainLoad(client, http, tag="failover")
                queue: asyncio.Queue[int] = asyncio.Queue()
                for i in range(POSTS):
                    queue.put_nowait(i)
                kill_after = POSTS * 4 // 3
                t0 = time.monotonic()
                workers = [asyncio.create_task(load.worker(queue)) for _ in range(WORKERS)]
                await answers_reach(load, kill_after, workers)
                t_kill = time.monotonic()
                leader.kill()
                await asyncio.gather(*workers)
                t_done = time.monotonic()

                ts = sorted(load.ack_times)
                gaps = [b - a for a, b in itertools.pairwise(ts)]

                deadline = time.monotonic() + 90
                while not await all_ready():
                    assert time.monotonic() < deadline, _logs(tmp_path, names)
                    await asyncio.sleep(0.2)
                t_caught_up = time.monotonic()
                # services may still be reacting (freshness records column events); wait until
                # the log stops growing and every projection has applied it
                last = -1
                while (
                    last != (last := await intake.last_sequence())
                    or not await all_ready()
                    or not await all_applied()
                ):
                    assert time.monotonic() < deadline, _logs(tmp_path, names)
                    await asyncio.sleep(0.5)

            # the load finished: every post went through the whole chain
            assert load.published == POSTS
            assert len(load.acked) == POSTS * 4

            # The services stop before the log is read: on the real clock they may still append
            # (accountability's timed checkpoints), and a live projection that went on applying
            # would be ahead of a rebuild of the log as read. Every one was ready at ``last``.
            ready_at = last
            _stop(procs)
            last = await intake.last_sequence()
            assert last >= ready_at

            # nothing lost, nothing duplicated
            recorded = [e async for e in intake.replay()]
            ids = Counter(e.envelope.event_id for e in recorded)
            dups = [i for i, c in ids.items() if c > 1]
            assert not dups, f"duplicated: {dups[:5]}"
            by_id = {e.envelope.event_id: e.seq for e in recorded}
            lost = [i for i in load.acked if i not in by_id]
            assert not lost, f"acknowledged but lost: {lost[:5]}"
            wrong = [i for i, s in load.acked.items() if s is not None and by_id[i] != s]
            assert not wrong, f"an answer named the wrong sequence: {wrong[:5]}"
            assert [e.seq for e in recorded] == list(range(1, last + 1))
            kinds = Counter(e.envelope.type for e in recorded)
            assert kinds["PostSubmitted"] == kinds["PostPublished"] == POSTS
            assert kinds["ReviewSigned"] == 2 * POSTS and kinds["ReviewConcluded"] == POSTS

            # every projection (PostgreSQL, written by the service processes) equals a rebuild
            # of the log up to its checkpoint
            ctx = ServiceContext(settings=Settings(data_dir=tmp_path / "rebuild"))
            for name, build in discover().items():
                svc = build(ctx)
                live = ProjectionStore(make_engine(dbs[name]), manage_schema=False)
                for p in svc.projections:
                    applied = live.checkpoint(p)
                    mine = [e for e in recorded if matches(p.filter_subject, e.subject)]
                    # the checkpoint moves with what the projection applies: its
                    # filter_subjects, whether the server or the reader filters by them
                    applies = p.filter_subjects or [p.filter_subject]
                    asked = [e for e in mine if any(matches(f, e.subject) for f in applies)]
                    owed = max((e.seq for e in asked if e.seq <= ready_at), default=0)
                    assert applied >= owed, f"{name}/{p.name} stopped at {applied} of {owed}"
                    fresh = type(p)()
                    rb = ProjectionStore(make_engine(f"sqlite:///{tmp_path / name}-{p.name}.db"))
                    rb.prepare(fresh)
                    rb.apply(fresh, [e for e in mine if e.seq <= applied])
                    assert live.digest(p) == rb.digest(fresh), f"{name}/{p.name}"
                    rb.engine.dispose()
                live.engine.dispose()

            t_checked = time.monotonic()
            print(
                f"\nfailover: {POSTS} posts through the HTTP chain (submit, staff, leader, "
                f"publish: {len(load.acked)} requests, {last} events in the log) by {WORKERS} "
                f"sessions in {t_done - t0:.1f} s; leader {leader_name} killed after "
                f"{kill_after} answers; election stall (longest gap between answers) "
                f"{max(gaps):.1f} s; all four services caught up {t_caught_up - t_kill:.1f} s "
                f"after the kill ({t_caught_up - t_done:.1f} s after the load ended); "
                f"retries {dict(load.retries)}; setup {t0 - t_start:.1f} s, "
                f"checks {t_checked - t_caught_up:.1f} s"
            )
        finally:
            # closed whether the test passed or not: a client left open reconnects to the
            # stopped cluster until the session's end
            for c in clients:
                await c.close()
            _stop(procs)
            cluster.stop()


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            p.terminate()
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()


def _logs(tmp_path: Path, names: list[str]) -> str:
    return "\n".join(
        f"--- {n}\n" + (tmp_path / f"{n}.log").read_text(errors="replace")[-1500:] for n in names
    )

