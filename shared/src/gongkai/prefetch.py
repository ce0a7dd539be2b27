"""Reading the log in a second process while this one folds it.

A rebuild of a large log spends about a third of its time in the NATS client (protocol parsing,
message objects, flow control) and the rest decoding and folding. Python runs one of those at a
time, so a full rebuild would use one core of two. ``prefetched`` moves the reading into a
helper process with its own connection: it replays the stream in order and ships the raw bytes
of the event types the caller wants, in batches through a pipe; this process decodes and folds.
Order is the stream's; the pipe and up to ``AHEAD`` batches read off it are the only queue, so
memory stays bounded and a slow fold simply holds the reader back.

The caller sees exactly what an in-process ``raw_replay`` would give it: every message's
sequence, in order, the wanted ones with their bytes. Small logs are read in-process: starting
an interpreter costs more than it saves below some tens of thousands of events.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import pickle
import struct
import sys
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Collection
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from gongkai.eventlog import EventLog, EventLogError, ack_position

#: Below this many events in the log, read in-process.
PREFETCH_MIN_EVENTS = 50_000
#: Messages per batch through the pipe: large enough that pickling and the thread hop per
#: batch vanish, small enough that the first batch arrives at once.
BATCH = 2000
#: Batches this process holds read from the reader's pipe, not yet taken by the fold (a batch
#: is 1-2 MB); the pipe itself holds up to ``PIPE_SIZE`` more, then the reader waits.
AHEAD = 3
#: The pipe's capacity, where the system lets it be set (Linux: 64 KB by default, 1 MB for an
#: unprivileged process): the thread that drains it takes a batch in one or two reads.
PIPE_SIZE = 1024 * 1024


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


#: A frame on the reader's pipe: the length of the pickled item that follows.
_FRAME = struct.Struct(">Q")


def _send(fd: int, item: object) -> None:
    # Blocking on purpose: a full pipe means the fold is behind, and the reader should wait
    # rather than buffer. The ordered consumer's flow control then holds the server back too.
    data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_FRAME.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


async def _read(fd: int, job: _Reading) -> None:
    # A reader that loses its connection fails the rebuild rather than retrying: the parent
    # reports it, and a rebuild is simply run again.
    evlog = await EventLog.connect(
        job.url, **{**job.options, "allow_reconnect": False, "max_reconnect_attempts": 1}
    )
    evlog.stream = job.stream
    try:
        async for batch in _in_process(evlog, job.types, job.hashes, job.signed_from):
            _send(fd, (batch.seen, batch.last_seq, batch.events, batch.leaves, batch.headers))
        _send(fd, None)
    finally:
        await evlog.close()


def _reader_main() -> None:
    """The reader process: its job pickled on stdin, its batches framed on the pipe whose
    descriptor is its one argument."""
    fd = int(sys.argv[1])
    try:
        job = pickle.loads(sys.stdin.buffer.read())  # noqa: S301 - from our own parent
        asyncio.run(_read(fd, job))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        with contextlib.suppress(Exception):
            _send(fd, ("error", f"{type(exc).__name__}: {exc}"))
    finally:
        os.close(fd)


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
    job = _Reading(url, options, evlog.stream, wanted, hashes, signed_from)
    # Closed with this generator: a fold that stops early ends the reader and its pump now.
    async with contextlib.aclosing(_through_reader(job)) as items:
        async for item in items:
            yield Batch(*item)


async def _through_reader(job: _Reading) -> AsyncGenerator[Any, None]:
    """What a reader process doing ``job`` sends, item by item, until it says it is done.

    A fresh interpreter that imports this module and nothing of the caller's (multiprocessing's
    spawn would import the caller's main module again, and start a resource tracker process
    besides: about a second before the first batch, most of a 100,000-event rebuild's wait).
    Not a fork: this process runs an event loop and a NATS client's socket, neither of which
    survives one. The job (it may hold credentials) goes on the reader's stdin, not its
    command line.
    """
    loop = asyncio.get_running_loop()
    out_r, out_w = os.pipe()
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed: 64 KB
        fcntl.fcntl(out_w, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import gongkai.prefetch as p; p._reader_main()",
            str(out_w),
            stdin=asyncio.subprocess.PIPE,
            pass_fds=(out_w,),
            # The modules this process found, wherever they came from, found there too.
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        )
    finally:
        os.close(out_w)
    frames: asyncio.Queue[bytes | None] = asyncio.Queue()
    room = threading.Semaphore(AHEAD)
    stop = threading.Event()
    pipe = os.fdopen(out_r, "rb", buffering=PIPE_SIZE)
    pump = threading.Thread(
        target=_pump, args=(pipe, loop, frames, room, stop), name="prefetch-pipe", daemon=True
    )
    pump.start()
    try:
        assert proc.stdin is not None
        proc.stdin.write(pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL))
        await proc.stdin.drain()
        proc.stdin.close()
        while True:
            data = await frames.get()
            room.release()
            if data is None:
                raise EventLogError("replay reader process ended without finishing")
            item = pickle.loads(data)  # noqa: S301 - our reader
            if item is None:
                return
            if isinstance(item, tuple) and len(item) == 2 and item[0] == "error":
                raise EventLogError(f"replay reader process failed: {item[1]}")
            yield item
    finally:
        stop.set()
        room.release()  # a pump waiting for room sees the stop
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        try:
            async with asyncio.timeout(5):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        # The reader is gone, so the pipe is at its end: the pump's read returns.
        await asyncio.to_thread(pump.join)
        pipe.close()


def _pump(
    pipe: BinaryIO,
    loop: asyncio.AbstractEventLoop,
    frames: asyncio.Queue[bytes | None],
    room: threading.Semaphore,
    stop: threading.Event,
) -> None:
    """Read the reader's frames off the pipe as they come, up to ``AHEAD`` ahead of the fold.

    In a thread of its own, because the fold holds the event loop for a whole batch: a pipe
    read by the loop was drained only between batches, and the reader process, blocked on a
    full pipe, waited for the fold instead of reading the next batch beside it. The blocking
    reads hold no GIL. Hands each frame's bytes to the loop, then None at the pipe's end.
    """
    try:
        while room.acquire() and not stop.is_set():
            head = pipe.read(_FRAME.size)
            if len(head) < _FRAME.size:
                break
            (size,) = _FRAME.unpack(head)
            data = pipe.read(size)
            if len(data) < size:
                break
            loop.call_soon_threadsafe(frames.put_nowait, data)
    except (OSError, ValueError, RuntimeError):
        pass  # the pipe closed under it, or the loop ended: the end, as below
    with contextlib.suppress(RuntimeError):  # the loop already closed: nobody is waiting
        loop.call_soon_threadsafe(frames.put_nowait, None)
