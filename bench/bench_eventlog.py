"""Event-log client throughput beside raw nats-py, measured in the same run.

Append: the client's pipelined append (Nats-Msg-Id dedup + per-aggregate expected-sequence
headers, canonical JSON of a pydantic envelope) against nats-py ``publish_async`` of the same
bytes with no headers; then the same append signed as every service appends (Ed25519, one
signature per batch of up to 64 events, each event with its audit path: see
``gongkai.trust.keys``). Replay: the client's replay (a bounded pull consumer + decode into
typed envelopes) against a raw nats-py ordered consumer that only counts messages, over a log
written as the services write it (every event signed); then the same replay verifying every
event's signature (``EventLog.replay`` with trust anchors), and for comparison
accountability's rebuild reader, which also checks every event against the signed Merkle
checkpoints. The replay rows also give the CPU an event took in this process and the ratio by
CPU: on a shared machine a rate is the path's turn on a core as much as its cost, and two runs'
rate ratios were seen 10 points apart.

    python -m bench.bench_eventlog [N]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

import nats

from bench.common import (
    Baseline,
    Figure,
    Timer,
    process_cpu,
    raw_ordered_read,
    server,
    table,
)
from gongkai.eventlog import EventLog
from gongkai.events import REGISTRY, Actor, new_event
from gongkai.events.contracts.intake import PostSubmitted
from gongkai.trust.keys import Keyring, provision

ACTOR = Actor(person="p-maker", role="maker", unit="finance")

#: CPU microseconds an event of each replay path took in this process (user + system), by
#: path: what the reading costs the reader, apart from how much of a core it got.
CPU_US: dict[str, list[float]] = {}


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
    seconds, cpu = await raw_ordered_read(url, n)
    CPU_US.setdefault("raw replay", []).append(cpu / n * 1e6)
    return n / seconds


async def client_append(evlog: EventLog, evs: list) -> float:  # type: ignore[type-arg]
    with Timer() as t:
        results = await evlog.append_pipelined([(e, 0) for e in evs])
    bad = [r for r in results if isinstance(r, Exception)]
    assert not bad, bad[:3]
    return len(evs) / t.seconds


async def client_replay(evlog: EventLog, n: int, path: str = "replay") -> float:
    count = 0
    cpu = process_cpu()
    with Timer() as t:
        async for _ in evlog.replay():
            count += 1
    CPU_US.setdefault(path, []).append((process_cpu() - cpu) / n * 1e6)
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


async def keyed_replay(evlog: EventLog, keys: Keyring | None, n: int) -> float:
    """``EventLog.replay`` decoding every event, verifying each signature when given keys."""
    evlog.keys = keys
    try:
        return await client_replay(evlog, n, "replay" if keys is None else "replay, verified")
    finally:
        evlog.keys = None


ROUNDS = 3


async def run(n: int) -> tuple[list[tuple[str, ...]], list[Figure]]:
    """Each path beside its raw baseline, interleaved over ``ROUNDS`` rounds, medians reported.

    One run of each was seen to swing by a third on a shared two-core machine (the stream's
    size, the page cache, the other core's load): alternating raw and gongkai round by round
    keeps the ratio about the machine as it was, not as it happened to be for one path.
    """
    keys_dir = tempfile.TemporaryDirectory(prefix="gongkai-bench-keys-")
    keys = provision(Path(keys_dir.name))
    rates: dict[str, list[float]] = {}

    def note(path: str, rate: float) -> None:
        rates.setdefault(path, []).append(rate)

    with server(sync_always=False) as srv:
        evlog = await EventLog.connect(srv.url, keys=keys)
        await evlog.ensure_stream()
        for r in range(ROUNDS):
            raw_evs = events(n, f"R{r}x")
            payloads = [
                (f"gk.ev.post.{e.aggregate_id}.PostSubmitted", e.to_json()) for e in raw_evs
            ]
            note("raw append", await raw_append(srv.url, payloads))
            evlog.keys = None
            note("append", await client_append(evlog, events(n, f"C{r}x")))
            evlog.keys = keys
            note("append, signed", await client_append(evlog, events(n, f"G{r}x")))
        await evlog.close()
    with server(sync_always=False) as srv:
        # A log as the services write it: every event signed, checkpoints every 1,000.
        evlog = await EventLog.connect(srv.url, keys=keys)
        await evlog.ensure_stream()
        await client_append(evlog, events(n, "V"))
        await checkpoint_all(evlog, keys)
        total = await evlog.last_sequence()
        for _ in range(ROUNDS):
            note("raw replay", await raw_replay(srv.url, total))
            note("replay", await keyed_replay(evlog, None, total))
            note("replay, verified", await keyed_replay(evlog, keys, total))
        evlog.keys = keys
        note("replay, verified (checkpoints)", (await verified_replay(evlog))[0])
        await evlog.close()
    keys_dir.cleanup()
    with server(sync_always=True) as srv:
        evlog = await EventLog.connect(srv.url, keys=None)
        await evlog.ensure_stream()
        note("append, sync always", await client_append(evlog, events(n, "S")))
        await evlog.close()

    med = {k: statistics.median(v) for k, v in rates.items()}
    raw_a, raw_r = med["raw append"], med["raw replay"]
    rows: list[tuple[str, ...]] = []
    cpu = {k: statistics.median(v) for k, v in CPU_US.items()}
    for path, base, target in (
        ("append", raw_a, ">= 50%"),
        ("append, signed", raw_a, ">= 45%"),
        ("append, sync always", raw_a, "cost"),
        ("replay", raw_r, ">= 60%"),
        ("replay, verified", raw_r, ">= 35%"),
        ("replay, verified (checkpoints)", raw_r, "cost"),
    ):
        # The CPU share: the raw consumer's CPU an event over this path's, both in this
        # process; on a shared machine it moves far less between runs than the rates do.
        by_cpu = f"{cpu['raw replay'] / cpu[path]:.0%}" if path in cpu else ""
        us = f"{cpu[path]:.1f} / {cpu['raw replay']:.1f}" if path in cpu else ""
        rows.append((path, f"{base:,.0f}", f"{med[path]:,.0f}", f"{med[path] / base:.0%}",
                     us, by_cpu, target))
    # The sync row is a share of the default-fsync raw rate, as its row in the table above.
    append = Baseline(f"raw nats-py publish_async, median of {ROUNDS}", raw_a)
    replay = Baseline(f"raw ordered consumer, median of {ROUNDS}", raw_r)
    figures = [
        Figure("event log: pipelined append", med["append"], "events/s", append),
        Figure("event log: append, sync_interval always", med["append, sync always"],
               "events/s", append),
        Figure("event log: replay + decode", med["replay"], "events/s", replay,
               share_target=0.60),
        Figure("event log: append, signed", med["append, signed"], "events/s", append),
        Figure("event log: replay, verified", med["replay, verified"], "events/s", replay),
    ]
    return rows, figures


def main(argv: list[str] | None = None) -> list[Figure]:
    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else 20000
    rows, figures = asyncio.run(run(n))
    print(
        f"event log, {n} events of ~{len(events(1, 'X')[0].to_json())} bytes, "
        f"median of {ROUNDS} interleaved rounds (the replay rows: one round for checkpoints)"
    )
    print(table(rows, ("path", "raw nats-py msg/s", "gongkai msg/s", "ratio",
                       "CPU us/event (gongkai / raw)", "ratio by CPU", "target")))
    return figures


if __name__ == "__main__":
    main()
