"""Attacks on the bus of the embedded default (`gongkai up`), played for real, and refused.

The host starts nats-server with the NKey users of the permission matrix
(gongkai.trust.matrix) and every service as its own user. A local process without credentials
cannot connect, so cannot forge an event or delete a stream; one holding a service's seed can
append only that service's event types; the read-only users (inspector, subscriber, cms) append
nothing; only admin creates or deletes streams, and nobody deletes the log.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import nats.errors
import nats.js.errors
import nkeys
import pytest
from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from gongkai import subjects
from gongkai.eventlog import EventLog
from gongkai.events import Actor, new_event
from gongkai.events.contracts.review import ReviewSigned
from gongkai.natsserver import free_port
from gongkai.runtime.clock import FixedClock
from gongkai.runtime.host import Host
from gongkai.runtime.settings import Settings
from gongkai.trust import credentials, matrix
from gongkai.trust.keys import ServiceKey
from gongkai.trust.owners import SERVICES, owned_types
from tests.waiting import wait_until

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def _event_subjects(service: str, aggregate_id: str = "X-1") -> list[str]:
    return [subjects.event_subject(agg, aggregate_id, t) for agg, t in owned_types(service)]


async def _recorded(log: EventLog, subject: str) -> bool:
    """Whether the log holds a message on ``subject`` (the running services append their own
    reactions, an integrity alert for an unsigned test event say, so counting is no proof)."""
    try:
        await log.js.get_last_msg(subjects.STREAM, subject)
    except nats.js.errors.NotFoundError:
        return False
    return True


@pytest.fixture(scope="module")
async def host(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Host]:
    """`gongkai up` in-process: the embedded server and the four services, no HTTP."""
    data = tmp_path_factory.mktemp("gk-secure")
    settings = Settings(
        data_dir=data, nats_port=free_port(), http_port=free_port(), nats_sync_always=False
    )
    h = Host(settings, clock=FixedClock(T0))
    await h.start()
    try:
        yield h
    finally:
        await h.shutdown()


class Conn:
    """A connection as one user, remembering the permission errors the server sent it."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.nc: NATS | None = None

    async def open(self, url: str, **auth: Any) -> EventLog:
        async def on_error(exc: Exception) -> None:
            self.errors.append(str(exc))

        self.nc = await nats.connect(
            url, error_cb=on_error, allow_reconnect=False, max_reconnect_attempts=0, **auth
        )
        return EventLog(self.nc, timeout=0.5)

    def violations(self) -> list[str]:
        return [e for e in self.errors if "permissions violation" in e.lower()]


@pytest.fixture
async def as_user(host: Host) -> AsyncIterator[Any]:
    assert host.server is not None
    conns: list[Conn] = []

    async def connect(user: str) -> tuple[EventLog, Conn]:
        c = Conn()
        conns.append(c)
        return await c.open(host.server.url, nkeys_seed=str(host.seed(user))), c  # type: ignore[union-attr]

    yield connect
    for c in conns:
        if c.nc is not None and not c.nc.is_closed:
            await c.nc.close()


async def _refused(call: Any) -> bool:
    try:
        await call
    except (TimeoutError, nats.js.errors.Error):  # nats.errors.TimeoutError is a TimeoutError
        return True
    return False


def _delete_msg(log: EventLog, seq: int) -> Any:
    """``js.delete_msg`` bounded by the connection's timeout, as the other API calls are:
    nats-py's own waits 5 s for an answer, and a refused request gets none."""
    return asyncio.wait_for(log.js.delete_msg(subjects.STREAM, seq), log.timeout)


async def test_services_run_as_their_own_users_without_violations(host: Host) -> None:
    """The real services do their work on the secured server, nothing refused (first: the
    directory is read from a log without the unsigned test events of the attacks below)."""
    from gongkai_demo.county import seed_demo

    intake = next(s for s in host.services if s.name == "intake")
    await seed_demo(intake.evlog, T0, units=["finance"])
    last = await intake.evlog.last_sequence()
    for svc in host.services:
        assert svc.nats_auth().file == host.seed(svc.name)
        await svc.wait_caught_up(last, within=15)
        assert await svc.ready(), svc.name
    assert host.server is not None
    log_text = (host.server.store_dir / "nats-server.log").read_text(errors="replace")
    own = [ln for ln in log_text.splitlines() if "Violation" in ln and "gongkai-" in ln]
    assert not own, own[:5]


# ---- no credentials, wrong credentials ------------------------------------------------------


async def test_anonymous_connect_is_refused(host: Host) -> None:
    assert host.server is not None
    with pytest.raises(Exception, match=r"(?i)authorization"):
        await nats.connect(host.server.url, allow_reconnect=False, max_reconnect_attempts=0)


async def test_anonymous_and_unknown_key_cannot_delete_the_streams(
    host: Host, as_user: Any
) -> None:
    assert host.server is not None
    url = host.server.url
    # Anonymous: no connection, so no JetStream API call at all (stream delete included).
    with pytest.raises(Exception, match=r"(?i)authorization"):
        nc = await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0)
        await nc.jetstream().delete_stream(subjects.STREAM)
    # A valid NKey the server does not know (an attacker's own).
    seed = bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)).decode()
    with pytest.raises(Exception, match=r"(?i)authorization"):
        await nats.connect(
            url, nkeys_seed_str=seed, allow_reconnect=False, max_reconnect_attempts=0
        )
    # A password user (the deploy scheme) does not exist on the embedded server.
    with pytest.raises(Exception, match=r"(?i)authorization"):
        await nats.connect(
            url, user="admin", password="admin", allow_reconnect=False, max_reconnect_attempts=0
        )
    admin, _ = await as_user("admin")
    names = {s.config.name for s in await admin.js.streams_info()}
    assert {subjects.STREAM, subjects.DLQ_STREAM} <= names


# ---- each user can do what the matrix says, and nothing else ---------------------------------


async def test_each_service_appends_its_own_events_and_no_other(as_user: Any) -> None:
    admin, _ = await as_user("admin")
    for service in SERVICES:
        log, conn = await as_user(service)
        for subj in _event_subjects(service)[:3]:
            ack = await log.js.publish(subj, b"{}", stream=subjects.STREAM, timeout=2)
            assert ack.stream == subjects.STREAM, subj
        foreign = [
            s for o in SERVICES if o != service for s in _event_subjects(o, f"F-{service}")
        ]
        inbox = log.nc.new_inbox()
        for subj in foreign:
            await log.nc.publish(subj, b"{}", reply=inbox)
        await log.nc.flush()

        def missing(conn: Conn = conn, foreign: list[str] = foreign) -> list[str]:
            refused = " ".join(conn.violations())
            return [s for s in foreign if f'"{s.lower()}"' not in refused]

        # The server answers each refused publish with a permissions error, asynchronously.
        await wait_until(lambda: not missing(), 5, f"{service} refused every foreign subject")
        recorded = [s for s in foreign if await _recorded(admin, s)]
        assert not recorded, f"{service} recorded foreign events {recorded}"
    # the forgeries of the issue, with a service's own credentials
    intake, _ = await as_user("intake")
    for subj in ("gk.ev.review.P-1.ReviewSigned", "gk.ev.review.P-1.ReviewConcluded",
                 "gk.ev.violation.V-1.ViolationRecorded"):
        with pytest.raises(nats.errors.TimeoutError):
            await intake.js.publish(subj, b"{}", timeout=0.3)
    review, _ = await as_user("review")
    with pytest.raises(nats.errors.TimeoutError):
        await review.js.publish("gk.ev.person.M-1.TokenIssued", b"{}", timeout=0.3)


async def test_a_forgery_with_a_services_credentials_is_an_alert_not_an_approval(
    host: Host, as_user: Any
) -> None:
    """review's NATS seed lets a thief publish on review's subjects, not sign as review."""
    review, _ = await as_user("review")
    mallory = Actor(person="mallory", role="leader", unit="finance")
    forged = new_event(
        ReviewSigned(post_id="P-forged", chain=1, stage="leader", decision="agree",
                     signer=mallory, content_digest="a" * 64),
        aggregate_id="P-forged", actor=mallory, command_id="forged-on-embedded", recorded_at=T0,
    )
    subject = subjects.event_subject("review", "P-forged", "ReviewSigned")
    data = forged.to_json()
    thief = ServiceKey.generate("review")  # not in the trust anchors
    ack = await review.js.publish(
        subject, data, stream=subjects.STREAM, headers=thief.sign_event(subject, data)
    )
    acc = next(s for s in host.services if s.name == "accountability")
    model = acc.model  # type: ignore[attr-defined]
    await wait_until(lambda: model.get("alert", str(ack.seq)) is not None, 15, "an alert")
    assert model.get("alert", str(ack.seq)).check == "unknown_key"
    assert model.get("post", "P-forged") is None


@pytest.mark.parametrize("user", ["inspector", "subscriber", "cms", "admin"])
async def test_read_only_users_publish_no_event(as_user: Any, user: str) -> None:
    admin, _ = await as_user("admin")
    log, conn = await as_user(user)
    forged = [f"gk.ev.review.P-{user}.ReviewSigned", f"gk.ev.person.M-{user}.TokenIssued",
              f"gk.ev.post.P-{user}.PostSubmitted"]
    for subj in forged:
        with pytest.raises(nats.errors.TimeoutError):
            await log.js.publish(subj, b"{}", timeout=0.3)
    await log.nc.publish(f"gk.ev.post.P-{user}.PostRevised", b"{}")
    await log.nc.flush()
    await wait_until(
        lambda: any("postrevised" in v.lower() for v in conn.violations()),
        5,
        "the core publish refused",
    )
    for subj in [*forged, f"gk.ev.post.P-{user}.PostRevised"]:
        assert not await _recorded(admin, subj), subj


async def test_only_admin_creates_and_deletes_streams_and_nobody_deletes_the_log(
    as_user: Any,
) -> None:
    admin, _ = await as_user("admin")
    # admin: a scratch stream (a replayed copy, say) may be created and deleted ...
    await admin.js.add_stream(StreamConfig(name="SCRATCH", subjects=["scratch.>"]))
    await admin.js.delete_stream("SCRATCH")
    # ... the log and its dead letters may not be deleted or purged, not even by admin.
    results = await asyncio.gather(*(_refused(c) for c in (
        admin.js.delete_stream(subjects.STREAM), admin.js.delete_stream(subjects.DLQ_STREAM),
        admin.js.purge_stream(subjects.STREAM), _delete_msg(admin, 1),
    )))
    assert all(results), results
    await admin.js.add_stream(StreamConfig(name="SCRATCH2", subjects=["scratch2.>"]))

    async def attempts(user: str) -> None:
        log, conn = await as_user(user)
        calls = [
            log.js.add_stream(StreamConfig(name=f"ROGUE_{user}", subjects=[f"rogue.{user}"])),
            log.js.delete_stream("SCRATCH2"),
            log.js.delete_stream(subjects.STREAM),
            log.js.purge_stream(subjects.STREAM),
            _delete_msg(log, 1),
        ]
        results = await asyncio.gather(*(_refused(c) for c in calls))
        assert all(results), f"{user}: {results}"
        assert conn.violations(), user

    try:
        await asyncio.gather(
            *(attempts(u) for u in (*SERVICES, "inspector", "subscriber", "cms"))
        )
    finally:
        await admin.js.delete_stream("SCRATCH2")
    names = {s.config.name for s in await admin.js.streams_info()}
    assert names == {subjects.STREAM, subjects.DLQ_STREAM}


async def test_inspector_reads_through_ephemeral_consumers_only(as_user: Any) -> None:
    intake, _ = await as_user("intake")
    await intake.js.publish("gk.ev.post.INS-1.PostSubmitted", b"{}", stream=subjects.STREAM)
    log, conn = await as_user("inspector")
    seen = [m.subject async for m in log.raw_replay(filter_subject="gk.ev.post.INS-1.*")]
    assert seen == ["gk.ev.post.INS-1.PostSubmitted"]
    # and by direct get, as `gongkai audit trail` reads a post's aggregates
    direct = [m.subject async for m in log.read_stored("gk.ev.post.INS-1.*")]
    assert direct == ["gk.ev.post.INS-1.PostSubmitted"]
    await log.js.stream_info(subjects.STREAM)
    await log.js.stream_info(subjects.DLQ_STREAM)
    durable = ConsumerConfig(durable_name="inspector-keep", ack_policy=AckPolicy.EXPLICIT)
    assert await _refused(log.js.add_consumer(subjects.STREAM, durable))
    assert conn.violations()
    assert await _refused(log.js.delete_consumer(subjects.STREAM, "review-void-on-revision"))


async def test_subscriber_manages_its_own_durables_not_the_services(as_user: Any) -> None:
    intake, _ = await as_user("intake")
    await intake.js.publish("gk.ev.post.SUB-1.PostSubmitted", b"{}", stream=subjects.STREAM)
    log, conn = await as_user("subscriber")
    own = matrix.subscriber_durables("subscriber")
    assert own[0] == "sub-subscriber-1" and len(own) == matrix.DURABLE_SLOTS
    name = own[-1]
    await log.js.add_consumer(subjects.STREAM, ConsumerConfig(
        durable_name=name, ack_policy=AckPolicy.EXPLICIT, filter_subject="gk.ev.post.SUB-1.*",
    ))
    assert (await log.js.consumer_info(subjects.STREAM, name)).name == name
    sub = await log.js.pull_subscribe_bind(durable=name, stream=subjects.STREAM)
    msgs = await sub.fetch(1, timeout=2)
    assert msgs[0].subject == "gk.ev.post.SUB-1.PostSubmitted"
    await msgs[0].ack()
    await sub.unsubscribe()
    assert await log.js.delete_consumer(subjects.STREAM, name)
    # Only its own names: not a name of its choosing, not another user's durable.
    assert conn.violations() == []
    assert await _refused(log.js.add_consumer(subjects.STREAM, ConsumerConfig(
        durable_name="sub-downstream", ack_policy=AckPolicy.EXPLICIT,
    )))
    cms, _ = await as_user("cms")
    await cms.js.add_consumer(subjects.STREAM, ConsumerConfig(
        durable_name="cms-feed", ack_policy=AckPolicy.EXPLICIT,
    ))
    assert await _refused(log.js.delete_consumer(subjects.STREAM, "cms-feed"))
    assert (await cms.js.consumer_info(subjects.STREAM, "cms-feed")).name == "cms-feed"
    assert conn.violations()
    # No event, through JetStream or core NATS.
    assert await _refused(log.js.publish(
        "gk.ev.post.SUB-2.PostSubmitted", b"{}", stream=subjects.STREAM
    ))
    assert not await _recorded(log, "gk.ev.post.SUB-2.PostSubmitted")
    # A service's durable consumer (review voids approvals through it): not to be deleted,
    # taken over or drained by anyone else.
    durable = "review-void-on-revision"
    admin, _ = await as_user("admin")
    assert (await admin.js.consumer_info(subjects.STREAM, durable)).name == durable
    users = ("subscriber", "inspector", "cms", "intake")
    others = [(await as_user(user))[0] for user in users]
    # At once: each refusal is a request that gets no answer, a timeout's wait.
    refused = await asyncio.gather(*(
        _refused(call) for other in others for call in (
            other.js.delete_consumer(subjects.STREAM, durable),
            other.js.add_consumer(subjects.STREAM, ConsumerConfig(
                durable_name=durable, ack_policy=AckPolicy.NONE, filter_subject="gk.ev.x.*.*",
            )),
        )
    ))
    assert all(refused), dict(zip([f"{u} {c}" for u in users for c in ("delete", "add")],
                                  refused, strict=True))
    info = await admin.js.consumer_info(subjects.STREAM, durable)
    assert info.config.filter_subject != "gk.ev.x.*.*"


# ---- the credential files ---------------------------------------------------------------------


def test_credentials_are_owner_only_and_reused(host: Host, tmp_path: Path) -> None:
    d = credentials.credentials_dir(host.settings.data_dir)
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for user in matrix.USERS:
        f = credentials.seed_file(host.settings.data_dir, user)
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
        assert f.read_text().startswith("SU")
        # the server's config holds the public key, never the seed
        conf = (host.server.store_dir / "nats-server.conf").read_text()  # type: ignore[union-attr]
        assert f.read_text().strip() not in conf
        assert host.public_keys[user] in conf
    # reused after: the same keys a second time; loosened modes are narrowed again
    again = credentials.ensure_credentials(host.settings.data_dir)
    assert again == host.public_keys
    fresh = tmp_path / "data"
    first = credentials.ensure_credentials(fresh)
    os.chmod(credentials.credentials_dir(fresh), 0o755)
    os.chmod(credentials.seed_file(fresh, "intake"), 0o644)
    assert credentials.ensure_credentials(fresh) == first
    assert stat.S_IMODE(credentials.credentials_dir(fresh).stat().st_mode) == 0o700
    assert stat.S_IMODE(credentials.seed_file(fresh, "intake").stat().st_mode) == 0o600
    # rotation: a new seed and public key for that user only
    new = credentials.rotate(fresh, "subscriber")
    after = credentials.ensure_credentials(fresh)
    assert after["subscriber"] == new != first["subscriber"]
    assert {u: k for u, k in after.items() if u != "subscriber"} == {
        u: k for u, k in first.items() if u != "subscriber"
    }


def test_the_host_prints_how_to_connect(host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    host.announce()
    out = capsys.readouterr().out
    assert str(host.seed("subscriber")) in out and str(host.seed("inspector")) in out
    assert "nkeys_seed=" in out and "--nkey" in out
    assert "anonymous connections are refused" in out
