"""``raw_replay(follow=True)``: a far-behind reader holds a bounded number of messages, a
caught-up one gets each new event at once, and a lost server ends the read with an error.
A one-shot read (no ``follow``) is bounded the same way and ends where the log ended."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import nats.js.errors
import pytest
from nats.aio.msg import Msg

from gongkai import eventlog
from gongkai.eventlog import EventLog, EventLogError, StreamSettings, ack_position
from gongkai.natsserver import NatsServer
from tests.integration.test_projection_consumers import fill, submitted
from tests.waiting import wait_until


def consumer_gone(follower: eventlog._PullFollower) -> Callable[[], Awaitable[bool]]:
    """Whether the server has dropped ``follower``'s consumer (asked again until it has)."""

    async def gone() -> bool:
        try:
            await follower.consumer_info()
        except nats.js.errors.NotFoundError:
            return True
        return False

    return gone


async def caught_up_reader(
    evlog: EventLog,
) -> tuple[AsyncIterator[Msg], eventlog._PullFollower]:
    """A following reader that has read a log of ten events, and its consumer."""
    await fill(evlog, 10)
    holder: list[eventlog._PullFollower] = []
    reader = evlog.raw_replay(follow=True, subscription_out=holder)
    for _ in range(10):
        await anext(reader)
    return reader, holder[0]


async def ends_with_an_error(evlog: EventLog, reader: AsyncIterator[Msg]) -> None:
    """Events come later, and the read ends with an error instead of waiting for good: its
    caller starts again from its checkpoint."""
    await fill(evlog, 5, tag="later")
    with pytest.raises(EventLogError, match="follow"):
        await asyncio.wait_for(anext(reader), 10)
    await reader.aclose()  # type: ignore[attr-defined]


async def test_a_long_backlog_is_read_in_bounded_batches_then_new_events_follow(
    evlog: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(eventlog, "FOLLOW_BATCH", 200)
    await fill(evlog, 5000)
    holder: list[eventlog._PullFollower] = []
    seqs: list[int] = []
    most_held = 0
    reader = evlog.raw_replay(from_seq=1, follow=True, subscription_out=holder)
    async for msg in reader:
        seqs.append(ack_position(msg)[0])
        # A slow reader: a push consumer would have the whole backlog in memory by now.
        most_held = max(most_held, holder[0].sub.pending_msgs)
        if len(seqs) % 100 == 0:
            await asyncio.sleep(0.005)  # the scenario: a slow reader, not a wait
        if len(seqs) == 5000:
            break
    assert seqs == list(range(1, 5001))
    # Two requests of 200 at most, plus a heartbeat or a request's end.
    assert most_held <= 2 * 200 + 2, most_held

    async def next_seq() -> int:
        return ack_position(await anext(reader))[0]

    info = await holder[0].consumer_info()
    assert info.num_pending == 0
    # Caught up: a new event arrives through the open request, not after it expires.
    t0 = time.monotonic()
    await evlog.append([submitted("P-new", "new-1")])  # type: ignore[list-item]
    assert await asyncio.wait_for(next_seq(), 5) == 5001
    assert time.monotonic() - t0 < 2
    await reader.aclose()


async def test_a_filtered_reader_starts_where_asked(evlog: EventLog) -> None:
    await fill(evlog, 300, posts=3)
    got = []
    async for msg in evlog.raw_replay(
        from_seq=100, filter_subject="gk.ev.post.P1.>", follow=True
    ):
        got.append(ack_position(msg)[0])
        if ack_position(msg)[2] == 0:
            break
    assert got == [s for s in range(100, 301) if (s - 1) % 3 == 1]


async def test_a_restarted_server_ends_the_read_with_an_error() -> None:
    with tempfile.TemporaryDirectory(prefix="gongkai-test-nats-") as d:
        srv = NatsServer(store_dir=Path(d), sync_always=False).start()
        log = await EventLog.connect(srv.url, max_reconnect_attempts=-1, reconnect_time_wait=0.1)
        try:
            await log.ensure_stream(StreamSettings(duplicate_window_s=120))
            await fill(log, 10)
            reader = log.raw_replay(follow=True)
            for _ in range(10):
                await anext(reader)
            srv.kill()
            srv.start()
            t0 = time.monotonic()
            # The consumer was in the old server's memory: its heartbeats stop, the reader
            # says so instead of waiting forever, and its caller starts again.
            with pytest.raises(EventLogError, match="follow"):
                await asyncio.wait_for(anext(reader), 30)
            assert time.monotonic() - t0 < 15
            await reader.aclose()
        finally:
            await log.close()
            srv.stop()


async def test_a_reader_paused_past_the_idle_threshold_finds_its_consumer_gone(
    evlog: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Scaled down: requests expire after 1 s, an idle consumer goes 1 s later.
    monkeypatch.setattr(eventlog, "FOLLOW_EXPIRES_S", 1.0)
    monkeypatch.setattr(eventlog, "FOLLOW_HEARTBEAT_S", 0.2)
    monkeypatch.setattr(eventlog, "FOLLOW_CONSUMER_IDLE_S", 1.0)
    reader, follower = await caught_up_reader(evlog)
    # The reader is busy elsewhere (its database is down, say) until the server has dropped
    # its idle consumer.
    await wait_until(consumer_gone(follower), 15, "the idle consumer is dropped", every=0.1)
    # Not a hang: the reader says its consumer is gone.
    await ends_with_an_error(evlog, reader)


async def test_a_reader_whose_event_loop_was_held_up_goes_on(
    evlog: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(eventlog, "FOLLOW_HEARTBEAT_S", 0.2)
    await fill(evlog, 10)
    # A filtered reader with nothing to receive hears only the server's heartbeats.
    reader = evlog.raw_replay(follow=True, filter_subject="gk.ev.post.P-late.*")
    pending = asyncio.ensure_future(anext(reader))
    await asyncio.sleep(0.5)  # the scenario: the reader is waiting, heartbeats arrive
    assert not pending.done()
    time.sleep(2.5)  # the whole event loop held up (a long fold), past three heartbeats
    await asyncio.sleep(0.5)  # the scenario: the silence is noticed, the server asked
    assert not pending.done()  # the consumer is alive: the reader waits on, no error
    await evlog.append([submitted("P-late", "late-1")])  # type: ignore[list-item]
    msg = await asyncio.wait_for(pending, 5)
    assert msg.subject.startswith("gk.ev.post.P-late.")
    await reader.aclose()


async def test_a_one_shot_read_is_bounded_ends_where_it_began_and_outlives_an_idle_consumer(
    evlog: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Scaled down: requests of 200, a consumer with no request open goes after 1 s.
    monkeypatch.setattr(eventlog, "FOLLOW_BATCH", 200)
    monkeypatch.setattr(eventlog, "READ_PULL_IDLE_S", 1.0)
    await fill(evlog, 3000)
    holder: list[eventlog._PullFollower] = []
    seqs: list[int] = []
    most_held = 0
    async for msg in evlog.raw_replay(subscription_out=holder):
        seqs.append(ack_position(msg)[0])
        # Held by the client: at most two requests' worth, however far behind the reader is.
        most_held = max(most_held, holder[-1].sub.pending_msgs)
        if len(seqs) == 1:
            # Appended after the read began: not part of it (it ends where the log ended).
            await fill(evlog, 5, tag="later")
        if len(seqs) == 1000:
            # The reader stops (a long fold, say) until the server dropped its consumer,
            # which had sent everything asked for and had no request open.
            await wait_until(
                consumer_gone(holder[0]), 15, "the idle consumer is dropped", every=0.1
            )
    assert seqs == list(range(1, 3001))
    assert len(holder) == 2, "the read went on through a new consumer"
    assert most_held <= 2 * 200 + 2, most_held
    # An empty selection ends at once, without a message.
    assert [m async for m in evlog.raw_replay(from_seq=3006)] == []


async def test_a_read_whose_messages_stop_arriving_ends_with_an_error(
    evlog: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The failover test, 3 December: after the stream leader was killed, review's queue
    # waited on while every service said ready. Here the reader's inbox stops receiving
    # (its subscription gone from the server) while its consumer lives on.
    monkeypatch.setattr(eventlog, "FOLLOW_HEARTBEAT_S", 0.2)
    reader, follower = await caught_up_reader(evlog)
    await follower.sub.unsubscribe()
    await ends_with_an_error(evlog, reader)


async def test_a_one_shot_read_whose_messages_stop_arriving_ends_with_an_error(
    evlog: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same for a read to the end of the log (``_pulled``): it asked again for good.
    monkeypatch.setattr(eventlog, "FOLLOW_HEARTBEAT_S", 0.2)
    monkeypatch.setattr(eventlog, "FOLLOW_BATCH", 2)
    await fill(evlog, 20)
    holder: list[eventlog._PullFollower] = []
    reader = evlog.raw_replay(subscription_out=holder)
    await anext(reader)
    await holder[0].sub.unsubscribe()
    with pytest.raises(EventLogError, match="read"):
        async with asyncio.timeout(10):
            async for _ in reader:
                pass
    await reader.aclose()  # type: ignore[attr-defined]
