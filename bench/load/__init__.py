"""Load through HTTP: the demo county's people and CMS against the real platform.

    python -m bench.load [--posts 500] [--concurrency 16] [--no-sync]

Starts a nats-server (JetStream, ``sync_interval: always`` like the embedded default) and the
four services, each as its own ``gongkai service NAME`` process with its own SQLite file, loads
the demo county (25 units, their makers, staff, secrecy officers and leaders, the county
office and the CMS account), then walks ``--posts`` posts through the chain with
``--concurrency`` sessions, each a person at a time:

- the unit's maker submits the post (intake ``POST /posts``): every fifth a normative document
  (review form, 20-working-day deadline), the others news, work arrangements, other documents
  or an administrative licence (10-working-day deadline), spread over the 25 units;
- every fourth post, the leader opens their review queue (review ``GET /people/{p}/queue``);
- the staff gives the staff opinion and the principal leader approves (review
  ``POST /posts/{id}/signatures``, twice); one post in fifty goes online with the staff opinion
  only, which accountability must record as published without review;
- the CMS reports the item online (intake ``POST /publications``), which freshness folds into
  the column (``ColumnRefreshed`` when it closes a stale episode) and accountability into the
  post's chain of custody;
- every fifth post the county office reads the unit's columns (freshness), every tenth its
  violations (accountability).

The clock ticks as deployed, only faster: freshness re-checks every second
(``GONGKAI_FRESHNESS_TICK_SECONDS=1``; it re-decides every column when the date changes, and each
publication's column at once), accountability decides after every applied batch.

Reported: throughput and latency percentiles per route; each service's consumer lag (stream
last sequence minus what its projections applied, from its ``/metrics``), sampled twice a second
during the load, its peak; the time from the last answer until every service has applied
the whole log and the log stopped growing (the drain); each process's CPU a post; and what the
nats-server was asked a post (messages in and out, JetStream API requests, direct gets: its
``/varz`` and ``/subsz``), the first place to look when its CPU a post moves. Every request
must succeed: a non-2xx answer is counted per route and fails the run.

The load generator runs on the same two cores as the services and nats-server: the figures are
a lower bound, and they move with whatever else runs on the machine (the load average is
printed with them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.common import Figure, Timer, server, stop_on_sigterm, table
from bench.load.client import Connection
from bench.load.platform import SERVICES, Platform, start_services, wait_ready
from gongkai.calendar import today
from gongkai.eventlog import EventLog, StreamSettings
from gongkai.runtime.settings import Settings
from gongkai.trust.keys import provision

BODY = (
    "各乡镇人民政府，县直各部门：为进一步规范财政专项资金管理，提高资金使用效益，"
    "现就有关事项通知如下。一、明确资金使用范围；二、严格审批程序；三、加强监督检查。"
)
ORDINARY_COLUMNS = (
    "work_arrangements",
    "leaders_activities",
    "other_documents",
    "administrative_licensing",
)
#: One post in this many goes online without the leader's approval.
UNREVIEWED_EVERY = 50


@dataclass
class Route:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class LoadResult:
    posts: int
    concurrency: int
    seconds: float
    routes: dict[str, Route]
    #: Events the log grew by during the load and the drain (the services' reactions included).
    events: int
    #: Highest consumer lag seen per service (events), over all its consumers.
    peak_lag: dict[str, float]
    #: Lag per service at the moment of the last answer.
    lag_at_end: dict[str, float]
    drain_s: float
    load_average: tuple[float, float, float]
    #: Readiness probes (every service's /readyz at each sample) during the load, and how many
    #: of them did not answer 200: a Kubernetes probe would have taken the pod out of its
    #: Service for each.
    probes: int = 0
    not_ready: int = 0
    #: CPU seconds each service (and the nats-server, "nats-server") used from the first
    #: request until drained: where the two cores went.
    cpu_s: dict[str, float] = field(default_factory=dict)
    #: What the nats-server was asked over the same span (``ServerCounts``' fields).
    server_counts: dict[str, int] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return sum(len(r.latencies) for r in self.routes.values())

    @property
    def errors(self) -> int:
        return sum(len(r.errors) for r in self.routes.values())

    def figures(self) -> list[Figure]:
        """Headline figures for ``make bench``'s summary. No ratio: this run measures no raw
        rate of its own, and one from another benchmark's run is not this machine as it was."""
        return [
            Figure("load: posts through the chain", self.posts / self.seconds, "posts/s"),
            Figure("load: HTTP requests", self.requests / self.seconds, "requests/s"),
            Figure("load: events recorded", self.events / self.seconds, "events/s"),
            Figure("load: drain after the last answer", self.drain_s, "s"),
        ]


def server_cpu(pid: int) -> float:
    """The nats-server's user + system CPU seconds so far."""
    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


#: What ``server_counts`` reads, in the report's words.
SERVER_COUNTS = {
    "in_msgs": "messages in",
    "out_msgs": "messages out",
    "api": "JetStream API requests",
    "direct_gets": "direct gets",
}


async def server_counts(client: httpx.AsyncClient, monitor: str) -> dict[str, int]:
    """The nats-server's counters so far, from its monitoring port: messages in and out (every
    client's, the services' and this process's); JetStream API requests (infos, message gets,
    consumers made: what reaches the system account's API subscription; ``/varz``'s own API
    count leaves message gets out); direct gets, which the stream answers itself."""
    varz = (await client.get(f"{monitor}/varz", timeout=10)).json()
    subsz = (await client.get(f"{monitor}/subsz?subs=1&limit=100000", timeout=10)).json()
    api = direct = 0
    for sub in subsz.get("subscriptions_list", []):
        subject, msgs = sub.get("subject", ""), int(sub.get("msgs", 0))
        if subject.startswith("$JS.API.DIRECT.GET."):
            direct += msgs
        elif subject == "$JS.API.>" and sub.get("account") == "$SYS":
            api += msgs
    return {
        "in_msgs": int(varz["in_msgs"]),
        "out_msgs": int(varz["out_msgs"]),
        "api": api,
        "direct_gets": direct,
    }


def _ms(values: list[float], q: float) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0] * 1000:.1f}"
    return f"{statistics.quantiles(values, n=100, method='inclusive')[int(q) - 1] * 1000:.1f}"


class Session:
    """One person at a time of the county walking posts through the chain."""

    def __init__(
        self, ports: dict[str, int], result: dict[str, Route], tag: str, units: Sequence[str]
    ) -> None:
        from gongkai_demo.county import DEMO

        self.conns = {name: Connection(port) for name, port in ports.items()}
        self.routes = result
        self.tag = tag
        self.headers = DEMO.headers
        self.units = list(units)
        self.today = today().isoformat()

    async def call(
        self,
        service: str,
        route: str,
        method: str,
        path: str,
        person: str,
        key: str | None = None,
        body: Any = None,
    ) -> Any:
        headers = self.headers(person, key)
        if key is None:
            del headers["Idempotency-Key"]
        t0 = time.perf_counter()
        status, answer = await self.conns[service].request(method, path, headers, body)
        elapsed = time.perf_counter() - t0
        stats = self.routes[route]
        if not 200 <= status < 300:
            stats.errors.append(f"{status} {str(answer)[:200]}")
            return None
        stats.latencies.append(elapsed)
        return answer

    async def post(self, i: int) -> None:
        unit = self.units[i % len(self.units)]
        k = f"{self.tag}-{i}"
        body: dict[str, Any] = {
            "unit": unit,
            "title": f"关于加强专项资金管理的通知（{k}号）",
            "body": BODY,
            "information_date": self.today,
        }
        if i % 5 == 0:
            body |= {
                "column": "normative_documents",
                "important_kind": "normative_document",
                "origin": "produced",
                "channel": "website",
            }
        else:
            body["column"] = ORDINARY_COLUMNS[(i // 5) % len(ORDINARY_COLUMNS)]
        post = await self.call(
            "intake", "intake POST /posts", "POST", "/posts", f"{unit}-maker", f"s-{k}", body
        )
        if post is None:
            return
        pid, digest = post["post_id"], post["content_digest"]
        if i % 4 == 0:
            leader = f"{unit}-leader"
            await self.call(
                "review", "review GET /people/{p}/queue", "GET", f"/people/{leader}/queue", leader
            )
        stages = ("staff",) if i % UNREVIEWED_EVERY == 7 else ("staff", "leader")
        for stage in stages:
            signed = await self.call(
                "review",
                f"review POST /posts/{{id}}/signatures ({stage})",
                "POST",
                f"/posts/{pid}/signatures",
                f"{unit}-{stage}",
                f"{stage}-{k}",
                {"stage": stage, "decision": "agree", "opinion": "同意", "content_digest": digest},
            )
            if signed is None:
                return
        await self.call(
            "intake",
            "intake POST /publications",
            "POST",
            "/publications",
            "cms",
            f"p-{k}",
            {
                "post_id": pid,
                "unit": unit,
                "column": body["column"],
                "url": f"https://www.wenhe.example.gov.cn/{unit}/{pid}.html",
                "online_at": datetime.now(UTC).isoformat(),
                "content_digest": digest,
            },
        )
        if i % 5 == 0:
            await self.call(
                "freshness",
                "freshness GET /units/{u}/columns",
                "GET",
                f"/units/{unit}/columns",
                "office-reader",
            )
        if i % 10 == 0:
            await self.call(
                "accountability",
                "accountability GET /violations",
                "GET",
                f"/violations?unit={unit}",
                "office-reader",
            )

    def close(self) -> None:
        for c in self.conns.values():
            c.close()


class LagSampler:
    """Polls every service's ``/metrics`` for ``gongkai_consumer_lag``; keeps the peaks."""

    def __init__(self, client: httpx.AsyncClient, platform: Platform) -> None:
        self.client = client
        self.platform = platform
        self.peak: dict[str, float] = defaultdict(float)
        self.last: dict[str, float] = {}
        self.probes = 0
        self.not_ready = 0

    async def sample(self) -> dict[str, float]:
        """Each service's largest lag over its consumers now (inf: no answer)."""
        names = list(self.platform.processes)
        answers = await asyncio.gather(
            *(self.platform.processes[n].lags(self.client) for n in names)
        )
        now: dict[str, float] = {}
        for name, lags in zip(names, answers, strict=True):
            now[name] = float("inf") if lags is None else max(lags.values(), default=0.0)
            if lags is not None:
                self.peak[name] = max(self.peak[name], now[name])
        self.last = now
        return now

    async def probe(self) -> None:
        """Every service's /readyz once, as a readiness probe would ask it."""
        procs = list(self.platform.processes.values())
        answers = await asyncio.gather(*(p.ready(self.client) for p in procs))
        self.probes += len(answers)
        self.not_ready += answers.count(False)

    async def run(self, every: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.gather(self.sample(), self.probe())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)


async def drain(evlog: EventLog, sampler: LagSampler, within: float) -> float:
    """Seconds until every service reports no lag and the log stopped growing.

    The services react to the load after its last answer (freshness records column events,
    accountability violations), so the end of the log moves for a while: drained means two
    samples in a row with the same last sequence and every lag zero.
    """
    t0 = time.monotonic()
    previous = -1
    while True:
        last = await evlog.last_sequence()
        lags = await sampler.sample()
        if last == previous and all(v == 0 for v in lags.values()):
            return time.monotonic() - t0
        previous = last
        if time.monotonic() - t0 > within:
            raise TimeoutError(f"not drained within {within} s: {lags}")
        await asyncio.sleep(0.1)


async def run(
    posts: int,
    concurrency: int,
    *,
    sync: bool = True,
    work_dir: Path | None = None,
    ready_within: float = 120,
    units: Sequence[str] | None = None,
    spy: Sequence[tuple[str, Path]] = (),
) -> LoadResult:
    """Start the platform, load the demo county, drive ``posts`` posts; the figures.

    ``units``: only these demo units (and the county office) are loaded and post; fewer
    directory events to catch up on at start, for a quick smoke run. ``spy``: a py-spy flame
    graph of each named service's process while the posts are walked
    (``bench/profiles/chain-*.svg``), all sampled during the same walk.
    """
    from gongkai_demo.county import DEMO, seed_demo

    posting = tuple(units or DEMO.units)

    with (
        server(sync_always=sync, monitor=True) as srv,
        tempfile.TemporaryDirectory(prefix="gk-load-") as tmp,
    ):
        base = work_dir or Path(tmp)
        # The services' signing keys and trust anchors, made before any service starts: the
        # directory is recorded as intake, signed, or every service refuses it (an unsigned
        # directory left every token unknown and every request a 401).
        keys = provision(Settings.from_env(data_dir=base / "var").keys_path)
        evlog = await EventLog.connect(srv.url, keys=keys)
        platform = start_services(
            srv.url, base / "var", extra_env={"GONGKAI_FRESHNESS_TICK_SECONDS": "1"}
        )
        client = httpx.AsyncClient()
        sessions: list[Session] = []
        recorders: list[subprocess.Popen[bytes]] = []
        try:
            await evlog.ensure_stream(StreamSettings())  # the services make the same one
            await seed_demo(evlog, datetime.now(UTC), units=units)
            await wait_ready(client, platform, ready_within)
            sampler = LagSampler(client, platform)
            await drain(evlog, sampler, ready_within)  # the directory applied everywhere
            start_seq = await evlog.last_sequence()

            routes: dict[str, Route] = defaultdict(Route)
            sessions = [
                Session(platform.ports, routes, f"w{w}", posting) for w in range(concurrency)
            ]
            queue: asyncio.Queue[int] = asyncio.Queue()
            for i in range(posts):
                queue.put_nowait(i)

            async def walk(s: Session) -> None:
                while not queue.empty():
                    await s.post(queue.get_nowait())

            def cpu_now() -> dict[str, float]:
                now = {n: p.cpu_seconds() for n, p in platform.processes.items()}
                assert srv.proc is not None
                now["nats-server"] = server_cpu(srv.proc.pid)
                now["load generator (this process)"] = time.process_time()
                return now

            for name, out in spy:
                fmt = "raw" if out.suffix == ".txt" else "flamegraph"
                pid = str(platform.processes[name].proc.pid)
                recorders.append(
                    subprocess.Popen(
                        [str(Path(sys.executable).parent / "py-spy"), "record", "--rate", "100",
                         "--nolineno", "--format", fmt, "-o", str(out), "--pid", pid],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
            monitor = f"http://{srv.host}:{srv.monitor_port}"
            counts0 = await server_counts(client, monitor)
            cpu0 = cpu_now()
            stop = asyncio.Event()
            sampling = asyncio.create_task(sampler.run(0.5, stop))
            with Timer() as t:
                await asyncio.gather(*(walk(s) for s in sessions))
            stop.set()
            await sampling
            lag_at_end = dict(await sampler.sample())
            drain_s = await drain(evlog, sampler, 300)
            events = await evlog.last_sequence() - start_seq
            cpu1 = cpu_now()
            counts1 = await server_counts(client, monitor)
            for recorder in recorders:
                recorder.send_signal(signal.SIGINT)  # py-spy writes its graph on SIGINT
            for recorder in recorders:
                recorder.wait(60)
            for name, p in platform.processes.items():
                if p.proc.poll() is not None:
                    raise RuntimeError(f"{name} died during the load\n{p.tail()}")
            return LoadResult(
                posts=posts,
                concurrency=concurrency,
                seconds=t.seconds,
                routes=dict(routes),
                events=events,
                peak_lag=dict(sampler.peak),
                lag_at_end=lag_at_end,
                drain_s=drain_s,
                load_average=os.getloadavg(),
                probes=sampler.probes,
                not_ready=sampler.not_ready,
                cpu_s={n: cpu1[n] - cpu0[n] for n in cpu0},
                server_counts={k: counts1[k] - counts0[k] for k in counts0},
            )
        finally:
            for recorder in recorders:
                if recorder.poll() is None:
                    recorder.kill()
            for s in sessions:
                s.close()
            await client.aclose()
            platform.stop()
            await evlog.close()


def report(res: LoadResult) -> str:
    rows: list[tuple[str, ...]] = []
    for name in sorted(res.routes, key=lambda n: (n.split()[0], n)):
        r = res.routes[name]
        lat = r.latencies
        rows.append(
            (
                name,
                f"{len(lat):,}",
                f"{len(lat) / res.seconds:,.1f}",
                _ms(lat, 50),
                _ms(lat, 95),
                _ms(lat, 99),
                f"{max(lat) * 1000:.1f}" if lat else "-",
                str(len(r.errors)),
            )
        )
    la = ", ".join(f"{x:.2f}" for x in res.load_average)
    out = [
        f"load: {res.posts} posts, {res.concurrency} sessions, {res.seconds:.1f} s "
        f"(load average {la})",
        table(
            rows,
            ("route", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors"),
        ),
        "",
        f"posts through the chain: {res.posts / res.seconds:,.1f}/s; HTTP requests: "
        f"{res.requests / res.seconds:,.1f}/s; events recorded: {res.events:,} "
        f"({res.events / res.seconds:,.1f}/s, reactions included)",
        "",
        table(
            [
                (
                    name,
                    f"{res.peak_lag.get(name, 0):,.0f}",
                    f"{res.lag_at_end.get(name, 0):,.0f}",
                )
                for name in SERVICES
            ],
            ("service", "peak lag (events)", "lag at last answer"),
        ),
        f"drained {res.drain_s:.2f} s after the last answer "
        "(every service applied the whole log, which stopped growing)",
        f"readiness under load: {res.probes:,} probes of /readyz, {res.not_ready:,} not 200",
        "",
        table(
            [
                (name, f"{cpu:.1f}", f"{cpu * 1000 / res.posts:.1f}")
                for name, cpu in res.cpu_s.items()
            ]
            + [
                (
                    "all of them",
                    f"{sum(res.cpu_s.values()):.1f}",
                    f"{sum(res.cpu_s.values()) * 1000 / res.posts:.1f}",
                )
            ],
            ("process", "CPU s, load and drain", "CPU ms per post"),
        ),
    ]
    if res.server_counts:
        asked = ", ".join(
            f"{res.server_counts[k] / res.posts:,.2f} {what}"
            for k, what in SERVER_COUNTS.items()
            if k in res.server_counts
        )
        out += ["", f"nats-server, a post (load and drain): {asked}"]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> list[Figure]:
    p = argparse.ArgumentParser(
        prog="python -m bench.load", description=(__doc__ or "").splitlines()[0]
    )
    p.add_argument("--posts", type=int, default=500, help="posts walked through the chain")
    p.add_argument("--concurrency", type=int, default=16, help="sessions at once")
    p.add_argument(
        "--no-sync", action="store_true", help="nats-server without sync_interval: always"
    )
    p.add_argument(
        "--spy",
        metavar="NAME=FILE",
        action="append",
        default=[],
        help="a py-spy flame graph of service NAME during the walk (FILE.txt: collapsed "
        "stacks); may be given once for each service",
    )
    args = p.parse_args(argv)
    spy = []
    for arg in args.spy:
        name, _, out = arg.partition("=")
        if name not in SERVICES or not out:
            p.error(f"--spy NAME=FILE, NAME one of {', '.join(SERVICES)}")
        spy.append((name, Path(out)))
    stop_on_sigterm()
    res = asyncio.run(run(args.posts, args.concurrency, sync=not args.no_sync, spy=spy))
    print(report(res))
    if res.errors:
        for name, r in res.routes.items():
            for e in r.errors[:3]:
                print(f"error on {name}: {e}")
        raise SystemExit(f"{res.errors} requests failed")
    return res.figures()
