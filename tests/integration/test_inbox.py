"""The connection's reply inbox (``gongkai.inbox``) against a real nats-server: waiters at once
each get their own answers through one subscription, an unanswered one times out and one
cancelled leaves nothing, an answer nobody waits for is dropped, a close ends every waiter at
once, thousands of tokens in flight, and the inbox kept across a reconnect."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import nats
import nats.errors
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError

from gongkai.inbox import INBOXES, Inbox, Stream, inbox_of
from gongkai.natsserver import NatsServer
from tests.waiting import wait_until

#: How many answers the "count" service sends before its last, which says END.
END = "End"
#: How long a test waits for an answer that must come: only a bound on a failure, so generous.
#: At 5 s one of the 72 waiters at once in the first test timed out in a full `make test`
#: (three workers and their platforms on two cores), and never in 30 runs alone or loaded.
ANSWER_WITHIN = 30.0


async def _responder(url: str) -> NATS:
    """A service on a connection of its own: ``svc.echo`` answers with the request's bytes,
    ``svc.count`` with as many messages as the request says and then one marked END,
    ``svc.silent`` never answers, and ``svc.hold`` keeps each reply subject for the test."""
    nc = await nats.connect(url)

    async def echo(msg: Msg) -> None:
        await nc.publish(msg.reply, msg.data)

    async def count(msg: Msg) -> None:
        for i in range(int(msg.data)):
            await nc.publish(msg.reply, f"{i}".encode())
        await nc.publish(msg.reply, b"", headers={END: "1"})

    async def silent(msg: Msg) -> None:
        return None

    await nc.subscribe("svc.echo", cb=echo)
    await nc.subscribe("svc.count", cb=count)
    await nc.subscribe("svc.silent", cb=silent)
    await nc.flush()
    return nc


async def _answered(nc: NATS) -> None:
    """Until the responder answers ``nc``: its subscriptions were flushed to the server, and
    still a loaded machine's server has answered ``nc``'s first request with a 503 "no
    responders" status (seen in one `make test` and one loop of 26 loaded runs of this file)."""

    async def answered() -> bool:
        try:
            await nc.request("svc.echo", b"ready?", timeout=1)
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            return False
        return True

    await wait_until(answered, ANSWER_WITHIN, "the responder answers the client")


@contextlib.asynccontextmanager
async def _connected(url: str) -> AsyncIterator[tuple[NATS, NATS]]:
    nc = await nats.connect(url)
    responder = await _responder(url)
    await _answered(nc)
    try:
        yield nc, responder
    finally:
        for c in (nc, responder):
            await c.close()


def _sending(nc: NATS, subject: str, data: bytes) -> Callable[[str], Awaitable[None]]:
    def send(reply: str) -> Awaitable[None]:
        return nc.publish(subject, data, reply=reply)

    return send


async def _read_all(nc: NATS, stream: Stream, n: int) -> list[bytes]:
    """What the count service answers to one request for ``n``, up to its END."""
    await nc.publish("svc.count", str(n).encode(), reply=stream.reply)
    got: list[bytes] = []
    while True:
        msg = stream.take() or await stream.next(ANSWER_WITHIN)
        if msg.headers and msg.headers.get(END):
            return got
        got.append(msg.data)


def _hand_off_pending_bytes(nc: NATS, inbox: Inbox) -> int:
    # What nats-py counts against the subscription's slow-consumer limit (its private map of
    # subscriptions: the hand-off is the one place that reaches into nats-py, and this checks it).
    [sub] = [s for s in nc._subs.values() if s.subject == f"{inbox.prefix}.*"]
    return sub.pending_bytes


async def test_waiters_at_once_each_get_their_own_answers(nats_server: NatsServer) -> None:
    async with _connected(nats_server.url) as (nc, _):
        inbox = await inbox_of(nc)
        assert await inbox_of(nc) is inbox and INBOXES[nc] is inbox
        subscriptions = nc._sid  # nats-py's count of the subscriptions it has made

        async def one(i: int) -> bytes:
            msg = await inbox.request(_sending(nc, "svc.echo", f"r{i}".encode()), ANSWER_WITHIN)
            return msg.data

        async def many(n: int) -> list[bytes]:
            with inbox.stream() as stream:
                return await _read_all(nc, stream, n)

        ones, streams = await asyncio.gather(
            asyncio.gather(*(one(i) for i in range(60))),
            asyncio.gather(*(many(1 + i * 7) for i in range(12))),
        )
        assert ones == [f"r{i}".encode() for i in range(60)]
        assert streams == [[f"{k}".encode() for k in range(1 + i * 7)] for i in range(12)]
        assert nc._sid == subscriptions  # none per waiter
        assert inbox.waiting == {}
        assert _hand_off_pending_bytes(nc, inbox) == 0


async def test_an_unanswered_waiter_times_out_and_a_cancelled_one_leaves_nothing(
    nats_server: NatsServer,
) -> None:
    async with _connected(nats_server.url) as (nc, _):
        inbox = await inbox_of(nc)
        with pytest.raises(nats.errors.TimeoutError):
            await inbox.request(_sending(nc, "svc.silent", b""), 0.2)
        with inbox.stream() as stream:
            await nc.publish("svc.silent", b"", reply=stream.reply)
            with pytest.raises(nats.errors.TimeoutError):
                await stream.next(0.2)
        assert inbox.waiting == {}

        # Of many in flight, the answered are answered and the missing time out, forgotten.
        acks = [inbox.expect() for _ in range(6)]
        for i, (token, _) in enumerate(acks):
            subject = "svc.echo" if i % 2 == 0 else "svc.silent"
            await nc.publish(subject, f"{i}".encode(), reply=inbox.reply_to(token))
        answers = await inbox.gather(acks, 0.3)
        assert [a.data if isinstance(a, Msg) else type(a) for a in answers] == [
            b"0", nats.errors.TimeoutError, b"2", nats.errors.TimeoutError,
            b"4", nats.errors.TimeoutError,
        ]
        assert inbox.waiting == {}

        waiting = asyncio.ensure_future(inbox.request(_sending(nc, "svc.silent", b""), 60))

        async def read() -> list[bytes]:
            with inbox.stream() as stream:
                await nc.publish("svc.silent", b"", reply=stream.reply)
                await stream.next(60)
            return []

        reading = asyncio.ensure_future(read())
        await wait_until(lambda: len(inbox.waiting) == 2, 5, "both wait for their answers")
        for task in (waiting, reading):
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert inbox.waiting == {}


async def test_an_answer_nobody_waits_for_is_dropped(nats_server: NatsServer) -> None:
    async with _connected(nats_server.url) as (nc, responder):
        inbox = await inbox_of(nc)
        held: list[str] = []

        async def hold(msg: Msg) -> None:
            held.append(msg.reply)

        await responder.subscribe("svc.hold", cb=hold)
        await responder.flush()
        with pytest.raises(nats.errors.TimeoutError):
            await inbox.request(_sending(nc, "svc.hold", b""), 0.2)
        assert len(held) == 1 and inbox.waiting == {}
        with inbox.stream() as stream:
            # A late answer to the request that gave up, and one to a token never given: both
            # reach the inbox before the stream's own (one publisher, so the server keeps the
            # order), and neither reaches any waiter.
            await responder.publish(held[0], b"late")
            await responder.publish(f"{inbox.prefix}.no-such-token", b"stray")
            await responder.publish(f"{inbox.prefix}.999999", b"stray")
            assert await _read_all(nc, stream, 2) == [b"0", b"1"]
        again = await inbox.request(_sending(nc, "svc.echo", b"mine"), ANSWER_WITHIN)
        assert again.data == b"mine"
        assert inbox.waiting == {}
        assert _hand_off_pending_bytes(nc, inbox) == 0


async def test_a_closed_connection_ends_every_waiter_at_once(nats_server: NatsServer) -> None:
    async with _connected(nats_server.url) as (nc, _):
        inbox = await inbox_of(nc)
        waiting = asyncio.ensure_future(inbox.request(_sending(nc, "svc.silent", b""), 60))
        token, expected = inbox.expect()
        await nc.publish("svc.silent", b"", reply=inbox.reply_to(token))

        async def read() -> list[bytes]:
            with inbox.stream() as stream:
                await nc.publish("svc.count", b"3", reply=stream.reply)
                got = [(await stream.next(60)).data for _ in range(4)]
                await stream.next(60)  # nothing more comes; the close ends the wait
                return got

        reading = asyncio.ensure_future(read())
        await wait_until(lambda: len(inbox.waiting) == 3, 5, "three wait for their answers")
        await nc.close()
        for fut in (waiting, expected, reading):
            with pytest.raises(ConnectionClosedError):
                await asyncio.wait_for(fut, 5)  # not the waiters' 60 s
        assert inbox.ended
        with pytest.raises(ConnectionClosedError):
            await inbox_of(nc)
        with pytest.raises(ConnectionClosedError):
            inbox.expect()


async def test_thousands_of_tokens_in_flight(nats_server: NatsServer) -> None:
    async with _connected(nats_server.url) as (nc, _):
        inbox = await inbox_of(nc)
        acks = [inbox.expect() for _ in range(5000)]
        for i, (token, _) in enumerate(acks):
            await nc.publish("svc.echo", f"{i}".encode(), reply=inbox.reply_to(token))
        answers = await inbox.gather(acks, 30)
        assert [a.data for a in answers if isinstance(a, Msg)] == [
            f"{i}".encode() for i in range(5000)
        ]
        assert len({token for token, _ in acks}) == 5000
        assert inbox.waiting == {}
        assert _hand_off_pending_bytes(nc, inbox) == 0


async def test_the_inbox_is_kept_across_a_reconnect(nats_server: NatsServer) -> None:
    nc = await nats.connect(
        nats_server.url, reconnect_time_wait=0.05, max_reconnect_attempts=-1
    )
    try:
        responder = await _responder(nats_server.url)
        await _answered(nc)
        inbox = await inbox_of(nc)
        before = await inbox.request(_sending(nc, "svc.echo", b"before"), ANSWER_WITHIN)
        assert before.data == b"before"
        await responder.close()
        nats_server.stop()
        await wait_until(lambda: not nc.is_connected, 5, "the client sees the server gone")
        nats_server.start()
        await wait_until(lambda: nc.is_connected, 10, "the client reconnects")
        responder = await _responder(nats_server.url)
        try:
            await nc.flush()  # the subscriptions nats-py sent again are in place
            await _answered(nc)
            assert await inbox_of(nc) is inbox and not inbox.ended
            answer = await inbox.request(_sending(nc, "svc.echo", b"after"), ANSWER_WITHIN)
            assert answer.data == b"after"
        finally:
            await responder.close()
    finally:
        await nc.close()
