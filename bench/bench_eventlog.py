"""Event-log client throughput beside raw nats-py, measured in the same run.

Append: the client's pipelined append (Nats-Msg-Id dedup + per-aggregate expected-sequence
headers, canonical JSON of a pydantic envelope) against nats-py ``publish_async`` of the same
bytes with no headers; then the same append signed (Ed25519 per event, as every service
appends). Replay: the client's replay (ordered consumer + decode into typed envelopes) against
a raw nats-py ordered consumer that only counts messages; then the replay with verification,
as rebuilds read: signed checkpoints (one signature each) and one hash per event against their
tiles, one signature per event after the last checkpoint; and, for scale, one signature per
event throughout (``EventLog.replay`` with trust anchors).

    python -m bench.bench_eventlog [N]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

import nats

from bench.common import Figure, Timer, server, table
from gongkai.eventlog import EventLog
from gongkai.events import REGISTRY, Actor, new_event
from gongkai.events.contracts.intake import PostSubmitted
from gongkai.trust.keys import Keyring, provision

ACTOR = Actor(person="p-maker", role="maker", unit="finance")
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def events(n: int, tag: str) -> list:  # type: ignore[type-arg]
    return [
        new_event(
            PostSubmitted(
                unit="finance",
                column="work_news",
                title=f"工作动态 {i}",
                body="县财政局召开专项资金管理工作会议。",
                origin="produced",
                channel="website",
                information_date=date(2026, 3, 1),
                content_digest="a" * 64,
            ),
            aggregate_id=f"{tag}{i}",
            actor=ACTOR,
            command_id=f"{tag}-{i}",
            recorded_at=T0,
        )
        for i in range(n)
    ]


async def raw_append(url: str, payloads: list[tuple[str, bytes]]) -> float:
    nc = await nats.connect(url)
    js = nc.jetstream(publish_async_max_pending=4000)
    with Timer() as t:
        for subj, data in payloads:
            await js.publish_async(subj, data)
        await js.publish_async_completed()
    await nc.close()
    return len(payloads) / t.seconds


async def raw_replay(url: str, n: int) -> float:
    nc = await nats.connect(url)
    js = nc.jetstream()
    done = asyncio.Event()
    count = 0

    async def cb(msg: object) -> None:
        nonlocal count
        count += 1
        if count >= n:
            done.set()

    with Timer() as t:
        sub = await js.subscribe(
            "gk.ev.>", ordered_consumer=True, cb=cb, pending_msgs_limit=65536,
            pending_bytes_limit=256 * 1024 * 1024,
        )
        await done.wait()
    await sub.unsubscribe()
    await nc.close()
    return n / t.seconds


async def client_append(evlog: EventLog, evs: list) -> float:  # type: ignore[type-arg]
    with Timer() as t:
        results = await evlog.append_pipelined([(e, 0) for e in evs])
    bad = [r for r in results if isinstance(r, Exception)]
    assert not bad, bad[:3]
    return len(evs) / t.seconds


async def client_replay(evlog: EventLog, n: int) -> float:
    count = 0
    with Timer() as t:
        async for _ in evlog.replay():
            count += 1
    assert count == n, count
    return n / t.seconds


async def verified_replay(evlog: EventLog) -> tuple[float, int]:
    """Every event of the log decoded and verified, as rebuilds read it (signed checkpoints)."""
    from gongkai_accountability.adapters.checkpoints import load_chain
    from gongkai_accountability.adapters.log import ReadCounts, verified_events

    counts = ReadCounts()
    n = 0
    with Timer() as t:
        chain = await load_chain(evlog)
        async for batch in verified_events(evlog, REGISTRY.types(), counts, chain):
            n += len(batch)
    assert counts.rejected == 0 and counts.bad == 0, counts
    return counts.seen / t.seconds, n


async def checkpoint_all(evlog: EventLog, keys: Keyring) -> int:
    """What accountability does as the log grows: a signed checkpoint every 1,000 events."""
    from gongkai_accountability.adapters.checkpoints import Checkpointer

    cp = Checkpointer(evlog, keys.private["accountability"])
    return await cp.run(await evlog.last_sequence(), force=True)


async def signed_replay(evlog: EventLog, n: int) -> float:
    count = 0
    with Timer() as t:
        async for _ in evlog.replay():
            count += 1
            if count >= n:
                break
    return count / t.seconds


async def run(n: int) -> tuple[list[tuple[str, ...]], list[Figure]]:
    rows: list[tuple[str, ...]] = []
    keys_dir = tempfile.TemporaryDirectory(prefix="gongkai-bench-keys-")
    keys = provision(Path(keys_dir.name))
    with server(sync_always=False) as srv:
        evlog = await EventLog.connect(srv.url, keys=keys)
        await evlog.ensure_stream()
        raw_evs = events(n, "R")
        payloads = [(f"gk.ev.post.{e.aggregate_id}.PostSubmitted", e.to_json()) for e in raw_evs]
        raw_a = await raw_append(srv.url, payloads)
        evlog.keys = None
        cli_a = await client_append(evlog, events(n, "C"))
        evlog.keys = keys
        signed_a = await client_append(evlog, events(n, "G"))
        await checkpoint_all(evlog, keys)
        total = await evlog.last_sequence()
        raw_r = await raw_replay(srv.url, total)
        evlog.keys = None
        cli_r = await client_replay(evlog, total)
        evlog.keys = keys
        ver_r, _ = await verified_replay(evlog)
        sig_r = await signed_replay(evlog, min(total, 5000))
        await evlog.close()
    keys_dir.cleanup()
    with server(sync_always=True) as srv:
        evlog = await EventLog.connect(srv.url, keys=None)
        await evlog.ensure_stream()
        sync_a = await client_append(evlog, events(n, "S"))
        await evlog.close()
    rows.append(("append", f"{raw_a:,.0f}", f"{cli_a:,.0f}", f"{cli_a / raw_a:.0%}", ">= 50%"))
    rows.append(
        ("append, signed", f"{raw_a:,.0f}", f"{signed_a:,.0f}", f"{signed_a / raw_a:.0%}", ">= 45%")
    )
    rows.append(("replay", f"{raw_r:,.0f}", f"{cli_r:,.0f}", f"{cli_r / raw_r:.0%}", ">= 40%"))
    rows.append(
        (
            "replay, verified (checkpoints)",
            f"{raw_r:,.0f}",
            f"{ver_r:,.0f}",
            f"{ver_r / raw_r:.0%}",
            ">= 35%",
        )
    )
    rows.append(
        (
            "replay, a signature per event",
            f"{raw_r:,.0f}",
            f"{sig_r:,.0f}",
            f"{sig_r / raw_r:.0%}",
            "cost",
        )
    )
    rows.append(
        ("append, sync always", f"{raw_a:,.0f}", f"{sync_a:,.0f}", f"{sync_a / raw_a:.0%}", "cost")
    )
    figures = [
        Figure("event log: pipelined append", cli_a, "events/s", "append"),
        Figure("event log: append, sync_interval always", sync_a, "events/s", "append"),
        Figure("event log: replay + decode", cli_r, "events/s", "replay"),
        Figure("event log: append, signed", signed_a, "events/s", "append"),
        Figure("event log: replay, verified against checkpoints", ver_r, "events/s", "replay"),
    ]
    return rows, figures


def main(argv: list[str] | None = None) -> list[Figure]:
    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else 20000
    rows, figures = asyncio.run(run(n))
    print(f"event log, {n} events of ~{len(events(1, 'X')[0].to_json())} bytes")
    print(table(rows, ("path", "raw nats-py msg/s", "gongkai msg/s", "ratio", "target")))
    return figures


if __name__ == "__main__":
    main()
