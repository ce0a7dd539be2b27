"""Each service's peak memory while it catches up over a log of N events (default 1,000,000).

    python -m bench.bench_memory [N] [--services accountability]

Fills a throwaway nats-server with a county's life: the demo directory (25 units, their people),
then posts in the demo units' columns, each submitted by the unit's maker, signed by its staff
and its leader, approved and published by the CMS (every fifth a normative document, one in
fifty published without the leader); every tenth post's column had gone stale first and is
refreshed by it (``ColumnStale`` then ``ColumnRefreshed``). Then starts every service as its
own ``gongkai service NAME`` process on a fresh data directory, so each catches up over the
whole log from sequence 1, and samples each process's resident memory (with its children)
every 0.2 s until it is ready with no consumer lag, and a few seconds more for what it does
once caught up (freshness evaluates every column, accountability decides). Target: under
250 MB per service.

The four catch up at once on the machine's two cores, as they would after a restart of the
platform. Two clocks per service: the time until it is ready (from the spawn of its process:
interpreter, imports, migrations, connection and consumers included, as an operator waits for
it), and the catch-up itself, from its first answer to ready (the events it still had to apply
then, over that interval), the rate reported beside the raw replay rate of the same log and,
for accountability, beside its own rebuild of the same log in the same run (``gongkai audit
rebuild``'s path: the signed checkpoints, the fold in memory, every row written at once; the
other services have no rebuild of their own), whose clock likewise starts with the log
connected and the database made. The catch-up shares two cores with the other three and the
rebuild has them to itself: the share is of a rebuild alone. Targets (issue 18): every
service ready within 3 minutes of a 1,000,000-event log, a catch-up at least half its
service's rebuild rate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    Baseline,
    Figure,
    Timer,
    raw_ordered_read,
    server,
    stop_on_sigterm,
    table,
)
from bench.load.platform import SERVICES, start_services
from gongkai.eventlog import EventLog, StreamSettings
from gongkai.events import Actor, Envelope, new_event
from gongkai.events.contracts.freshness import ColumnRefreshed, ColumnStale, column_aggregate_id
from gongkai.events.contracts.intake import PostPublished, PostSubmitted
from gongkai.events.contracts.review import ReviewConcluded, ReviewSigned
from gongkai.runtime.settings import Settings
from gongkai.trust.keys import provision

TARGET_MB = 250
#: Seconds until every service is ready behind 1,000,000 events (issue 18).
TARGET_READY_S = 180.0
T0 = datetime(2025, 3, 3, 1, tzinfo=UTC)
CMS = Actor(person="cms", role="office", unit="county-office")
FRESHNESS = Actor(person="freshness", role="system", unit="system")
COLUMNS = ("work_arrangements", "leaders_activities", "other_documents", "statistics")
BODY = "为进一步规范财政专项资金管理，提高资金使用效益，现就有关事项通知如下。" * 3


def post_events(i: int, units: tuple[str, ...], step: timedelta) -> list[Envelope[Any]]:
    """One post's life: 5 events, 7 when it refreshes a column that had gone stale."""
    unit = units[i % len(units)]
    at = T0 + i * step
    pid = f"post-{i:020x}"
    digest = f"{i:064x}"
    normative = i % 5 == 0
    column = "normative_documents" if normative else COLUMNS[(i // 5) % len(COLUMNS)]
    maker = Actor(person=f"{unit}-maker", role="maker", unit=unit)
    staff = Actor(person=f"{unit}-staff", role="staff", unit=unit)
    leader = Actor(person=f"{unit}-leader", role="leader", unit=unit)
    out: list[Envelope[Any]] = [
        new_event(
            PostSubmitted(
                unit=unit,
                column=column,
                title=f"关于加强专项资金管理的通知（第{i}号）",
                body=BODY,
                origin="produced",
                channel="website",
                important_kind="normative_document" if normative else None,
                information_date=at.date(),
                content_digest=digest,
            ),
            aggregate_id=pid,
            actor=maker,
            command_id=f"s{i}",
            recorded_at=at,
        )
    ]
    stages = [("staff", staff)] + ([] if i % 50 == 7 else [("leader", leader)])
    for stage, signer in stages:
        out.append(
            new_event(
                ReviewSigned(
                    post_id=pid,
                    chain=1,
                    stage=stage,
                    decision="agree",
                    signer=signer,
                    content_digest=digest,
                ),
                aggregate_id=pid,
                actor=signer,
                command_id=f"g{stage}{i}",
                recorded_at=at + timedelta(minutes=10),
            )
        )
    if len(stages) == 2:
        out.append(
            new_event(
                ReviewConcluded(post_id=pid, chain=1, outcome="approved", content_digest=digest),
                aggregate_id=pid,
                actor=leader,
                command_id=f"c{i}",
                recorded_at=at + timedelta(minutes=10),
            )
        )
    online = at + timedelta(hours=1)
    if i % 10 == 3:
        # The column had gone stale before this post refreshed it.
        episode = f"bench-{i}"
        due = (at - timedelta(days=1)).date()
        stale = new_event(
            ColumnStale(
                unit=unit,
                column=column,
                rule_set="wenan-2018",
                rule="half-yearly" if column == "other_documents" else "yearly",
                rule_kind="periodic",
                due_date=due,
                overdue_days=1,
                episode=episode,
            ),
            aggregate_id=column_aggregate_id(unit, column),
            actor=FRESHNESS,
            command_id=f"st{i}",
            recorded_at=at,
        )
        out.insert(0, stale)
    pub_id = f"pub-{i:020x}"
    out.append(
        new_event(
            PostPublished(
                publication_id=pub_id,
                post_id=pid,
                unit=unit,
                column=column,
                url=f"https://www.wenhe.example.gov.cn/{unit}/{pid}.html",
                online_at=online,
                content_digest=digest,
            ),
            aggregate_id=pub_id,
            actor=CMS,
            command_id=f"p{i}",
            recorded_at=online,
        )
    )
    if i % 10 == 3:
        out.append(
            new_event(
                ColumnRefreshed(
                    unit=unit,
                    column=column,
                    rule_set="wenan-2018",
                    rule="half-yearly" if column == "other_documents" else "yearly",
                    rule_kind="periodic",
                    episode=f"bench-{i}",
                    due_date=(at - timedelta(days=1)).date(),
                    resolution="published",
                    stale_event_id=out[0].event_id,
                    last_publication_at=online,
                    post_id=pid,
                    met_on=online.date(),
                    late_days=1,
                ),
                aggregate_id=column_aggregate_id(unit, column),
                actor=FRESHNESS,
                command_id=f"rf{i}",
                recorded_at=online,
            )
        )
    return out


async def fill(evlog: EventLog, n: int) -> int:
    """The demo directory, then posts until the log holds about ``n`` events; its length."""
    from gongkai_demo.county import DEMO, seed_demo

    await seed_demo(evlog, T0 - timedelta(days=1))
    units = tuple(u for u in DEMO.units if u != "county-office")
    posts = max(1, (n - await evlog.last_sequence()) * 100 // 516)  # 5.16 events per post
    step = timedelta(days=365) / posts
    batch: list[tuple[Envelope[Any], int | None]] = []
    for i in range(posts):
        batch += [(e, None) for e in post_events(i, units, step)]
        if len(batch) >= 20000:
            await evlog.append_pipelined(batch)
            batch = []
    if batch:
        await evlog.append_pipelined(batch)
    return await evlog.last_sequence()


async def rebuild_rate(evlog: EventLog, work: Path) -> float:
    """accountability's rebuild of the whole log (as ``gongkai audit rebuild``), events/s."""
    from gongkai.projection import ProjectionStore, make_engine
    from gongkai_accountability.adapters.checkpoints import Checkpointer
    from gongkai_accountability.adapters.log import fold_log
    from gongkai_accountability.adapters.sql import AccountabilityProjection

    assert evlog.keys is not None
    # The checkpoints a running accountability signs as the log grows, which the rebuild
    # verifies the log against (the services' catch-up checks every signature instead).
    await Checkpointer(evlog, evlog.keys.private["accountability"]).run(
        await evlog.last_sequence(), force=True
    )
    projection = AccountabilityProjection()
    store = ProjectionStore(make_engine(f"sqlite:///{work / 'rebuild.db'}"))
    store.prepare(projection)
    with Timer() as t:
        res = await fold_log(evlog)
        projection.write_all(store.engine, res.rows, res.last_seq)
    return res.events / t.seconds


async def raw_replay_rate(url: str, total: int) -> float:
    seconds, _ = await raw_ordered_read(url, total)
    return total / seconds


#: A service whose lag has not moved for this long while not ready is reported as stalled
#: (a catch-up whose last messages were dropped waits for the next event; see
#: docs/reliability.md, "Load"), with the memory it used so far.
STALL_S = 60.0


#: Seconds between two rounds of polls: how finely readiness is timed (a catch-up of 20,000
#: events takes a few seconds). The first answer needs no such care: the events still to apply
#: are read in the same answer, so a late poll shortens the interval and its events alike.
POLL_S = 0.1


async def catch_up(
    url: str, work: Path, total: int, within: float, names: tuple[str, ...] = SERVICES
) -> dict[str, dict[str, float]]:
    """Start each service on a fresh data dir; per service: peak RSS (MB), seconds from its
    spawn until ready (NaN when it stalled), seconds until its first answer (``up_s``), the
    events it still had to apply then (``left``: its furthest-behind consumer's lag), and its
    lag when it stalled (0 when it caught up)."""
    platform = start_services(url, work / "var", names)
    done: dict[str, float] = {}
    #: When each first answered, and how far behind it was then: what follows is the catch-up.
    up: dict[str, tuple[float, float]] = {}
    stalled: dict[str, float] = {}
    moved: dict[str, tuple[float, float]] = {}
    t0 = time.monotonic()
    stop = asyncio.Event()

    async def sample() -> None:
        # Apart from the readiness polls: a service busy catching up can take seconds to
        # answer HTTP, and the memory must be sampled all the same.
        while not stop.is_set():
            for p in platform.processes.values():
                p.sample_rss()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)

    sampler = asyncio.create_task(sample())
    try:
        async with httpx.AsyncClient() as client:
            while len(done) < len(names):
                for name, p in platform.processes.items():
                    if p.proc.poll() is not None:
                        raise RuntimeError(f"{name} exited\n{p.tail()}")
                    if name in done:
                        continue
                    lags = await p.lags(client)
                    now = time.monotonic()
                    if lags is not None and name not in up:
                        up[name] = (now - t0, max(lags.values(), default=0.0))
                    if lags and not any(lags.values()) and await p.ready(client):
                        done[name] = now - t0
                    elif lags:
                        lag = max(lags.values())
                        if moved.get(name, (-1.0, 0.0))[0] != lag:
                            moved[name] = (lag, now)
                        elif now - moved[name][1] > STALL_S:
                            done[name] = float("nan")
                            stalled[name] = lag
                if time.monotonic() - t0 > within:
                    raise TimeoutError(f"caught up only {sorted(done)}\n{platform.logs()}")
                await asyncio.sleep(POLL_S)
            # What each does once caught up (freshness's first evaluation of every column,
            # accountability's decisions) comes next: keep sampling for a while.
            await asyncio.sleep(5)
    finally:
        stop.set()
        await sampler
        platform.stop()
    return {
        name: {
            "peak_mb": p.peak_rss / 2**20,
            "seconds": done[name],
            "up_s": up[name][0],
            "left": up[name][1],
            "stalled_lag": stalled.get(name, 0.0),
        }
        for name, p in platform.processes.items()
    }


async def measure(
    n: int, names: tuple[str, ...] = SERVICES
) -> tuple[int, float, float, float, dict[str, dict[str, float]]]:
    with server(sync_always=False) as srv, tempfile.TemporaryDirectory(prefix="gk-mem-") as d:
        # Signed with the keys the services will trust (their data directory's): an unsigned
        # log is refused event by event, and the catch-up measured nothing but dead letters.
        keys = provision(Settings.from_env(data_dir=Path(d) / "var").keys_path)
        evlog = await EventLog.connect(srv.url, keys=keys)
        await evlog.ensure_stream(StreamSettings())
        with Timer() as w:
            total = await fill(evlog, n)
        raw = await raw_replay_rate(srv.url, total)
        rebuild = await rebuild_rate(evlog, Path(d))
        total = await evlog.last_sequence()  # with the checkpoints
        await evlog.close()
        # Each service reads the whole log at least once; give slow machines room.
        per_service = await catch_up(
            srv.url, Path(d), total, within=max(300, total / 200), names=names
        )
    return total, w.seconds, raw, rebuild, per_service


def main(argv: list[str] | None = None) -> list[Figure]:
    p = argparse.ArgumentParser(
        prog="python -m bench.bench_memory", description=(__doc__ or "").splitlines()[0]
    )
    p.add_argument("n", nargs="?", type=int, default=1_000_000, help="events in the log")
    p.add_argument(
        "--services", default=",".join(SERVICES),
        help="which services catch up (comma-separated; alone, each has the cores to itself)",
    )
    args = p.parse_args(argv)
    names = tuple(n for n in SERVICES if n in args.services.split(","))
    stop_on_sigterm()
    total, fill_s, raw, rebuild, per = asyncio.run(measure(args.n, names))
    rows: list[tuple[str, ...]] = []
    figures: list[Figure] = []
    for name in names:
        mb, s = per[name]["peak_mb"], per[name]["seconds"]
        verdict = "ok" if mb < TARGET_MB else "OVER"
        figures.append(Figure(f"{name}: peak RSS, {total:,} events", mb, "MB", target=TARGET_MB))
        up_s, left = per[name]["up_s"], per[name]["left"]
        figures.append(Figure(f"{name}: first answer after its spawn", up_s, "s"))
        if math.isnan(s):
            lag = per[name]["stalled_lag"]
            rows.append(
                (name, f"{mb:,.0f}", verdict, f"{up_s:,.1f}", f"stalled, lag {lag:,.0f}", "-",
                 "-", "-")
            )
            figures.append(Figure(f"{name}: catch-up STALLED at lag {lag:,.0f}", lag, "events"))
            continue
        if left <= 0 or s <= up_s:
            # Caught up before it first answered: no interval to time a rate over.
            rows.append((name, f"{mb:,.0f}", verdict, f"{up_s:,.1f}", f"{s:,.1f}", "-", "-", "-"))
            continue
        # The events it still had to apply when it first answered, over the time it took.
        rate = left / (s - up_s)
        share = f"{rate / rebuild:.0%}" if name == "accountability" else "-"
        rows.append(
            (name, f"{mb:,.0f}", verdict, f"{up_s:,.1f}", f"{s:,.1f}", f"{rate:,.0f}",
             f"{rate / raw:.0%}", share)
        )
        label = f"{name}: catch-up from seq 1, first answer to ready, four at once"
        if len(names) == 1:
            label = f"{name}: catch-up from seq 1, first answer to ready, alone"
        elif names != SERVICES:
            label = f"{name}: catch-up from seq 1, first answer to ready, with {', '.join(names)}"
        if name == "accountability":
            figures.append(
                Figure(
                    label,
                    rate,
                    "events/s",
                    Baseline("accountability's rebuild alone, same log", rebuild, "events/s"),
                    share_target=0.50,
                )
            )
        else:
            figures.append(
                Figure(label, rate, "events/s", Baseline("raw ordered consumer, same log", raw))
            )
    ready = [per[name]["seconds"] for name in names]
    last = max(ready) if not any(math.isnan(s) for s in ready) else float("nan")
    if not math.isnan(last) and names == SERVICES:
        figures.append(
            Figure(f"all four ready behind {total:,} events", last, "s", target=TARGET_READY_S)
        )
    la = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"{total:,} events written in {fill_s:.0f} s; raw ordered-consumer replay "
        f"{raw:,.0f} events/s; accountability's rebuild {rebuild:,.0f} events/s; "
        f"load average {la}"
    )
    print(
        table(
            rows,
            (
                "service", f"peak RSS MB (< {TARGET_MB})", "", "first answer after s",
                "ready after s", "catch-up events/s", "of raw", "of its rebuild (>= 50%)",
            ),
        )
    )
    return figures


if __name__ == "__main__":
    main()
