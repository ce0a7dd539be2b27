"""Reading the log in a second process while this one folds it.

A rebuild of a large log spends about a third of its time in the NATS client (protocol parsing,
message objects, flow control) and the rest decoding and folding. Python runs one of those at a
time, so a full rebuild would use one core of two. ``prefetched`` moves the reading into a
helper process with its own connection: it replays the stream in order and ships the raw bytes
of the event types the caller wants, in batches through a pipe; this process decodes and folds.
Order is the stream's; the pipe's buffer is the only queue, so memory stays bounded and a slow
fold simply holds the reader back.

The caller sees exactly what an in-process ``raw_replay`` would give it: every message's
sequence, in order, the wanted ones with their bytes. Small logs are read in-process: starting
an interpreter costs more than it saves below some tens of thousands of events.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import multiprocessing
import os
import pickle
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from gongkai.eventlog import EventLog, EventLogError, ack_position

#: Below this many events in the log, read in-process.
PREFETCH_MIN_EVENTS = 50_000
#: Messages per batch through the pipe: large enough that pickling and the thread hop per
#: batch vanish, small enough that the first batch arrives at once.
BATCH = 2000


@dataclass(frozen=True, slots=True)
class Batch:
    """Messages ``seen`` so far in all, the sequence of the last one, and the wanted ones
    among them since the previous batch as (sequence, event type, bytes).

    With ``hashes``: ``leaves``, the RFC 9162 leaf hashes (sha256(0x00 || bytes)) of every
    message of the batch, wanted or not, packed in order (a reader checks them against signed
    checkpoints with one comparison per batch); ``headers``: (subject, headers) of the wanted
    events from sequence ``signed_from`` on, whose signatures are checked one at a time.
    """

    seen: int
    last_seq: int
    events: list[tuple[int, str, bytes]]
    leaves: bytes = b""
    headers: dict[int, tuple[str, dict[str, str]]] = field(default_factory=dict)


def _split(subject: str) -> str:
    return subject[subject.rfind(".") + 1 :]


async def _in_process(
    evlog: EventLog,
    types: Collection[str] | None,
    hashes: bool = False,
    signed_from: int | None = None,
) -> AsyncIterator[Batch]:
    seen = last = 0
    events: list[tuple[int, str, bytes]] = []
    leaves = bytearray()
    headers: dict[int, tuple[str, dict[str, str]]] = {}
    sha256 = hashlib.sha256
    async for msg in evlog.raw_replay():
        seen += 1
        last = ack_position(msg)[0]
        etype = _split(msg.subject)
        data = msg.data
        if hashes:
            leaves += sha256(b"\x00" + data).digest()
        if types is None or etype in types:
            events.append((last, etype, data))
            if signed_from is not None and last >= signed_from:
                headers[last] = (msg.subject, dict(msg.headers or {}))
        if seen % BATCH == 0:
            yield Batch(seen, last, events, bytes(leaves), headers)
            events, leaves, headers = [], bytearray(), {}
    if seen % BATCH or events:
        yield Batch(seen, last, events, bytes(leaves), headers)


@dataclass(frozen=True)
class _Reading:
    """What the reader process is to read: sent to it whole, so it must pickle."""

    url: str
    options: dict[str, Any]
    stream: str
    types: frozenset[str] | None
    hashes: bool = False
    signed_from: int | None = None


async def _read(conn: Connection, job: _Reading) -> None:
    # A reader that loses its connection fails the rebuild rather than retrying: the parent
    # reports it, and a rebuild is simply run again.
    evlog = await EventLog.connect(
        job.url, **{**job.options, "allow_reconnect": False, "max_reconnect_attempts": 1}
    )
    evlog.stream = job.stream
    try:
        async for batch in _in_process(evlog, job.types, job.hashes, job.signed_from):
            # Blocking on purpose: a full pipe means the fold is behind, and the reader
            # should wait rather than buffer. The ordered consumer's flow control then
            # holds the server back too.
            conn.send((batch.seen, batch.last_seq, batch.events, batch.leaves, batch.headers))
        conn.send(None)
    finally:
        await evlog.close()


def _reader_main(conn: Connection, job: _Reading) -> None:
    try:
        asyncio.run(_read(conn, job))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        with contextlib.suppress(Exception):
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _mode() -> str:
    return os.environ.get("GONGKAI_REPLAY_PREFETCH", "auto").strip().lower()


async def prefetched(
    evlog: EventLog,
    types: Collection[str] | None = None,
    *,
    total: int | None = None,
    hashes: bool = False,
    signed_from: int | None = None,
) -> AsyncIterator[Batch]:
    """Replay the whole log in order as batches, read by a helper process when that pays.

    ``types``: the event types whose bytes are wanted (None: all). ``total``: the log's size if
    the caller knows it. ``GONGKAI_REPLAY_PREFETCH=on|off|auto`` (default auto: a helper
    process from ``PREFETCH_MIN_EVENTS`` events up) overrides the choice. ``hashes`` and
    ``signed_from``: see ``Batch`` (the hashing then runs in the reader process too).
    """
    mode = _mode()
    if total is None:
        total = await evlog.last_sequence()
    wanted = frozenset(types) if types is not None else None
    use = mode == "on" or (mode == "auto" and total >= PREFETCH_MIN_EVENTS)
    args = evlog.connect_args
    if use and args is not None:
        try:
            pickle.dumps(args)
        except Exception:  # noqa: BLE001 - callbacks in the options: cannot hand them over
            args = None
    if not use or args is None:
        async for b in _in_process(evlog, wanted, hashes, signed_from):
            yield b
        return
    url, options = args
    # spawn, not fork: this process runs an event loop and a NATS client's socket, neither
    # of which survives a fork.
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_reader_main,
        args=(child, _Reading(url, options, evlog.stream, wanted, hashes, signed_from)),
        name="gongkai-prefetch",
        daemon=True,
    )
    proc.start()
    child.close()
    loop = asyncio.get_running_loop()
    try:
        while True:
            try:
                item = await loop.run_in_executor(None, parent.recv)
            except EOFError:
                raise EventLogError("replay reader process ended without finishing") from None
            if item is None:
                return
            if isinstance(item, tuple) and len(item) == 2 and item[0] == "error":
                raise EventLogError(f"replay reader process failed: {item[1]}")
            yield Batch(*item)
    finally:
        parent.close()
        if proc.is_alive():
            proc.terminate()
        await loop.run_in_executor(None, proc.join, 5)
