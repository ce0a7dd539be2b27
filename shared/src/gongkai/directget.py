"""A subject's stored messages in one request each: JetStream's batched direct get (ADR-31).

An ordered consumer is the way to read a long run of the log, but for a handful of messages
(one aggregate's history, a post's chain of custody) it costs three round trips and a consumer
the server creates, feeds with flow control and deletes again. A direct get asks the stream
itself: ``$JS.API.DIRECT.GET.<stream>`` with ``{"seq", "next_by_subj", "batch"}`` answers with
up to ``batch`` messages matching the filter from ``seq`` on, then an end-of-batch status (204)
saying how many more match; nothing matching is a 404. Each message carries its stored headers
plus ``Nats-Subject``, ``Nats-Sequence`` and ``Nats-Time-Stamp``.

What a read costs nats-server (2.15): a request from the stream's first sequence jumps to the
first match through the stream's per-subject index, but every later match, from any other
sequence, is found by walking the stored messages one by one (the log has nearly as many subjects
as messages, and the server then judges a walk cheaper than its per-block subject index), and a
request for more messages than match walks on to the end of the stream before it ends. An
aggregate recorded early (a unit's policy, a person) read in full, or from after its last event,
cost a walk over the whole newest block (8 MB) every time: 1.7-2.6 ms of server CPU at 10,000
events, against 0.15 ms for a read that stops at its last match (bench/profiles/README.md, "What
nats-server spends per post"). So ``read_subject`` asks for one message first, whose answer says
how many more match, then for no more than that; ``last_stored`` finds the last match through the
index, without a walk (``EventLog.load`` asks it whether a held history has grown).

It needs ``allow_direct`` on the stream (the log's settings set it) and nats-server 2.11 or
later; nats-py has no call for the batched form, so the request is made here. The answers
come through the connection's reply inbox (``gongkai.inbox``), which the appends' PubAcks
share: each read waits on a token of its own, no read subscribes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from gongkai.inbox import INBOXES, Stream, inbox_of
from gongkai.logtypes import EventLogError

#: Messages asked for per request; a longer history is read in several.
BATCH = 512
#: Seconds without an answer before the read gives up (the server answers at once or not at all).
#: A read waiting when the connection closes raises ``ConnectionClosedError`` at once.
TIMEOUT_S = 5.0


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


#: Each connection's reply inbox (``gongkai.inbox``), under the name the tests look it up by.
_REPLIES = INBOXES


async def read_subject(
    nc: NATS, stream: str, filter_subject: str, *, from_seq: int = 1, batch: int = BATCH
) -> AsyncIterator[StoredMsg]:
    """Every message of ``stream`` matching ``filter_subject`` from ``from_seq`` on, in stream
    order: one request per ``batch`` of them. Messages stored while the read goes on may or
    may not be among them (a request sees the stream as it stands when the server answers)."""
    replies = await inbox_of(nc)
    api = f"$JS.API.DIRECT.GET.{stream}"
    with replies.stream() as answers:
        seq = max(1, from_seq)
        # One message first: its batch's end says how many more match, and every later request
        # asks for no more than that, so the server never walks past the last match (above).
        n = 1
        while True:
            req = {"seq": seq, "next_by_subj": filter_subject, "batch": n}
            await nc.publish(api, json.dumps(req).encode(), reply=answers.reply)
            more = 0
            while True:
                msg = await _answer(answers, stream, filter_subject)
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
            n = min(more, batch)


async def last_stored(nc: NATS, stream: str, filter_subject: str) -> StoredMsg | None:
    """The last message of ``stream`` matching ``filter_subject``, or None if none does.

    Found through the stream's per-subject index, without walking the stored messages: for a
    filter that names one aggregate (its subjects share every token but the last) it costs the
    server what a read that stops at its last match costs, however long the stream. A filter
    matching many subjects makes the server visit each of them.
    """
    replies = await inbox_of(nc)
    req = json.dumps({"last_by_subj": filter_subject}).encode()
    with replies.stream() as answers:
        await nc.publish(f"$JS.API.DIRECT.GET.{stream}", req, reply=answers.reply)
        msg = await _answer(answers, stream, filter_subject)
    hdr = msg.headers or {}
    status = hdr.get("Status")
    if status == "404":
        return None
    if status is not None:
        raise DirectGetError(
            f"{stream} refused a direct get of the last {filter_subject}: {status} "
            f"{hdr.get('Description', '')}"
        )
    return StoredMsg(
        hdr["Nats-Subject"],
        msg.data,
        hdr,
        int(hdr["Nats-Sequence"]),
        stored_ns(hdr["Nats-Time-Stamp"]),
    )


async def _answer(answers: Stream, stream: str, filter_subject: str) -> Msg:
    """The next answer to a read, waited for up to ``TIMEOUT_S``."""
    msg = answers.take()
    if msg is not None:
        return msg
    try:
        return await answers.next(TIMEOUT_S)
    except nats.errors.TimeoutError:
        raise DirectGetError(
            f"no answer from {stream} for {filter_subject} in {TIMEOUT_S:.0f} s"
        ) from None


__all__ = ["BATCH", "DirectGetError", "StoredMsg", "last_stored", "read_subject", "stored_ns"]
