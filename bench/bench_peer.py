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

The floors, each side's store alone with the same bytes: SQLite's ``INSERT`` and ``COMMIT``
in WAL mode with ``synchronous=FULL`` (no library); nats-server's durable write, a blocking
socket sending the same subject, headers (message id, expected sequence, expected stream)
and bytes as ``EventLog.append`` and reading its PubAck, one at a time, on a second
nats-server of the same configuration (no asyncio, no nats-py: what no Python client can go
below); and nats-py's ``js.publish`` one at a time, the same messages. Both stores sync once a
write: SQLite an ``fdatasync`` of its WAL a commit, nats-server an ``fsync`` of its message
block a publish (``strace -c -f``, bench/profiles/README.md).
"""

from __future__ import annotations

import asyncio
import socket
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
from gongkai import subjects
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
    floor = sqlite_floor(directory / "floor.sqlite", [e.to_json() for e in evs])
    return {
        "save": len(evs) / w.seconds,
        "floor": floor,
        "read": read / r.seconds,
        "journal": journal,
        "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(sync, str(sync)),
    }


def sqlite_floor(db: Path, rows: list[bytes]) -> float:
    """SQLite alone: one INSERT and COMMIT a row, WAL, synchronous=FULL; rows a second."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
    with Timer() as t:
        for body in rows:
            conn.execute("BEGIN")
            conn.execute("INSERT INTO events (body) VALUES (?)", (body,))
            conn.execute("COMMIT")
    conn.close()
    return len(rows) / t.seconds


def socket_floor(port: int, messages: list[tuple[str, bytes, bytes]]) -> float:
    """nats-server alone: a blocking socket's HPUB and its PubAck, one at a time; seconds.

    The messages are (subject, header block, body) exactly as the client sends them.
    """
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    stream = sock.makefile("rb")
    stream.readline()  # INFO
    sock.sendall(
        b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,'
        b'"protocol":1}\r\nSUB _FLOOR.* 1\r\nPING\r\n'
    )
    assert stream.readline().startswith(b"PONG")
    with Timer() as t:
        for i, (subj, hdr, body) in enumerate(messages):
            size = len(hdr) + len(body)
            head = b"HPUB %s _FLOOR.%d %d %d\r\n" % (subj.encode(), i, len(hdr), size)
            sock.sendall(head + hdr + body + b"\r\n")
            while True:
                line = stream.readline()
                if line.startswith(b"MSG"):
                    ack = stream.read(int(line.split()[-1]) + 2)
                    assert b'"seq"' in ack and b"error" not in ack, ack
                    break
                if line.startswith(b"PING"):
                    sock.sendall(b"PONG\r\n")
    sock.close()
    return t.seconds


async def gongkai(
    evs: list[Any], pipelined: list[Any], floor_evs: list[Any], js_evs: list[Any], rounds: int = 4
) -> dict[str, float]:
    """gongkai's appends and, alternated with them on the same server, the floors."""
    with server(sync_always=True) as srv:
        evlog = await EventLog.connect(srv.url)
        await evlog.ensure_stream()

        def message(e: Any) -> tuple[str, bytes, dict[str, str]]:
            # The bytes and headers EventLog.append sends for e.
            subj, data, hdr = evlog._prepare(e)
            evlog._guard(hdr, subjects.aggregate_filter(e.aggregate_type, e.aggregate_id), 0)
            hdr["Nats-Expected-Stream"] = evlog.stream
            return subj, data, hdr

        raw = []
        for e in floor_evs:
            subj, data, hdr = message(e)
            block = "NATS/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdr.items()) + "\r\n"
            raw.append((subj, block.encode(), data))
        ready = [message(e) for e in js_evs]
        spent = {"append": 0.0, "socket": 0.0, "js": 0.0}
        step = -(-len(evs) // rounds)
        for at in range(0, len(evs), step):
            with Timer() as w:
                for e in evs[at : at + step]:
                    await evlog.append([e], expected=0)
            spent["append"] += w.seconds
            spent["socket"] += socket_floor(srv.port, raw[at : at + step])
            with Timer() as j:
                for subj, data, hdr in ready[at : at + step]:
                    await evlog.js.publish(subj, data, headers=hdr)
            spent["js"] += j.seconds
        with Timer() as p:
            results = await evlog.append_pipelined([(e, 0) for e in pipelined])
        assert not [x for x in results if isinstance(x, Exception)], results[:3]
        total = await evlog.last_sequence()
        count = 0
        with Timer() as r:
            async for _ in evlog.replay():
                count += 1
        assert count == total == len(evs) * 3 + len(pipelined), (count, total)
        rtts = []
        for _ in range(500):
            t0 = time.perf_counter()
            await evlog.nc.flush()
            rtts.append(time.perf_counter() - t0)
        await evlog.close()
    return {
        "append": len(evs) / spent["append"],
        "socket": len(evs) / spent["socket"],
        "js": len(evs) / spent["js"],
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
    gk = asyncio.run(gongkai(evs, events(n, "P"), events(n, "F"), events(n, "J")))
    rows = [
        (
            f"eventsourcing: Application.save, one event per transaction "
            f"(SQLite {es['journal']}, synchronous={es['synchronous']})",
            f"{es['save']:,.0f}",
            "100%",
        ),
        (
            "floor: SQLite alone, INSERT + COMMIT a row, same bytes (WAL, synchronous=FULL)",
            f"{es['floor']:,.0f}",
            f"{es['floor'] / es['save']:.0%}",
        ),
        (
            "floor: nats-server alone, blocking socket publish + PubAck, one at a time",
            f"{gk['socket']:,.0f}",
            f"{gk['socket'] / es['save']:.0%}",
        ),
        (
            "nats-py js.publish one at a time, same messages (sync_interval: always)",
            f"{gk['js']:,.0f}",
            f"{gk['js'] / es['save']:.0%}",
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
        f"(median PING/PONG through nats-py, asyncio's and nats-py's work included), "
        f"{gk['rtt_us'] / per_append_us:.0%} of a one-at-a-time durable append's "
        f"{per_append_us:,.0f} µs; the floor rows give the rest: the server's write and fsync "
        "alone, and what the client adds. Pipelining hides it (many appends share the wait), "
        "and a replay "
        "does not pay it per event (the server pushes messages without a request each): what "
        "the read gives up against the peer's in-process read is the server's delivery and "
        "the envelope decode, not the hop."
    )
    us = {k: 1e6 / v for k, v in
          (("save", es["save"]), ("sqlite", es["floor"]), ("nats", gk["socket"]),
           ("append", gk["append"]))}
    print(
        f"Per write: the peer's save {us['save']:,.0f} µs on SQLite's {us['sqlite']:,.0f} "
        f"(the library's share {us['save'] - us['sqlite']:,.0f} µs); gongkai's append "
        f"{us['append']:,.0f} µs on nats-server's {us['nats']:,.0f} (the client's share "
        f"{us['append'] - us['nats']:,.0f} µs). One sync a write on each side."
    )
    save = Baseline("eventsourcing SQLite save, same events, same disk", es["save"], "events/s")
    read = Baseline("eventsourcing in-process read + decode, same events", es["read"], "events/s")
    return [
        Figure("gongkai durable append, one at a time", gk["append"], "events/s", save,
               share_target=1.0),
        Figure("gongkai durable append, pipelined", gk["pipelined"], "events/s", save,
               share_target=1.0),
        Figure("nats-server alone, durable publish one at a time (floor)", gk["socket"],
               "events/s", save),
        Figure("gongkai replay + decode (over TCP)", gk["replay"], "events/s", read),
    ]


if __name__ == "__main__":
    main()
