"""Projections and consumers against a real nats-server: exactly-once, rebuild, dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, select

from gongkai import subjects
from gongkai.consumer import CatchUpSubscription, DurableConsumer
from gongkai.eventlog import EventLog, RecordedEvent
from gongkai.events import Actor, new_event
from gongkai.events.contracts.intake import PostWithdrawn
from gongkai.natsserver import NatsServer
from gongkai.projection import Projection, ProjectionStore, make_engine
from tests.builders import submission
from tests.waiting import wait_until

ACTOR = Actor(person="p1", role="maker", unit="finance")
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def submitted(post: str, command: str, title: str = "t") -> object:
    return submission(post, command, actor=ACTOR, title=title, at=T0)


class TitlesPerPost(Projection):
    """A small real projection: per post, how many submissions and the concatenated titles."""

    name = "titles"

    def __init__(self, fail_on: str | None = None) -> None:
        self.fail_on = fail_on
        super().__init__()

    def define(self, metadata: MetaData) -> None:
        self.t = Table(
            "titles",
            metadata,
            Column("post", String(64), primary_key=True),
            Column("n", Integer, nullable=False),
            Column("titles", String, nullable=False),
        )

    def apply(self, conn: Connection, event: RecordedEvent) -> None:
        p = event.envelope.payload
        if self.fail_on is not None and p.title == self.fail_on:
            raise RuntimeError("cannot apply this one")
        row = conn.execute(
            select(self.t).where(self.t.c.post == event.envelope.aggregate_id)
        ).first()
        if row is None:
            conn.execute(
                self.t.insert().values(post=event.envelope.aggregate_id, n=1, titles=p.title)
            )
        else:
            conn.execute(
                self.t.update()
                .where(self.t.c.post == row.post)
                .values(n=row.n + 1, titles=row.titles + "|" + p.title)
            )


class SlowTitles(TitlesPerPost):
    def apply(self, conn: Connection, event: RecordedEvent) -> None:
        time.sleep(0.0002)  # the scenario: a slow projection, so a stop lands mid-stream
        super().apply(conn, event)


async def fill(evlog: EventLog, n: int, posts: int = 50, tag: str = "c") -> None:
    cmds = [(submitted(f"P{i % posts}", f"{tag}{i}", f"t{i}"), None) for i in range(n)]
    results = await evlog.append_pipelined(cmds)  # type: ignore[arg-type]
    assert all(not isinstance(r, Exception) for r in results)


async def rebuild_digest(evlog: EventLog, tmp_path: Path, name: str) -> str:
    store = ProjectionStore(make_engine(f"sqlite:///{tmp_path / name}"))
    proj = TitlesPerPost()
    store.prepare(proj)
    batch = [e async for e in evlog.replay()]
    store.apply(proj, batch)
    return store.digest(proj)


async def test_killed_mid_stream_then_restarted_equals_rebuild(
    evlog: EventLog, tmp_path: Path
) -> None:
    await fill(evlog, 3000)
    store = ProjectionStore(make_engine(f"sqlite:///{tmp_path / 'live.db'}"))
    proj = SlowTitles()  # slow enough that the stop lands mid-stream, not after the end
    sub = CatchUpSubscription(evlog, store, proj, batch=100)
    await sub.start()
    await wait_until(lambda: sub.position >= 500, 30, "500 events applied", every=0.001)
    await sub.stop()  # cancelled mid-stream: the last batch's transaction may be cut off
    stopped_at = store.checkpoint(proj)
    assert 0 < stopped_at < 3000
    await fill(evlog, 1000, tag="more")  # more arrives while it is down
    sub2 = CatchUpSubscription(evlog, store, TitlesPerPost(), batch=100)
    await sub2.start()
    await sub2.wait_for(4000)
    await sub2.stop()
    assert store.checkpoint(proj) == 4000
    assert store.digest(proj) == await rebuild_digest(evlog, tmp_path, "rebuild.db")


async def test_redelivered_events_are_applied_once(evlog: EventLog, tmp_path: Path) -> None:
    await fill(evlog, 100)
    store = ProjectionStore(make_engine(f"sqlite:///{tmp_path / 'x.db'}"))
    proj = TitlesPerPost()
    store.prepare(proj)
    events = [e async for e in evlog.replay()]
    assert store.apply(proj, events) == 100
    assert store.apply(proj, events[50:]) == 0  # redelivery of applied events changes nothing
    assert store.digest(proj) == await rebuild_digest(evlog, tmp_path, "r.db")


async def test_poison_messages_are_dead_lettered_and_the_projection_goes_on(
    evlog: EventLog, tmp_path: Path
) -> None:
    await fill(evlog, 10)
    # Published straight on the bus, bypassing the client, signed with intake's key (a writer
    # with a bug, not a forger): garbage, an unknown type, a bad field.
    assert evlog.keys is not None
    intake = evlog.keys.private["intake"]
    for subject, data in (
        ("gk.ev.post.X1.PostSubmitted", b"{not json"),
        ("gk.ev.post.X2.Bogus", b'{"type":"Bogus","schema_version":1}'),
        (
            "gk.ev.post.X3.PostSubmitted",
            b'{"type":"PostSubmitted","schema_version":2,"payload":{"title":5}}',
        ),
    ):
        headers = intake.sign_event(subject, data)
        await evlog.js.publish(subject, data, stream=subjects.STREAM, headers=headers)
    await evlog.append([submitted("P1", "boom", "explode")])  # applies badly every time
    await fill_after(evlog)
    store = ProjectionStore(make_engine(f"sqlite:///{tmp_path / 'p.db'}"))
    proj = TitlesPerPost(fail_on="explode")
    sub = CatchUpSubscription(evlog, store, proj, batch=4, max_attempts=3, retry_delay=0.01)
    await sub.start()
    await sub.wait_for(await evlog.last_sequence())
    await sub.stop()
    assert store.checkpoint(proj) == await evlog.last_sequence()
    info = await evlog.js.stream_info(subjects.DLQ_STREAM)
    assert info.state.messages == 4
    sub_dlq = await evlog.js.subscribe(
        "gk.dlq.titles", stream=subjects.DLQ_STREAM, ordered_consumer=True
    )
    errors = []
    for _ in range(4):
        m = await sub_dlq.next_msg(timeout=2)
        errors.append(m.headers["Gk-Dlq-Error"])
    await sub_dlq.unsubscribe()
    assert any("not JSON" in e for e in errors)
    assert any("unknown event type" in e for e in errors)
    assert any("cannot apply this one" in e for e in errors)
    with store.engine.connect() as conn:
        n = conn.execute(select(proj.t.c.n).where(proj.t.c.post == "P9")).scalar()
    assert n == 2  # events after the poison ones were applied


async def fill_after(evlog: EventLog) -> None:
    for i in range(10, 20):
        await evlog.append([submitted(f"P{i % 10}", f"after{i}", f"t{i}")])


async def test_durable_consumer_nacks_redelivers_then_dead_letters(evlog: EventLog) -> None:
    await fill(evlog, 20, posts=20)
    await evlog.js.publish("gk.ev.post.X1.PostSubmitted", b"\xff garbage", stream=subjects.STREAM)
    seen: dict[str, int] = {}
    done: list[str] = []

    async def handler(rec: RecordedEvent) -> None:
        aid = rec.envelope.aggregate_id
        seen[aid] = seen.get(aid, 0) + 1
        if aid == "P3":
            raise RuntimeError("always fails")
        if aid == "P5" and seen[aid] < 3:
            raise RuntimeError("fails twice, then works")
        done.append(aid)

    consumer = DurableConsumer(
        evlog, "test-reaction", "gk.ev.>", handler, max_deliver=4, nak_delay=0.01
    )
    await consumer.start()

    async def finished() -> bool:
        # Every good event handled, P3 tried max_deliver times, and the garbage and P3
        # dead-lettered: nothing more will be delivered.
        if not (len(done) == 19 and seen.get("P3") == 4):
            return False
        info = await evlog.js.stream_info(subjects.DLQ_STREAM)
        return info.state.messages == 2

    await wait_until(finished, 10, f"the consumer is done: done={done} seen={seen}")
    await consumer.stop()
    assert sorted(done) == sorted(f"P{i}" for i in range(20) if i != 3)
    assert seen["P5"] == 3 and seen["P3"] == 4
    info = await evlog.js.stream_info(subjects.DLQ_STREAM)
    assert info.state.messages == 2  # the garbage and P3


@contextlib.contextmanager
def logged() -> Iterator[list[MutableMapping[str, Any]]]:
    """The log lines, with what ``event_log_context`` binds merged in as the services'
    processors merge it (gongkai.runtime.logging)."""
    capture = structlog.testing.LogCapture()
    before = structlog.get_config()
    structlog.configure(processors=[structlog.contextvars.merge_contextvars, capture])
    try:
        yield capture.entries
    finally:
        structlog.configure(**before)


async def test_every_line_logged_about_a_failed_event_names_it(
    evlog: EventLog, tmp_path: Path
) -> None:
    """Contract 8: a failed apply (catch-up) and a failed handler (durable consumer), and the
    dead letter each ends in, are logged with the event's id, correlation id and sequence."""
    await evlog.append([submitted("P1", "boom", "explode")])
    [rec] = [e async for e in evlog.replay()]
    named = {
        "event_id": rec.envelope.event_id,
        "correlation_id": rec.envelope.correlation_id,
        "seq": rec.seq,
    }

    async def handler(_: RecordedEvent) -> None:
        raise RuntimeError("always fails")

    with logged() as lines:
        store = ProjectionStore(make_engine(f"sqlite:///{tmp_path / 'p.db'}"))
        sub = CatchUpSubscription(
            evlog, store, TitlesPerPost(fail_on="explode"), max_attempts=2, retry_delay=0.01
        )
        await sub.start()
        await sub.wait_for(rec.seq)
        await sub.stop()
        consumer = DurableConsumer(
            evlog, "test-named", "gk.ev.>", handler, max_deliver=2, nak_delay=0.01
        )
        await consumer.start()

        async def dead_lettered_twice() -> bool:
            info = await evlog.js.stream_info(subjects.DLQ_STREAM)
            return info.state.messages == 2

        await wait_until(dead_lettered_twice, 10, "the catch-up's and the consumer's")
        await consumer.stop()
    events = [line["event"] for line in lines]
    assert events.count("apply_failed") == 2 and events.count("handler_failed") == 2
    assert events.count("dead_lettered") == 2
    for line in lines:
        if line["event"] in ("apply_failed", "handler_failed"):
            assert {k: line.get(k) for k in named} == named, line
        if line["event"] == "dead_lettered":
            # Its seq is the dead-letter header's text; the ids come from the bound context.
            assert (line.get("event_id"), line.get("correlation_id")) == (
                named["event_id"],
                named["correlation_id"],
            ), line


async def test_a_durable_consumer_given_a_narrower_filter_keeps_its_place(
    evlog: EventLog,
) -> None:
    """A durable consumer that exists with another filter (review's once read every post
    event) is changed in place: nothing it acknowledged comes again, and from then on the
    server sends only what the new filter lets through."""
    await fill(evlog, 4, posts=4)
    handled: list[str] = []

    async def handler(rec: RecordedEvent) -> None:
        handled.append(f"{rec.envelope.type}:{rec.envelope.aggregate_id}")

    wide = DurableConsumer(evlog, "test-narrowed", "gk.ev.post.*.*", handler)
    await wide.start()
    await wait_until(lambda: len(handled) == 4, 10, f"the four submissions: {handled}")

    async def acknowledged() -> bool:
        info = await evlog.js.consumer_info(subjects.STREAM, "test-narrowed")
        return info.num_ack_pending == 0 and info.ack_floor.stream_seq == 4

    await wait_until(acknowledged, 10, "the four acknowledged")
    await wide.stop()
    await evlog.append([submitted("P9", "later")])
    await evlog.append(
        [
            new_event(
                PostWithdrawn(unit="finance", reason="duplicate"),
                aggregate_id="P9",
                actor=ACTOR,
                command_id="withdraw-p9",
                recorded_at=T0,
            )
        ]
    )
    changes = ("gk.ev.post.*.PostRevised", "gk.ev.post.*.PostWithdrawn")
    narrow = DurableConsumer(evlog, "test-narrowed", changes, handler)
    await narrow.start()
    await wait_until(lambda: len(handled) == 5, 10, f"the withdrawal: {handled}")
    info = await evlog.js.consumer_info(subjects.STREAM, "test-narrowed")
    await narrow.stop()
    assert tuple(info.config.filter_subjects or ()) == changes
    assert info.num_pending == 0
    assert handled[4:] == ["PostWithdrawn:P9"]  # not P9's submission, nor the four again


class SubmittedTitles(TitlesPerPost):
    """``TitlesPerPost`` of submissions only: the server leaves the withdrawals out."""

    name = "submitted_titles"
    filter_subjects = (subjects.type_filter("PostSubmitted", "post"),)


class SubmittedTitlesPassedOver(SubmittedTitles):
    """The same, the server sending every event and the reader passing over the rest."""

    server_filters = False


def withdrawn(post: str, command: str) -> object:
    return new_event(
        PostWithdrawn(unit="finance", reason="duplicate"),
        aggregate_id=post,
        actor=ACTOR,
        command_id=command,
        recorded_at=T0,
    )


async def test_a_projection_that_passes_over_events_by_subject_equals_the_servers_filter(
    evlog: EventLog, tmp_path: Path
) -> None:
    """``server_filters = False``: the same rows as the server's filter, and a log that ends
    in events the projection passes over still counts as read to its end (ready, no lag)."""
    mixed = [
        (withdrawn(f"W{i}", f"w{i}") if i % 3 == 2 else submitted(f"P{i % 7}", f"s{i}", f"t{i}"))
        for i in range(300)
    ]
    mixed += [withdrawn(f"W{i}", f"tail{i}") for i in range(5)]  # the log ends passed over
    results = await evlog.append_pipelined([(e, None) for e in mixed])  # type: ignore[misc]
    assert all(not isinstance(r, Exception) for r in results)
    last = await evlog.last_sequence()
    last_submission = 299  # of i = 298, the last with i % 3 != 2
    digests = []
    for proj in (SubmittedTitles(), SubmittedTitlesPassedOver()):
        store = ProjectionStore(make_engine(f"sqlite:///{tmp_path / type(proj).__name__}.db"))
        sub = CatchUpSubscription(evlog, store, proj, batch=40)
        await sub.start()
        try:
            await sub.wait_for(last)
            assert sub.position == last_submission  # the checkpoint: the last it applied
            assert await sub.sync_state()
            assert sub.lag_hint() == 0
            await evlog.append([withdrawn("W-live", f"live-{proj.name}-{proj.server_filters}")])
            await sub.wait_for(last + 1)
            assert sub.lag_hint() == 0
            assert sub.position == last_submission
        finally:
            await sub.stop()
        digests.append(store.digest(proj))
        last += 1
    assert digests[0] == digests[1]


class HeldTitles(TitlesPerPost):
    """Records each batch's size; the batch ``hold_at`` (0-based) waits for ``release``."""

    name = "held"

    def __init__(self, hold_at: int) -> None:
        self.hold_at = hold_at
        self.release = threading.Event()
        self.batches: list[int] = []
        super().__init__()

    def begin(self, conn: Connection) -> None:
        self.batches.append(0)
        if len(self.batches) == self.hold_at + 1:
            self.release.wait(30)

    def apply(self, conn: Connection, event: RecordedEvent) -> None:
        self.batches[-1] += 1
        super().apply(conn, event)


async def test_a_caught_up_projection_applies_what_arrived_meanwhile_in_one_batch(
    evlog: EventLog, tmp_path: Path
) -> None:
    """Events appended one by one while a caught-up projection applies a batch (each the log's
    last when the server sent it) are one transaction after it, not one each; the rows are the
    rebuild's."""
    await fill(evlog, 10)
    store = ProjectionStore(make_engine(f"sqlite:///{tmp_path / 'held.db'}"))
    proj = HeldTitles(hold_at=1)
    sub = CatchUpSubscription(evlog, store, proj, batch=100)
    await sub.start()
    try:
        await sub.wait_for(10)
        assert proj.batches == [10]
        await evlog.append([submitted("L0", "live0", "l0")])  # the batch that is held
        await wait_until(lambda: len(proj.batches) == 2, 10, "the held batch begun")
        for i in range(1, 21):
            await evlog.append([submitted(f"L{i % 3}", f"live{i}", f"l{i}")])
        follower = sub._holder[0]
        await wait_until(lambda: follower.sub.pending_msgs >= 20, 10, "20 events arrived")
        assert follower.arrived()
        proj.release.set()
        await sub.wait_for(31)
        assert proj.batches == [10, 1, 20]
        assert not follower.arrived()
    finally:
        proj.release.set()
        await sub.stop()
    assert store.digest(proj) == await rebuild_digest(evlog, tmp_path, "held-rebuild.db")


async def test_acknowledged_appends_survive_a_server_stop(tmp_path: Path) -> None:
    """Graceful stop with appends in flight: everything acknowledged is there after restart."""
    srv = NatsServer(store_dir=tmp_path / "nats", sync_always=True).start()
    evlog = await EventLog.connect(srv.url, allow_reconnect=False)
    await evlog.ensure_stream()
    acked: list[int] = []

    async def writer() -> None:
        i = 0
        while True:
            try:
                r = await evlog.append([submitted(f"W{i % 7}", f"w{i}")])
            except Exception:
                return
            acked.append(r.last)
            i += 1

    task = asyncio.create_task(writer())
    await wait_until(lambda: len(acked) >= 200, 30, "200 acknowledged appends", every=0.005)
    await asyncio.to_thread(srv.stop)  # SIGTERM while appends are in flight
    await asyncio.wait_for(task, 10)
    await evlog.nc.close()
    srv2 = NatsServer(store_dir=tmp_path / "nats", port=srv.port, sync_always=True).start()
    try:
        evlog2 = await EventLog.connect(srv2.url)
        last = await evlog2.last_sequence()
        assert last >= max(acked)
        seqs = [e.seq async for e in evlog2.replay()]
        assert set(acked) <= set(seqs)
        assert seqs == list(range(1, last + 1))  # contiguous, nothing doubled
        await evlog2.close()
    finally:
        srv2.stop()
