"""A subject's stored messages in one request each: JetStream's batched direct get (ADR-31).

An ordered consumer is the way to read a long run of the log, but for a handful of messages
(one aggregate's history, a post's chain of custody) it costs three round trips and a consumer
the server creates, feeds with flow control and deletes again. A direct get asks the stream
itself: ``$JS.API.DIRECT.GET.<stream>`` with ``{"seq", "next_by_subj", "batch"}`` answers with
up to ``batch`` messages matching the filter from ``seq`` on, then an end-of-batch status (204)
saying how many more match; nothing matching is a 404. Each message carries its stored headers
plus ``Nats-Subject``, ``Nats-Sequence`` and ``Nats-Time-Stamp``.

It needs ``allow_direct`` on the stream (the log's settings set it) and nats-server 2.11 or
later; nats-py has no call for the batched form, so the request is made here.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import weakref
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError

from gongkai.logtypes import EventLogError

#: Messages asked for per request; a longer history is read in several.
BATCH = 512
#: Seconds without an answer before the read gives up (the server answers at once or not at all).
TIMEOUT_S = 5.0
#: How often a read waiting for its answer looks whether the connection was closed.
CLOSED_CHECK_S = 0.25


class DirectGetError(EventLogError):
    """The stream refused the read or did not answer (a user without the grant for
    ``$JS.API.DIRECT.GET.<stream>`` gets no answer at all)."""


@dataclass(frozen=True, slots=True)
class StoredMsg:
    """A message as the stream stores it: its subject, body and headers, where it sits."""

    subject: str
    data: bytes
    headers: Mapping[str, str]
    seq: int
    #: When the server stored it, nanoseconds since the epoch.
    stored_ns: int


def stored_ns(stamp: str) -> int:
    """``Nats-Time-Stamp`` (RFC 3339 in UTC with up to nine fractional digits) as nanoseconds;
    ``datetime.fromisoformat`` stops at microseconds."""
    whole, _, rest = stamp.rstrip("Z").partition(".")
    seconds = int(datetime.fromisoformat(whole + "+00:00").timestamp())
    return seconds * 1_000_000_000 + int((rest + "000000000")[:9] or 0)


class _Replies:
    """One subscription per connection that takes every direct get's answers, each read's on
    a subject of its own under it: a read made and dropped a subscription of its own (a SUB
    and an UNSUB for the server, a new inbox), and nats-py's ``next_msg`` made two tasks and a
    ``uuid4`` per message; review reads three or four histories per signature."""

    def __init__(self, nc: NATS) -> None:
        self.prefix = nc.new_inbox()
        self.waiting: dict[str, asyncio.Queue[Msg]] = {}
        self._tokens = itertools.count()
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def start(self, nc: NATS) -> None:
        try:
            await nc.subscribe(f"{self.prefix}.*", cb=self._deliver)
        except BaseException as exc:
            self.ready.set_exception(exc)
            self.ready.exception()  # seen here: a read that waits on it raises it again
            raise
        self.ready.set_result(None)

    async def _deliver(self, msg: Msg) -> None:
        queue = self.waiting.get(msg.subject[len(self.prefix) + 1 :])
        if queue is not None:  # else an answer to a read that gave up
            queue.put_nowait(msg)

    def open(self) -> tuple[str, asyncio.Queue[Msg]]:
        token = str(next(self._tokens))
        queue: asyncio.Queue[Msg] = asyncio.Queue()
        self.waiting[token] = queue
        return token, queue


_REPLIES: weakref.WeakKeyDictionary[NATS, _Replies] = weakref.WeakKeyDictionary()


async def _replies(nc: NATS) -> _Replies:
    replies = _REPLIES.get(nc)
    if replies is None or (replies.ready.done() and replies.ready.exception() is not None):
        replies = _REPLIES[nc] = _Replies(nc)
        await replies.start(nc)
    else:
        await replies.ready
    return replies


async def _next(nc: NATS, answers: asyncio.Queue[Msg]) -> Msg | None:
    """The read's next answer; None after ``TIMEOUT_S`` without one. A connection closed
    meanwhile raises at once, as nats-py's own wait for a message did: no read is left
    waiting out its timeout while a service stops."""
    deadline = asyncio.get_running_loop().time() + TIMEOUT_S
    while True:
        try:
            async with asyncio.timeout(CLOSED_CHECK_S):
                return await answers.get()
        except TimeoutError:
            if nc.is_closed:
                raise ConnectionClosedError from None
            if asyncio.get_running_loop().time() >= deadline:
                return None


async def read_subject(
    nc: NATS, stream: str, filter_subject: str, *, from_seq: int = 1, batch: int = BATCH
) -> AsyncIterator[StoredMsg]:
    """Every message of ``stream`` matching ``filter_subject`` from ``from_seq`` on, in stream
    order: one request per ``batch`` of them. Messages stored while the read goes on may or
    may not be among them (a request sees the stream as it stands when the server answers)."""
    replies = await _replies(nc)
    token, answers = replies.open()
    inbox = f"{replies.prefix}.{token}"
    api = f"$JS.API.DIRECT.GET.{stream}"
    try:
        seq = max(1, from_seq)
        while True:
            req = {"seq": seq, "next_by_subj": filter_subject, "batch": batch}
            await nc.publish(api, json.dumps(req).encode(), reply=inbox)
            more = 0
            while True:
                msg = answers.get_nowait() if answers.qsize() else await _next(nc, answers)
                if msg is None:
                    raise DirectGetError(
                        f"no answer from {stream} for {filter_subject} in {TIMEOUT_S:.0f} s"
                    )
                hdr = msg.headers or {}
                status = hdr.get("Status")
                if status == "204":  # end of this batch: how many more match
                    more = int(hdr.get("Nats-Num-Pending", "0"))
                    break
                if status == "404":
                    return  # nothing (more) matches
                if status is not None:
                    raise DirectGetError(
                        f"{stream} refused a direct get of {filter_subject}: {status} "
                        f"{hdr.get('Description', '')}"
                    )
                seq = int(hdr["Nats-Sequence"])
                yield StoredMsg(
                    hdr["Nats-Subject"], msg.data, hdr, seq, stored_ns(hdr["Nats-Time-Stamp"])
                )
            if more <= 0:
                return
            seq += 1
    finally:
        del replies.waiting[token]


__all__ = ["BATCH", "DirectGetError", "StoredMsg", "read_subject", "stored_ns"]
