"""Least privilege on the bus, tested against a real nats-server running deploy/nats/auth.conf.

Each service's user may append only the events that service owns, read the log the ways the
services do (ordered consumers, durable pull consumers, acks), dead-letter, and answer requests
on gk.cmd.<service>.>; only the admin user may create or change streams; nobody may delete or
purge the event log. Finally every real service starts with its own credentials and works.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from gongkai import subjects
from gongkai.consumer import dead_letter
from gongkai.eventlog import EventLog
from gongkai.natsserver import NatsServer
from gongkai.runtime.clock import FixedClock
from gongkai.runtime.service import ServiceContext, discover
from gongkai.runtime.settings import Settings
from gongkai.trust.credentials import NatsAuth
from tests.natsauth import SERVICES, auth_config, nats_passwords
from tests.waiting import wait_until

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

#: What each service owns (deploy/nats/auth.conf must let exactly these through).
OWNED: dict[str, list[str]] = {}


def _owned(service: str) -> list[str]:
    if not OWNED:
        ctx = ServiceContext(settings=Settings())
        for name, build in discover().items():
            svc = build(ctx)
            OWNED[name] = [
                subjects.event_subject(c.aggregate_type, "X-1", c.event_type) for c in svc.owns
            ]
    return OWNED.get(service, [])


@pytest.fixture(scope="module")
def secured() -> Iterator[tuple[NatsServer, dict[str, str]]]:
    with nats_passwords() as pw, tempfile.TemporaryDirectory(prefix="gongkai-perm-") as d:
        srv = NatsServer(
            store_dir=Path(d), sync_always=False, server_name="perm", extra_config=auth_config()
        ).start()
        try:
            yield srv, pw
        finally:
            srv.stop()


class Conn:
    """A connection as one user, remembering the permission errors the server sent it."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.nc: NATS | None = None

    async def connect(self, url: str, user: str, password: str) -> EventLog:
        async def on_error(exc: Exception) -> None:
            self.errors.append(str(exc))

        self.nc = await nats.connect(
            url, user=user, password=password, error_cb=on_error, max_reconnect_attempts=0,
            name=f"perm-test-{user}",
        )
        return EventLog(self.nc, timeout=0.3)

    def violations(self) -> list[str]:
        return [e for e in self.errors if "permissions violation" in e.lower()]


@pytest.fixture
async def as_user(
    secured: tuple[NatsServer, dict[str, str]],
) -> AsyncIterator[Any]:
    srv, pw = secured
    conns: list[Conn] = []

    async def connect(user: str) -> tuple[EventLog, Conn]:
        c = Conn()
        conns.append(c)
        return await c.connect(srv.url, user, pw[user]), c

    yield connect
    for c in conns:
        if c.nc is not None and not c.nc.is_closed:
            await c.nc.close()


async def _init_streams(as_user: Any) -> EventLog:
    init, _ = await as_user("admin")
    await init.ensure_stream()
    return init


async def test_wrong_password_and_unknown_user_are_refused(
    secured: tuple[NatsServer, dict[str, str]],
) -> None:
    srv, pw = secured
    for user, password in (("intake", "wrong"), ("nobody", pw["intake"])):
        with pytest.raises(Exception, match=r"(?i)authorization"):
            await nats.connect(
                srv.url, user=user, password=password, max_reconnect_attempts=0,
                allow_reconnect=False,
            )


async def test_only_init_creates_and_changes_streams_and_nobody_deletes_the_log(
    as_user: Any,
) -> None:
    init = await _init_streams(as_user)
    info = await init.js.stream_info(subjects.STREAM)
    assert info.config.deny_delete and info.config.deny_purge
    # init may change a stream (here: its description, then back) ...
    cfg = info.config
    cfg.description = "changed by init"
    await init.js.update_stream(cfg)
    # ... but neither init nor any service may delete or purge the log.
    async def refused(call: Any) -> bool:
        try:
            await call
        except (TimeoutError, nats.js.errors.Error):  # nats.errors.TimeoutError is one
            return True
        return False

    async def attempts(user: str) -> None:
        log, conn = await as_user(user)
        calls = [log.js.delete_stream(subjects.STREAM), log.js.purge_stream(subjects.STREAM)]
        if user != "admin":
            calls += [
                log.js.add_stream(StreamConfig(name=f"ROGUE_{user}", subjects=[f"rogue.{user}"])),
                log.js.update_stream(cfg),
                log.js.delete_consumer(subjects.STREAM, "anything"),
                # bounded like the others: nats-py's delete_msg waits its own 5 s for the
                # answer a refused request never gets
                asyncio.wait_for(log.js.delete_msg(subjects.STREAM, 1), log.timeout),
            ]
        results = await asyncio.gather(*(refused(c) for c in calls))
        assert all(results), f"{user}: {results}"
        assert conn.violations(), f"{user}: the server reported no violation"

    await asyncio.gather(*(attempts(u) for u in ("admin", *SERVICES)))
    info = await init.js.stream_info(subjects.STREAM)
    assert info.config.description == "changed by init"
    names = await init.js.streams_info()
    assert {s.config.name for s in names} == {subjects.STREAM, subjects.DLQ_STREAM}


async def test_each_service_appends_only_its_own_events(as_user: Any) -> None:
    init = await _init_streams(as_user)
    for service in SERVICES:
        log, conn = await as_user(service)
        await log.ensure_stream()  # services only verify the stream (stream info)
        mine = _owned(service)
        for subj in mine:
            try:
                ack = await log.js.publish(subj, b"{}", stream=subjects.STREAM, timeout=2)
            except nats.errors.TimeoutError:
                raise AssertionError(f"{service} may not append {subj}: {conn.errors}") from None
            assert ack.stream == subjects.STREAM
        foreign = [s for other in SERVICES if other != service for s in _owned(other)]
        before = await init.last_sequence()
        # Core publishes with a reply inbox are what a JetStream publish sends; the server
        # answers each refused one with a permissions violation before the flush's PONG.
        inbox = log.nc.new_inbox()
        for subj in foreign:
            await log.nc.publish(subj, b"{}", reply=inbox)
        await log.nc.flush()

        def missing(conn: Conn = conn, foreign: list[str] = foreign) -> list[str]:
            refused = " ".join(conn.violations())
            return [s for s in foreign if f'"{s.lower()}"' not in refused]

        # Every refusal has arrived: only then can "nothing was recorded" be checked.
        await wait_until(
            lambda: not missing(), 5, lambda s=service: f"{s} was not refused {missing()}"
        )
        assert await init.last_sequence() == before, f"{service} recorded a foreign event"
    # The two cases the issue names, spelled out.
    intake, _ = await as_user("intake")
    with pytest.raises(nats.errors.TimeoutError):
        await intake.js.publish("gk.ev.review.P-1.ReviewSigned", b"{}", timeout=0.3)
    review, review_conn = await as_user("review")
    with pytest.raises(nats.errors.TimeoutError):
        await review.js.publish("gk.ev.post.P-1.PostSubmitted", b"{}", timeout=0.3)
    # A core-NATS publish cannot sneak a foreign event in either.
    await review.nc.publish("gk.ev.post.P-2.PostSubmitted", b"{}")
    await review.nc.flush()
    await wait_until(
        lambda: '"gk.ev.post.p-2.postsubmitted"' in " ".join(review_conn.violations()),
        5,
        "the core publish is refused",
    )
    assert not [e async for e in init.replay(filter_subject="gk.ev.post.P-2.*")]


async def test_atomic_batch_append_with_service_credentials(as_user: Any) -> None:
    await _init_streams(as_user)
    intake, _ = await as_user("intake")
    hdr = {"Nats-Batch-Id": "b-perm-1", "Nats-Expected-Stream": subjects.STREAM}
    await intake.nc.publish(
        "gk.ev.post.PB-1.PostSubmitted", b"{}",
        headers={**hdr, "Nats-Batch-Sequence": "1", "Nats-Msg-Id": "perm-b1"},
    )
    msg = await intake.nc.request(
        "gk.ev.post.PB-1.PostRevised", b"{}", timeout=2,
        headers={**hdr, "Nats-Batch-Sequence": "2", "Nats-Batch-Commit": "1",
                 "Nats-Msg-Id": "perm-b2"},
    )
    assert b'"error"' not in msg.data, msg.data


async def test_services_read_consume_dead_letter_and_answer_commands(as_user: Any) -> None:
    init = await _init_streams(as_user)
    intake, _ = await as_user("intake")
    for i in range(3):
        await intake.js.publish(f"gk.ev.post.PR-{i}.PostSubmitted", b"{}", stream=subjects.STREAM)
    last = await init.last_sequence()
    for service in SERVICES:
        log, conn = await as_user(service)
        # replay through an ordered consumer
        seen = [m.subject async for m in log.raw_replay(filter_subject="gk.ev.post.*.*")]
        assert "gk.ev.post.PR-2.PostSubmitted" in seen
        # the last event of one aggregate, from the stream leader (how services authenticate)
        last_of = await log.js.get_last_msg(subjects.STREAM, "gk.ev.post.PR-1.*")
        assert last_of.seq == last - 1
        # a durable pull consumer: create, fetch, ack, info
        name = f"{service}-perm-test"
        await log.js.add_consumer(
            subjects.STREAM,
            ConsumerConfig(durable_name=name, ack_policy=AckPolicy.EXPLICIT,
                           filter_subject="gk.ev.post.*.PostSubmitted"),
        )
        sub = await log.js.pull_subscribe_bind(durable=name, stream=subjects.STREAM)
        msgs = await sub.fetch(3, timeout=2)
        assert len(msgs) == 3
        for m in msgs:
            await m.ack()
        # a dead letter of the last one, under the service's own name only
        await dead_letter(log, "perm-test", msgs[-1], "test: cannot apply", owner=service)
        other = next(s for s in SERVICES if s != service)
        with pytest.raises(nats.errors.TimeoutError):
            await log.js.publish(
                subjects.dlq_subject("perm-test", other), b"{}", stream=subjects.DLQ_STREAM,
                timeout=0.3,
            )

        async def acked(log: EventLog = log, name: str = name) -> bool:
            info = await log.js.consumer_info(subjects.STREAM, name)
            return bool(info.num_ack_pending == 0)

        await wait_until(acked, 5, f"{service}'s acks are applied")
        info = await log.js.consumer_info(subjects.STREAM, name)
        assert info.num_ack_pending == 0 and info.delivered.stream_seq <= last
        assert [v for v in conn.violations() if "gk.dlq." not in v] == []
        await sub.unsubscribe()
    dlq = await init.js.stream_info(subjects.DLQ_STREAM)
    assert dlq.state.messages == len(SERVICES)

    # request/reply on gk.cmd.<service>.>: intake answers, the cms asks
    async def answer(msg: Any) -> None:
        await msg.respond(b"pong:" + msg.data)

    await intake.nc.subscribe("gk.cmd.intake.>", cb=answer)
    await intake.nc.flush()
    cms, _cms_conn = await as_user("cms")
    reply = await cms.nc.request("gk.cmd.intake.ping", b"1", timeout=2)
    assert reply.data == b"pong:1"
    # review may not listen to intake's commands; the cms may not append events
    review, review_conn = await as_user("review")
    await review.nc.subscribe("gk.cmd.intake.>", cb=answer)
    await review.nc.flush()
    await wait_until(review_conn.violations, 5, "review's subscription is refused")
    with pytest.raises(nats.errors.TimeoutError):
        await cms.js.publish("gk.ev.post.PX.PostSubmitted", b"{}", timeout=0.3)


async def test_every_service_starts_and_works_with_its_own_credentials(tmp_path: Path) -> None:
    """A fresh server (no test debris in the log): the real services, each as its own user."""
    from gongkai_demo.county import seed_demo

    with nats_passwords() as pw:
        srv = NatsServer(
            store_dir=tmp_path / "nats", sync_always=False, server_name="perm2",
            extra_config=auth_config(),
        ).start()
        started = []
        try:
            init_conn = Conn()
            init = await init_conn.connect(srv.url, "admin", pw["admin"])
            await init.ensure_stream()
            clock = FixedClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))
            for name, build in discover().items():
                settings = Settings(
                    data_dir=tmp_path, nats_url=srv.url,
                    nats_auth=NatsAuth(user=name, password=pw[name]), manage_streams=False,
                )
                svc = build(ServiceContext(settings=settings, clock=clock, nats_url=srv.url))
                await asyncio.wait_for(svc.start(), 10)
                started.append(svc)
            # intake records the demo directory with its own credentials; all projections
            # follow it
            intake = next(svc for svc in started if svc.name == "intake")
            await seed_demo(intake.evlog, clock.now(), units=["finance"])
            last = await init.last_sequence()
            assert last > 0
            for svc in started:
                await svc.wait_caught_up(last, within=15)
                assert await svc.ready(), svc.name
            await init.close()
        finally:
            for svc in reversed(started):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(svc.stop(), 10)
            srv.stop()
        log_text = (srv.store_dir / "nats-server.log").read_text(errors="replace")
        violations = [ln for ln in log_text.splitlines() if "Violation" in ln]
        assert not violations, violations[:5]
