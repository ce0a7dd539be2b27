"""The inspectors' console and ``gongkai audit trail`` on a log of N events (default 1,000,000).

    .venv/bin/python -m bench.bench_console [N]      (or BENCH_EVENTS=N)

Writes the demo county's directory (its people sign in) and ``bench_accountability``'s county
life, spread over half a year (posts, signatures, approvals, publications; one in fifty
published without review), signed and checkpointed as the services do. Accountability's read
model is then rebuilt as ``gongkai audit rebuild`` does (the live projection would take far
longer to catch up) and the service started on it: it reads the log once for the days it
keeps (``adapters.days``), then settles (records the violations it owes), both timed.

Then every console page, as of today and as of a day in the middle of the half year: the first
request (cold) and the median of five more, through the service's own ASGI app (no network);
and a post's chain of custody as ``gongkai audit trail`` reads it (by subject, the read model
as the index), in process and as a whole command in a process of its own.
Targets (issue 16): a page < 300 ms, the trail < 0.2 s; figures, never assertions.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.bench_accountability import T0, directory, post_events
from bench.common import Figure, Timer, server, table
from gongkai import subjects
from gongkai.calendar import local_date
from gongkai.eventlog import EventLog, StreamSettings
from gongkai.projection import ProjectionStore, make_engine
from gongkai.runtime.clock import FixedClock
from gongkai.runtime.host import make_app
from gongkai.runtime.service import ServiceContext
from gongkai.runtime.settings import Settings
from gongkai.trust.keys import provision
from gongkai_accountability.adapters.checkpoints import Checkpointer
from gongkai_accountability.adapters.log import fold_log
from gongkai_accountability.adapters.trail import read_trail
from gongkai_accountability.bootstrap import build
from gongkai_accountability.domain.tables import POST
from gongkai_accountability.service import AccountabilityService
from gongkai_demo.county import demo_token, seed_demo

#: The county life is spread over this many days (the as-of day is in the middle).
DAYS = 180
PAGES = (
    ("overview", "/console"),
    ("unit", "/console/units/u1"),
    ("post", "/console/posts/P{post}"),
    ("violations", "/console/violations"),
    ("findings", "/console/findings"),
    ("supervisions", "/console/supervisions"),
    ("integrity", "/console/integrity"),
)
TARGET_PAGE_S = 0.3
TARGET_TRAIL_S = 0.2


def _spread(env: Any, i: int, posts: int) -> Any:
    """The i-th post's event on its day of the half year (the generator packs them in
    seconds), business and record time alike."""
    at = T0 + timedelta(seconds=i * DAYS * 86400 // max(1, posts))
    return env.model_copy(update={"recorded_at": at, "business_time": at})


async def _write(evlog: EventLog, cp: Checkpointer, n: int) -> int:
    posts = n // 4
    batch: list[tuple[Any, int | None]] = [(e, None) for e in directory()]
    for i in range(posts):
        batch += [(_spread(e, i, posts), None) for e in post_events(i)]
        if len(batch) >= 20000:
            await evlog.append_pipelined(batch)
            await cp.run(await evlog.last_sequence())
            batch = []
    if batch:
        await evlog.append_pipelined(batch)
    # The people who sign in, on the last day (their tokens are valid then).
    await seed_demo(evlog, T0 + timedelta(days=DAYS), units=("finance",))
    await cp.run(await evlog.last_sequence(), force=True)
    return posts


async def _time(client: httpx.AsyncClient, url: str, params: dict[str, str]) -> list[float]:
    out = []
    for _ in range(6):
        t0 = time.perf_counter()
        r = await client.get(url, params=params)
        out.append(time.perf_counter() - t0)
        if r.status_code != 200:
            raise RuntimeError(f"{url} {params}: {r.status_code} {r.text[:300]}")
    return out


def _cli_trail(url: str, post: str, data_dir: Path, keys: Path) -> float:
    exe = str(Path(sys.executable).with_name("gongkai"))
    env = {
        **os.environ,
        "GONGKAI_NATS_URL": url,
        "GONGKAI_DATA_DIR": str(data_dir),
        "GONGKAI_KEYS_DIR": str(keys),
    }
    t0 = time.perf_counter()
    done = subprocess.run(
        [exe, "audit", "trail", post, "--json"], capture_output=True, text=True, env=env,
        timeout=600, check=False,
    )
    took = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"gongkai audit trail: {done.stderr[-500:]}")
    return took


async def measure(n: int) -> list[Figure]:
    keys_dir = tempfile.TemporaryDirectory(prefix="gongkai-bench-keys-")
    data = tempfile.TemporaryDirectory(prefix="gongkai-bench-console-")
    keys = provision(Path(keys_dir.name))
    rows_out: list[tuple[str, ...]] = []
    figures: list[Figure] = []
    with server() as srv:
        evlog = await EventLog.connect(srv.url, keys=keys)
        await evlog.ensure_stream(StreamSettings(duplicate_window_s=120))
        cp = Checkpointer(evlog, keys.private["accountability"])
        with Timer() as w:
            posts = await _write(evlog, cp, n)
        total = await evlog.last_sequence()
        end = T0 + timedelta(days=DAYS + 1)
        settings = Settings(data_dir=Path(data.name), keys_dir=Path(keys_dir.name))
        ctx = ServiceContext(settings=settings, clock=FixedClock(end), nats_url=srv.url)
        svc = build(ctx)
        assert isinstance(svc, AccountabilityService)
        await asyncio.to_thread(svc.prepare_database)
        url = settings.db_url("accountability")
        with Timer() as rb:
            res = await fold_log(evlog)
            store = ProjectionStore(make_engine(url), manage_schema=False)
            store.reset(svc.projection)
            svc.projection.write_all(store.engine, res.rows, res.last_seq)
            store.engine.dispose()
        del res
        # The directory's projection likewise: its few events, read by type, and its
        # checkpoint at the log's end (it would otherwise scan the whole log at start).
        people = []
        for t in sorted(svc.directory_projection.consumes):
            async for rec in evlog.replay(filter_subject=subjects.type_filter(t)):
                people.append(rec)
        people.sort(key=lambda r: r.seq)
        svc.store.prepare(svc.directory_projection)
        svc.store.apply(svc.directory_projection, people, advance_to=total)
        # The kept days' pass first, then the settling: both at once hold the event loop long
        # enough for a checkpoint's wait for the projection (10 s) to give up under load.
        with Timer() as days:
            await svc.start()
            await svc.as_of(local_date(end))
        with Timer() as up:
            await svc.settle(within=600)
        settled = await evlog.last_sequence()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=make_app([svc])), base_url="http://gongkai"
        )
        login = await client.get("/console/login")
        csrf = login.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        signed = await client.post(
            "/console/login",
            data={"token": demo_token("office-reader"), "csrf": csrf, "next": "/console"},
        )
        assert signed.status_code == 303, signed.text[:300]
        post = str(posts // 2)
        mid = local_date(T0 + timedelta(days=DAYS // 2))
        worst = 0.0
        for label, day in (("today", None), (f"as of {mid}", mid)):
            for name, path in PAGES:
                params = {"date": day.isoformat()} if day else {}
                took = await _time(client, path.format(post=post), params)
                warm = statistics.median(took[1:])
                worst = max(worst, took[0], warm)
                rows_out.append((
                    f"{name} ({label})", f"{took[0] * 1000:,.0f}", f"{warm * 1000:,.0f}",
                    "ok" if max(took) < TARGET_PAGE_S else "OVER",
                ))
        trail_in = []
        for _ in range(5):
            t0 = time.perf_counter()
            read = await read_trail(evlog, f"P{post}", url)
            trail_in.append(time.perf_counter() - t0)
        assert read.how == "subjects" and read.rows.get(POST, f"P{post}") is not None
        trail_cli = _cli_trail(srv.url, f"P{post}", Path(data.name), Path(keys_dir.name))
        await client.aclose()
        await svc.stop()
        await evlog.close()
    keys_dir.cleanup()
    data.cleanup()
    trail_read = statistics.median(trail_in)
    print(
        f"log: {total:,} events written in {w.seconds:.0f} s ({posts:,} posts over {DAYS} "
        f"days); {settled - total:,} recorded as the service settled\n"
        f"read model rebuilt in {rb.seconds:.0f} s; service started and its kept days ready "
        f"in {days.seconds:.1f} s, settled {up.seconds:.1f} s after that "
        f"({svc.days.events:,} events read by the pass, {svc.days.kept_days} days kept: "
        f"{svc.days.versions:,} row versions, {svc.days.publications:,} publications)"
    )
    print(table(rows_out, ("page", "first ms", "median ms (5)", f"< {TARGET_PAGE_S * 1000:.0f}")))
    print(
        table(
            [
                ("read by subject (in process), median of 5", f"{trail_read * 1000:,.0f}",
                 "ok" if trail_read < TARGET_TRAIL_S else "OVER"),
                ("the whole command (own process, imports, connect)",
                 f"{trail_cli * 1000:,.0f}", ""),
            ],
            ("gongkai audit trail", "ms", f"< {TARGET_TRAIL_S * 1000:.0f}"),
        )
    )
    figures.append(Figure(f"console: slowest page, {total:,} events", worst, "s",
                          target=TARGET_PAGE_S))
    figures.append(Figure(f"audit trail: read by subject, {total:,} events", trail_read, "s",
                          target=TARGET_TRAIL_S))
    figures.append(Figure("audit trail: whole command", trail_cli, "s"))
    return figures


def main(argv: list[str] | None = None) -> list[Figure]:
    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else int(os.environ.get("BENCH_EVENTS") or 1_000_000)
    return asyncio.run(measure(n))


if __name__ == "__main__":
    main()
