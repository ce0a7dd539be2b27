"""One reply inbox per NATS connection: every answer the process waits for comes through it.

A JetStream PubAck and a direct get's batch are both answers to a message published with a
reply subject. Waiting for them through nats-py costs per request what a busy writer or reader
feels: ``nc.request`` makes an inbox token from a NUID and random bytes, a future and
``wait_for``'s own waiter; a subscription per read costs the server a SUB and an UNSUB; and
every subscription's messages reach their reader one turn of the event loop late, through a
queue and a task of the subscription's own (a wake-up and a queue round trip each, 20-40 us of
a lone append's CPU, bench/profiles/README.md).

Here each connection has one wildcard subscription, ``<inbox>.*``, made once. A request takes a
token of its own (a counter) and publishes with ``<inbox>.<token>`` as its reply subject; the
answer is handed to its waiter by nats-py's reader as it takes the message off the socket:

- ``Inbox.request`` waits for **one** answer (``expect`` and ``gather`` for many in flight);
- ``Inbox.stream`` receives **every** answer to its token, in order, until its reader says the
  stream has ended (a direct get's end-of-batch status) and leaves.

The rules, the same for both kinds:

- an answer to a token nobody waits for (a request that gave up, a stray publish) is dropped;
- a waiter that hears nothing within its timeout raises ``nats.errors.TimeoutError``, and one
  whose task is cancelled leaves nothing behind;
- when the connection closes, every waiter raises ``ConnectionClosedError`` at once instead of
  waiting out its timeout; so does a request made on it afterwards;
- across a reconnect nats-py subscribes again with the same subject, so the inbox stays; an
  answer lost while the connection was down ends its waiter by the timeout.
"""

from __future__ import annotations

import asyncio
import itertools
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import ConnectionClosedError


def _expire(fut: asyncio.Future[Any]) -> None:
    # As nc.request says it: callers (consumers' outage handling, the HTTP problem mapping)
    # know nats.errors.TimeoutError.
    if not fut.done():
        fut.set_exception(nats.errors.TimeoutError())


class Stream:
    """The answers to one token, in the order the server sent them."""

    __slots__ = ("_closed", "_msgs", "_wake", "reply")

    def __init__(self, reply: str) -> None:
        #: The reply subject to publish requests with.
        self.reply = reply
        self._msgs: deque[Msg] = deque()
        self._wake: asyncio.Future[None] | None = None
        self._closed = False

    def take(self) -> Msg | None:
        """The next answer already here, or None: no wait, no coroutine."""
        return self._msgs.popleft() if self._msgs else None

    async def next(self, within: float) -> Msg:
        """The next answer; ``nats.errors.TimeoutError`` after ``within`` seconds without one,
        ``ConnectionClosedError`` once the connection has closed and nothing is left."""
        if not self._msgs and not self._closed:
            loop = asyncio.get_running_loop()
            wake: asyncio.Future[None] = loop.create_future()
            self._wake = wake
            timer = loop.call_later(within, _expire, wake)
            try:
                await wake
            finally:
                timer.cancel()
                self._wake = None
        if self._msgs:
            return self._msgs.popleft()
        raise ConnectionClosedError

    def _put(self, msg: Msg) -> None:
        self._msgs.append(msg)
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def _close(self) -> None:
        self._closed = True
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)


#: What waits on a token: one answer's future, or a stream of answers.
Waiter = asyncio.Future[Msg] | Stream


class Inbox:
    """The connection's reply inbox; ``inbox_of`` gives it."""

    def __init__(self, nc: NATS) -> None:
        # No reference to the connection: INBOXES holds the inbox by the connection weakly.
        self.prefix = nc.new_inbox()
        #: Every token waited on, and its waiter (empty when nothing waits).
        self.waiting: dict[str, Waiter] = {}
        #: True once the subscription has ended (the connection closed).
        self.ended = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tokens = itertools.count(1)
        self._cut = len(self.prefix) + 1
        self._loop = asyncio.get_running_loop()

    async def _start(self, nc: NATS) -> None:
        try:
            sub = await nc.subscribe(f"{self.prefix}.*")
            _hand_off(sub, self)
        except BaseException as exc:
            self.ready.set_exception(exc)
            self.ready.exception()  # seen here: a request that waits on it raises it again
            raise
        self.ready.set_result(None)

    def reply_to(self, token: str) -> str:
        """The reply subject of ``token``."""
        return f"{self.prefix}.{token}"

    def expect(self) -> tuple[str, asyncio.Future[Msg]]:
        """A new token and the future its one answer resolves, for a caller with many requests
        in flight (``gather`` waits for them and times them out together)."""
        if self.ended:
            raise ConnectionClosedError
        token = f"{next(self._tokens)}"
        fut: asyncio.Future[Msg] = self._loop.create_future()
        self.waiting[token] = fut
        return token, fut

    async def gather(
        self, expected: Sequence[tuple[str, asyncio.Future[Msg]]], within: float
    ) -> list[Msg | BaseException]:
        """The answers of tokens from ``expect``, in their order, once all are here or after
        ``within`` seconds: for each its message, or the exception that ended its wait
        (``nats.errors.TimeoutError`` for one still missing, whose token is forgotten)."""
        if expected:
            await asyncio.wait([fut for _, fut in expected], timeout=within)
        out: list[Msg | BaseException] = []
        for token, fut in expected:
            if not fut.done():
                self.waiting.pop(token, None)
                fut.cancel()
                out.append(nats.errors.TimeoutError())
                continue
            exc = fut.exception()
            out.append(fut.result() if exc is None else exc)
        return out

    async def request(self, send: Callable[[str], Awaitable[None]], within: float) -> Msg:
        """The one answer to what ``send(reply_subject)`` publishes; ``nats.errors.TimeoutError``
        after ``within`` seconds without it."""
        token, fut = self.expect()
        timer = self._loop.call_later(within, _expire, fut)
        try:
            await send(f"{self.prefix}.{token}")
            return await fut
        finally:
            timer.cancel()
            self.waiting.pop(token, None)

    @contextmanager
    def stream(self) -> Iterator[Stream]:
        """A token whose every answer is kept for its reader until the block is left."""
        if self.ended:
            raise ConnectionClosedError
        token = f"{next(self._tokens)}"
        answers = self.waiting[token] = Stream(f"{self.prefix}.{token}")
        try:
            yield answers
        finally:
            self.waiting.pop(token, None)

    def _deliver(self, msg: Msg) -> None:
        # Called from nats-py's reader: must not raise.
        token = msg.subject[self._cut :]
        waiter = self.waiting.get(token)
        if waiter is None:
            return  # an answer nobody waits for any more
        if isinstance(waiter, Stream):
            waiter._put(msg)
            return
        del self.waiting[token]
        if not waiter.done():
            waiter.set_result(msg)

    def _end(self) -> None:
        # Called by nats-py when the subscription ends (the connection closed): nothing more
        # can answer, so nobody waits out a timeout.
        self.ended = True
        for waiter in self.waiting.values():
            if isinstance(waiter, Stream):
                waiter._close()
            elif not waiter.done():
                waiter.set_exception(ConnectionClosedError())


class _HandOff(asyncio.Queue[Msg]):
    """The one place that leans on nats-py's internals (2.16, pinned in requirements.lock).

    nats-py's reader puts each message of a subscription made without a callback into the
    subscription's ``_pending_queue`` (``put_nowait``), and when the subscription ends (the
    connection closes, or drains) it calls ``_message_iterator._cancel()``. This object takes
    both places: each answer goes to its waiter as the reader puts it, and the end reaches
    every waiter at once. Nothing is ever queued in it (so nats-py's ``join`` on drain does not
    wait); ``_hand_off`` refuses to start if those attributes are no longer there.
    """

    def __init__(self, sub: Subscription, inbox: Inbox) -> None:
        super().__init__()
        self._sub = sub
        self._inbox = inbox

    def put_nowait(self, item: Msg) -> None:
        # nats-py counted the message as pending for its slow-consumer limit; it is not.
        self._sub._pending_size -= len(item.data)
        self._inbox._deliver(item)

    def _cancel(self) -> None:
        self._inbox._end()


def _hand_off(sub: Subscription, inbox: Inbox) -> None:
    if not (
        isinstance(getattr(sub, "_pending_queue", None), asyncio.Queue)
        and hasattr(getattr(sub, "_message_iterator", None), "_cancel")
        and isinstance(getattr(sub, "_pending_size", None), int)
    ):
        raise RuntimeError(
            "nats-py's Subscription no longer has _pending_queue, _message_iterator._cancel "
            "and _pending_size (gongkai.inbox relies on nats-py 2.16's): check the new "
            "version's reader and subscription before using it"
        )
    hand_off = _HandOff(sub, inbox)
    sub._pending_queue = hand_off
    sub._message_iterator = hand_off  # type: ignore[assignment]


#: Each open connection's inbox.
INBOXES: weakref.WeakKeyDictionary[NATS, Inbox] = weakref.WeakKeyDictionary()


async def inbox_of(nc: NATS) -> Inbox:
    """The connection's inbox, subscribed on first use (``ConnectionClosedError`` once the
    connection has closed)."""
    inbox = INBOXES.get(nc)
    if inbox is not None and not inbox.ended:
        if not inbox.ready.done():
            await inbox.ready
            return inbox
        if inbox.ready.exception() is None:
            return inbox
    if nc.is_closed:
        raise ConnectionClosedError
    inbox = INBOXES[nc] = Inbox(nc)
    await inbox._start(nc)
    return inbox


__all__ = ["INBOXES", "Inbox", "Stream", "Waiter", "inbox_of"]
