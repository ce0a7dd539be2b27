"""A peer row: the same append and read through the Python ``eventsourcing`` library.

    python -m bench.bench_peer [N]

The same N post submissions (one new aggregate each, the same fields and text as gongkai's
``PostSubmitted``), in the same run, on the same disk, at the same durability:

- **eventsourcing** (9.5, ``eventsourcing.sqlite``): ``Application.save`` of one new aggregate
  per call, one SQLite transaction each, in WAL mode with ``synchronous=FULL`` (SQLite's
  default, which the library keeps; the run reads it back and says so): every save's commit
  is on disk before ``save`` returns. The read: the application's notification log in pages
  of 500, each stored event mapped back to its domain event — in process, no network.
- **gongkai**: ``EventLog.append`` of each event on its own (expected sequence 0, a new
  aggregate, as a submission appends it) into nats-server with ``sync_interval: always``
  (every write fsynced before the ack), one after the other; then the same events pipelined
  (many acks in flight, as a service under load appends). The read: ``EventLog.replay``, the
  ordered consumer decoding every event into its typed envelope.

Unsigned on both sides (the peer has no signatures; gongkai's services sign, ``bench_eventlog``
measures what that costs). Each ratio divides by the peer's rate measured in this run.

The network hop: gongkai's log is a server, reached over TCP even on one machine; the peer's
is a file in the process. The run measures the loopback round trip to nats-server (a
PING/PONG) and prints what share of a one-at-a-time durable append it is.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from bench.bench_eventlog import events
from bench.common import Baseline, Figure, Timer, server, table
from gongkai.eventlog import EventLog

#: The peer's page size for reading the log, as gongkai's consumers ask for 500 at a time.
PAGE = 500


class Post(Aggregate):
    """A submitted post, as the peer library records it: one event, the same fields."""

    @event("Submitted")
    def __init__(
        self,
        unit: str,
        column: str,
        title: str,
        body: str,
        origin: str,
        channel: str,
        information_date: str,
        content_digest: str,
        person: str,
    ) -> None:
        self.unit = unit
        self.column = column
        self.title = title
        self.body = body
        self.origin = origin
        self.channel = channel
        self.information_date = information_date
        self.content_digest = content_digest
        self.person = person


class Posts(Application[Any]):
    pass


def peer(directory: Path, evs: list[Any]) -> dict[str, Any]:
    """The peer's per-event save and its in-process read of every event."""
    db = directory / "peer.sqlite"
    app = Posts(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(db)})
    fields = [
        {
            "unit": e.payload.unit,
            "column": e.payload.column,
            "title": e.payload.title,
            "body": e.payload.body,
            "origin": e.payload.origin,
            "channel": e.payload.channel,
            "information_date": e.payload.information_date.isoformat(),
            "content_digest": e.payload.content_digest,
            "person": e.actor.person,
        }
        for e in evs
    ]
    with Timer() as w:
        for f in fields:
            app.save(Post(**f))
    read = 0
    with Timer() as r:
        start = 1
        while True:
            page = app.recorder.select_notifications(start=start, limit=PAGE)
            for n in page:
                app.mapper.to_domain_event(n)
                read += 1
            if len(page) < PAGE:
                break
            start = page[-1].id + 1
    assert read == len(evs), read
    # What the library's connections run with: it sets WAL and leaves synchronous as SQLite's
    # default, which a fresh connection to the same file reports.
    with sqlite3.connect(db) as conn:
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
        sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    app.close()
    return {
        "save": len(evs) / w.seconds,
        "read": read / r.seconds,
        "journal": journal,
        "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(sync, str(sync)),
    }


async def gongkai(evs: list[Any], pipelined: list[Any]) -> dict[str, float]:
    with server(sync_always=True) as srv:
        evlog = await EventLog.connect(srv.url)
        await evlog.ensure_stream()
        with Timer() as w:
            for e in evs:
                await evlog.append([e], expected=0)
        with Timer() as p:
            results = await evlog.append_pipelined([(e, 0) for e in pipelined])
        assert not [x for x in results if isinstance(x, Exception)], results[:3]
        total = await evlog.last_sequence()
        count = 0
        with Timer() as r:
            async for _ in evlog.replay():
                count += 1
        assert count == total == len(evs) + len(pipelined), (count, total)
        rtts = []
        for _ in range(500):
            t0 = time.perf_counter()
            await evlog.nc.flush()
            rtts.append(time.perf_counter() - t0)
        await evlog.close()
    return {
        "append": len(evs) / w.seconds,
        "pipelined": len(pipelined) / p.seconds,
        "replay": count / r.seconds,
        "rtt_us": statistics.median(rtts) * 1e6,
    }


def main(argv: list[str] | None = None) -> list[Figure]:
    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else 2000
    evs = events(n, "S")
    with tempfile.TemporaryDirectory(prefix="gongkai-bench-peer-") as d:
        es = peer(Path(d), evs)
    gk = asyncio.run(gongkai(evs, events(n, "P")))
    rows = [
        (
            f"eventsourcing: Application.save, one event per transaction "
            f"(SQLite {es['journal']}, synchronous={es['synchronous']})",
            f"{es['save']:,.0f}",
            "100%",
        ),
        (
            "gongkai: EventLog.append one at a time (sync_interval: always)",
            f"{gk['append']:,.0f}",
            f"{gk['append'] / es['save']:.0%}",
        ),
        (
            "gongkai: EventLog.append_pipelined (sync_interval: always)",
            f"{gk['pipelined']:,.0f}",
            f"{gk['pipelined'] / es['save']:.0%}",
        ),
        ("eventsourcing: read in process, notification log + decode", f"{es['read']:,.0f}",
         "100%"),
        (
            "gongkai: EventLog.replay over TCP, ordered consumer + decode",
            f"{gk['replay']:,.0f}",
            f"{gk['replay'] / es['read']:.0%}",
        ),
    ]
    print(f"peer: {n:,} post submissions each way, same disk, every write durable before its ack")
    print(table(rows, ("path", "events/s", "of the peer's")))
    per_append_us = 1e6 / gk["append"]
    print(
        f"The network hop: a loopback round trip to nats-server takes {gk['rtt_us']:,.0f} µs "
        f"(median PING/PONG), {gk['rtt_us'] / per_append_us:.0%} of a one-at-a-time durable "
        f"append's {per_append_us:,.0f} µs, the rest being the server's write and fsync and the "
        "client's encoding. Pipelining hides it (many appends share the wait), and a replay "
        "does not pay it per event (the server pushes messages without a request each): what "
        "the read gives up against the peer's in-process read is the server's delivery and "
        "the envelope decode, not the hop."
    )
    save = Baseline("eventsourcing SQLite save, same events, same disk", es["save"], "events/s")
    read = Baseline("eventsourcing in-process read + decode, same events", es["read"], "events/s")
    return [
        Figure("gongkai durable append, one at a time", gk["append"], "events/s", save,
               share_target=1.0),
        Figure("gongkai durable append, pipelined", gk["pipelined"], "events/s", save,
               share_target=1.0),
        Figure("gongkai replay + decode (over TCP)", gk["replay"], "events/s", read),
    ]


if __name__ == "__main__":
    main()
