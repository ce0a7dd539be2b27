"""intake: submissions/s through HTTP and through the NATS request path, beside the raw append.

One service process, one nats-server (file storage; ``--sync`` for ``sync_interval: always``), the
intake service alone with its SQLite read models. Every submission is a different post from one
of five makers, each with its own Idempotency-Key, so each is a full command: authenticate
(token lookup), idempotency lookup, unit/column facts, content screening, decide, append with
the expected-sequence check, store the answer.

- HTTP (uvicorn): uvicorn serving the platform's ASGI app on a loopback port; one keep-alive
  connection per client worker, ``--concurrency`` requests in flight. The client is a minimal
  HTTP/1.1 writer/reader: httpx's connection pool costs more CPU than the server at 50
  connections, and it runs on the same cores.
- HTTP (ASGI): the same app through ``httpx.ASGITransport``, no sockets: the HTTP stack's
  cost without the network.
- bus: ``gk.cmd.intake.submit_post`` core-NATS requests, the same concurrency.
- ceiling: the HTTP stack alone, the same client, request bytes and concurrency against
  uvicorn (the same config) in a child process serving an ASGI app that does no gongkai work:
  it reads the body and answers 201 with a body of the size intake answers. ``ceiling-fastapi``
  is the same behind a FastAPI route taking intake's request model (the body parsed and
  validated) and answering the same fixed bytes. What share of the raw append the HTTP stack
  itself reaches on this machine, beside the real path; their CPU is the server child's.
- raw append: nats-py ``publish_async`` of already-built events of the same size, and the
  event-log client's ``EventLog.append_pipelined`` of the same envelopes (the service's own
  client: dedup and expected-sequence headers, signatures).

The HTTP and bus load generators run in a child process (``in_child``), on the same two cores
as the service and nats-server: the figures are a lower bound for a service with the machine to
itself. "service CPU ms/post" is this process's CPU over the path's run divided by the posts
(for the ASGI path it includes the in-process httpx client); it falls as the load rises
(more requests share each socket read, write and flush), so compare it at one concurrency.
Logging is at warning level (at info, intake writes one line per recorded event).

Every ratio divides by the raw NATS append (nats-py ``publish_async`` of the same bytes into the
same nats-server) measured in this run, a round before each path and one after the last
(median); the event-log client's pipelined append is shown beside it.

    python -m bench.bench_intake [N] [--concurrency 50] [--sync]
        [--paths http,asgi,bus,ceiling,ceiling-fastapi]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import psutil
import uvicorn
from nats.js.api import StorageType, StreamConfig

from bench import bench_eventlog as eventlog_bench
from bench.common import Baseline, Figure, Timer, server, table
from bench.load.platform import Platform, ServiceProcess, start_services, wait_ready
from gongkai import subjects
from gongkai.consumer import keep_heap
from gongkai.eventlog import EventLog
from gongkai.events import Actor, Envelope, new_event
from gongkai.events.contracts.intake import PostSubmitted
from gongkai.natsserver import free_port
from gongkai.runtime import logging as gklogging
from gongkai.runtime.clock import SystemClock
from gongkai.runtime.host import make_app
from gongkai.runtime.service import ServiceContext
from gongkai.runtime.settings import Settings
from gongkai_demo.county import DEMO, seed_demo
from gongkai_intake.bootstrap import build
from gongkai_intake.entrypoints.schemas import SubmitPostRequest

UNITS = ("finance", "education", "health", "market", "donghe-town")
BODY = (
    "各乡镇人民政府，县直各部门：为进一步规范财政专项资金管理，提高资金使用效益，"
    "现就有关事项通知如下。一、明确资金使用范围；二、严格审批程序；三、加强监督检查。"
)


def submission(i: int) -> tuple[str, dict[str, Any]]:
    unit = UNITS[i % len(UNITS)]
    return f"{unit}-maker", {
        "unit": unit,
        "column": "other_documents",
        "title": f"关于加强专项资金管理的通知（第{i}号）",
        "body": BODY,
        "information_date": "2026-03-01",
    }


@dataclass(frozen=True)
class Driven:
    """One path's run: its rate, each call's latency, and this process's CPU per call."""

    rate: float
    latencies: list[float]
    cpu_ms: float


async def drive(
    n: int, concurrency: int, one: Callable[[int, int], Awaitable[None]]
) -> Driven:
    """``n`` calls of ``one(i, worker)`` with ``concurrency`` in flight."""
    latencies: list[float] = []
    next_i = 0

    async def worker(w: int) -> None:
        nonlocal next_i
        while next_i < n:
            i = next_i
            next_i += 1
            t0 = time.perf_counter()
            await one(i, w)
            latencies.append(time.perf_counter() - t0)

    cpu0 = time.process_time()
    with Timer() as t:
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    # CPU of the whole process (service and load generator): what the other engineers' load
    # on the shared cores does not change, unlike the rate.
    return Driven(n / t.seconds, latencies, (time.process_time() - cpu0) * 1000 / n)


def check(status: int, body: Any) -> None:
    if status != 201:
        raise RuntimeError(f"submission failed: {status} {body}")


async def via_asgi(client: httpx.AsyncClient, n: int, concurrency: int, tag: str) -> Driven:
    async def one(i: int, _: int) -> None:
        person, body = submission(i)
        r = await client.post("/posts", json=body, headers=DEMO.headers(person, f"{tag}-{i}"))
        check(r.status_code, r.text)

    return await drive(n, concurrency, one)


class Connection:
    """One keep-alive HTTP/1.1 connection that POSTs JSON and reads the answer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{head}\r\n".encode()
            + body
        )
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)


async def via_uvicorn(ports: list[int], n: int, concurrency: int) -> Driven:
    # With several intake processes each client connection keeps to one, in turn, as a
    # Kubernetes Service spreads connections over pods.
    conns = [
        Connection(*await asyncio.open_connection("127.0.0.1", ports[w % len(ports)]))
        for w in range(concurrency)
    ]

    async def one(i: int, w: int) -> None:
        person, body = submission(i)
        data = json.dumps(body, ensure_ascii=False).encode()
        status, answer = await conns[w].post("/posts", data, DEMO.headers(person, f"http-{i}"))
        check(status, answer[:300])

    try:
        return await drive(n, concurrency, one)
    finally:
        for c in conns:
            c.writer.close()


async def via_bus(url: str, n: int, concurrency: int) -> Driven:
    nc = await nats.connect(url)
    subject = subjects.command_subject("intake", "submit_post")

    async def one(i: int, _: int) -> None:
        person, body = submission(i)
        msg = await nc.request(
            subject,
            json.dumps(body, ensure_ascii=False).encode(),
            headers=DEMO.headers(person, f"bus-{i}"),
            timeout=30,
        )
        check(int((msg.headers or {}).get("Gk-Status", 0)), msg.data[:300])

    try:
        return await drive(n, concurrency, one)
    finally:
        await nc.close()


def raw_events(n: int, tag: str) -> list[Envelope[Any]]:
    """Envelopes of the size a submission records, ready to append."""
    actor = Actor(person="finance-maker", role="maker", unit="finance")
    now = datetime.now(UTC)
    return [
        new_event(
            PostSubmitted(
                unit="finance",
                column="other_documents",
                title=f"关于加强专项资金管理的通知（第{i}号）",
                body=BODY,
                origin="produced",
                channel="website",
                information_date=date(2026, 3, 1),
                content_digest="a" * 64,
            ),
            aggregate_id=f"{tag}-{i}",
            actor=actor,
            command_id=f"{tag}-{i}",
            recorded_at=now,
        )
        for i in range(n)
    ]


async def raw_append(evlog: EventLog, n: int, tag: str) -> float:
    """The event-log client's pipelined append of ready envelopes (signed, expected sequence)."""
    evs = raw_events(n, tag)
    with Timer() as t:
        results = await evlog.append_pipelined([(e, 0) for e in evs])
    bad = [r for r in results if isinstance(r, Exception)]
    if bad:
        raise RuntimeError(f"raw append failed: {bad[:3]}")
    return n / t.seconds


#: The raw append's own stream on the same nats-server (file storage, the same fsync setting):
#: unsigned bytes in the service's stream would be dead-lettered one by one by the service's
#: directory projection, which reads every event, and bill the paths for it.
RAW_STREAM = "BENCH_RAW"


async def raw_stream(url: str) -> None:
    nc = await nats.connect(url)
    await nc.jetstream().add_stream(
        StreamConfig(name=RAW_STREAM, subjects=["bench.raw.>"], storage=StorageType.FILE)
    )
    await nc.close()


async def nats_append(url: str, n: int, tag: str) -> float:
    """nats-py ``publish_async`` of the same bytes, no headers: the raw NATS append."""
    payloads = [(f"bench.raw.{tag}.{i}", e.to_json()) for i, e in enumerate(raw_events(n, tag))]
    return await eventlog_bench.raw_append(url, payloads)


def ms(latencies: list[float], q: float) -> str:
    return f"{statistics.quantiles(latencies, n=100)[int(q) - 1] * 1000:.1f}"


PATHS = ("http", "asgi", "bus")
#: The HTTP stack's own ceiling: on request only (``--paths ...,ceiling``).
CEILINGS = ("ceiling", "ceiling-fastapi")
LABELS = {
    "http": "HTTP, uvicorn on loopback",
    "asgi": "HTTP, ASGI transport (no sockets)",
    "bus": "NATS request gk.cmd.intake.submit_post",
    "ceiling": "ceiling: uvicorn + bare ASGI app, no gongkai work",
    "ceiling-fastapi": "ceiling: uvicorn + FastAPI, request model parsed, fixed answer",
}
#: The summary's figures, and the issue's targets for them (share of the raw NATS append).
FIGURES = {
    "http": ("intake: submissions over HTTP (uvicorn)", 0.15),
    "bus": ("intake: submissions over NATS request", 0.15),
}


async def serve_http(app: Any, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """uvicorn as the platform's host runs it (``gongkai.runtime.host``), on a loopback port."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    http = uvicorn.Server(config)
    task = asyncio.create_task(http.serve())
    while not http.started:
        await asyncio.sleep(0.01)
    return http, task


def ceiling_app(variant: str, answer: bytes) -> Any:
    """An ASGI app that does no gongkai work and answers ``POST /posts`` as intake does: 201,
    ``application/json``, ``answer`` (bytes of the size of intake's answer).

    ``bare``: a plain ASGI callable that reads the request's body. ``fastapi``: a FastAPI route
    whose body is intake's request model (``SubmitPostRequest``, parsed and validated), with the
    same fixed answer: what FastAPI and pydantic add before any gongkai work.
    """
    head = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(answer))]

    async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        await send({"type": "http.response.start", "status": 201, "headers": head})
        await send({"type": "http.response.body", "body": answer})

    if variant == "bare":
        return bare

    from fastapi import FastAPI
    from fastapi.responses import Response

    api = FastAPI()

    # (``SubmitPostRequest`` is imported at the top: FastAPI resolves the string annotation in
    # this module's globals.)
    @api.post("/posts", status_code=201)
    async def posts(body: SubmitPostRequest) -> Response:
        return Response(answer, status_code=201, media_type="application/json")

    return api


def serve_ceiling(variant: str, port: int, size: int) -> None:
    """The child of ``ceiling_server``: uvicorn on ``port``, as ``serve_http`` runs it."""
    app = ceiling_app(variant, b'{"x":"' + b"a" * max(size - 8, 0) + b'"}')
    gc.freeze()  # as the real path's process does once it serves (keep_heap)

    async def main() -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
        await uvicorn.Server(config).serve()

    asyncio.run(main())


async def ceiling_server(variant: str, size: int) -> tuple[asyncio.subprocess.Process, int]:
    """A ``serve_ceiling`` child on a free port, once it accepts connections."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.bench_intake", "--serve-ceiling", variant,
        "--target", str(port), "--answer-size", str(size),
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if proc.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the {variant} ceiling server did not start") from None
            await asyncio.sleep(0.05)
            continue
        w.close()
        return proc, port


async def via_ceiling(variant: str, size: int, n: int, concurrency: int) -> Driven:
    """The ``http`` path's load against ``ceiling_app``; the CPU is the server child's."""
    proc, port = await ceiling_server(variant, size)
    server_proc = psutil.Process(proc.pid)
    try:
        cpu0 = server_proc.cpu_times()
        got = await in_child("http", str(port), n, concurrency)
        cpu1 = server_proc.cpu_times()
    finally:
        proc.terminate()
        await proc.wait()
    busy = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    return Driven(got.rate, got.latencies, busy * 1000 / n)


async def answer_size(app: Any) -> int:
    """The bytes of intake's answer to one submission (201), for the ceiling's answer."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://intake"
    ) as c:
        person, body = submission(0)
        r = await c.post("/posts", json=body, headers=DEMO.headers(person, "size-0"))
        check(r.status_code, r.text)
        return len(r.content)


async def generate(path: str, target: str, n: int, concurrency: int) -> Driven:
    """The load of the ``http`` path (target: the port) or the ``bus`` path (the NATS URL)."""
    if path == "http":
        return await via_uvicorn([int(p) for p in target.split(",")], n, concurrency)
    return await via_bus(target, n, concurrency)


async def in_child(
    path: str, target: str, n: int, concurrency: int, workers: list[ServiceProcess] | None = None
) -> Driven:
    """``generate`` in a process of its own, as a deployed intake's callers are: this process
    only serves, so its CPU per submission is the service's (the load generator's nats-py
    client alone costs about as much as the service's handling of a request)."""
    workers = workers or []
    cpu0 = time.process_time() + sum(w.cpu_seconds() for w in workers)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.bench_intake", str(n), "--concurrency", str(concurrency),
        "--generate", path, "--target", target,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"the {path} load generator failed ({proc.returncode})")
    got = json.loads(out.splitlines()[-1])
    cpu1 = time.process_time() + sum(w.cpu_seconds() for w in workers)
    return Driven(got["rate"], got["latencies"], (cpu1 - cpu0) * 1000 / n)


async def start_workers(url: str, data_dir: Path, keys: Path, count: int) -> list[ServiceProcess]:
    """``count`` more intake processes (``gongkai service intake``) on the same log, each with
    its own database and port and the first one's keys, as replicas of intake are deployed:
    they share the bus's requests (one queue group) and the HTTP connections."""
    workers: list[ServiceProcess] = []
    for k in range(count):
        platform = start_services(
            url,
            data_dir / f"worker{k}",
            names=("intake",),
            extra_env={"GONGKAI_KEYS_DIR": str(keys)},
        )
        workers.extend(platform.processes.values())
    async with httpx.AsyncClient() as client:
        await wait_ready(client, Platform({f"w{i}": w for i, w in enumerate(workers)}), 120)
    return workers


async def run(
    n: int, concurrency: int, sync: bool, paths: tuple[str, ...] = PATHS, workers: int = 1
) -> tuple[dict[str, float], dict[str, Driven]]:
    """Each path in turn, a round of both raw appends before each and after the last.

    ``workers``: intake processes serving the HTTP and bus paths, this one and ``workers - 1``
    more (the ASGI path is this process's alone).
    """
    raws: dict[str, list[float]] = {"nats": [], "client": []}
    driven: dict[str, Driven] = {}
    with server(sync_always=sync) as srv, tempfile.TemporaryDirectory() as d:
        settings = Settings(data_dir=Path(d), http_port=free_port())
        svc = build(ServiceContext(settings=settings, clock=SystemClock(), nats_url=srv.url))
        await svc.start()
        await seed_demo(svc.evlog, datetime.now(UTC), units=UNITS)
        await svc.wait_caught_up()
        app = make_app([svc])
        keep_heap()  # as ``gongkai up`` and ``gongkai service`` do once they serve (Host.serve)
        extra = await start_workers(srv.url, Path(d), settings.keys_path, workers - 1)

        # Warm-up: first-use costs (imports, SQLite pages, JIT-free but cache-cold paths).
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://intake"
        ) as c:
            await via_asgi(c, 50, 10, "warm")

        size = await answer_size(app)
        await raw_stream(srv.url)

        async def raw_round(r: int) -> None:
            raws["nats"].append(await nats_append(srv.url, n, f"nats{r}"))
            raws["client"].append(await raw_append(svc.evlog, n, f"raw{r}"))

        for r, path in enumerate(paths):
            await raw_round(r)
            if path == "http":
                http, task = await serve_http(app, settings.http_port)
                ports = ",".join(str(p) for p in [settings.http_port, *(w.port for w in extra)])
                driven[path] = await in_child(path, ports, n, concurrency, extra)
                http.should_exit = True
                await task
            elif path == "asgi":
                async with httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://intake", timeout=30
                ) as c:
                    driven[path] = await via_asgi(c, n, concurrency, "asgi")
            elif path in CEILINGS:
                variant = "bare" if path == "ceiling" else "fastapi"
                driven[path] = await via_ceiling(variant, size, n, concurrency)
            else:
                driven[path] = await in_child(path, srv.url, n, concurrency, extra)
        await raw_round(len(paths))
        for w in extra:
            w.stop()
        await svc.stop()
    return {k: statistics.median(v) for k, v in raws.items()}, driven


def report(
    n: int,
    concurrency: int,
    sync: bool,
    raw: dict[str, float],
    driven: dict[str, Driven],
    workers: int = 1,
) -> list[Figure]:
    base = raw["nats"]
    rounds = len(driven) + 1
    rows = [
        ("raw NATS append (nats-py publish_async)", f"{base:,.0f}", "100%", "", "", ""),
        (
            "event-log client (EventLog.append_pipelined)",
            f"{raw['client']:,.0f}",
            f"{raw['client'] / base:.1%}",
            "",
            "",
            "",
        ),
    ]
    for path, got in driven.items():
        rows.append(
            (
                LABELS[path],
                f"{got.rate:,.0f}",
                f"{got.rate / base:.1%}",
                ms(got.latencies, 50),
                ms(got.latencies, 99),
                f"{got.cpu_ms:.2f}",
            )
        )
    sync_note = "sync_interval: always" if sync else "default fsync interval"
    la = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"intake submissions: {n} per path, {concurrency} in flight, {workers} intake "
        f"process{'es' if workers > 1 else ''}, nats-server {sync_note}; "
        f"raw rates: median of {rounds} rounds of {n} events interleaved with the paths; "
        f"load average {la}"
    )
    print(
        table(
            rows,
            ("path", "per s", "of raw NATS append", "p50 ms", "p99 ms", "service CPU ms/post"),
        )
    )
    baseline = Baseline(f"raw nats-py publish_async, median of {rounds}", base)
    return [
        Figure(FIGURES[path][0], got.rate, "posts/s", baseline, share_target=FIGURES[path][1])
        for path, got in driven.items()
        if path in FIGURES
    ]


def main(argv: list[str] | None = None) -> list[Figure]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("n", nargs="?", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--sync", action="store_true", help="nats-server syncs every write")
    p.add_argument(
        "--workers", type=int, default=1, help="intake processes serving the http and bus paths"
    )
    p.add_argument(
        "--paths",
        default=",".join(PATHS),
        help=f"which paths to drive, of {','.join(PATHS + CEILINGS)}",
    )

    p.add_argument("--generate", choices=("http", "bus"), help=argparse.SUPPRESS)
    p.add_argument("--target", help=argparse.SUPPRESS)
    p.add_argument("--serve-ceiling", choices=("bare", "fastapi"), help=argparse.SUPPRESS)
    p.add_argument("--answer-size", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve_ceiling:  # the child of ceiling_server: serve until terminated
        serve_ceiling(args.serve_ceiling, int(args.target), args.answer_size)
        return []
    if args.generate:  # the child of in_child: drive, then one JSON line
        got = asyncio.run(generate(args.generate, args.target, args.n, args.concurrency))
        print(json.dumps({"rate": got.rate, "latencies": got.latencies}))
        return []
    paths = tuple(x for x in args.paths.split(",") if x)
    if unknown := set(paths) - set(PATHS + CEILINGS):
        p.error(f"unknown paths: {', '.join(sorted(unknown))}")
    # One info line per recorded event would measure the terminal; warnings still show.
    gklogging.configure("json", "warning")
    raw, driven = asyncio.run(run(args.n, args.concurrency, args.sync, paths, args.workers))
    return report(args.n, args.concurrency, args.sync, raw, driven, args.workers)


if __name__ == "__main__":
    main()
