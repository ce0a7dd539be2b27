"""The HTTP chain load and the checks the fault tests share.

``ChainLoad`` walks posts through the whole chain over HTTP as people and the CMS would: a maker
submits a normative document (intake), the staff and the principal leader sign it (review), the
CMS reports it online (intake /publications). Every request carries an Idempotency-Key and is
retried with it on a 5xx or a broken connection, so an unanswered request that was in fact
recorded is recorded once.

``ServiceProcess`` runs one service as ``gongkai service NAME``, the way deploy runs it, so a
test can kill it with SIGKILL. ``check_log`` and ``check_projections`` are the verdict after a
fault: nothing acknowledged lost, nothing doubled, every read model equal to a rebuild.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from gongkai.calendar import today
from gongkai.eventlog import EventLog, RecordedEvent
from gongkai.events import EventDecodeError
from gongkai.projection import ProjectionStore, make_engine
from gongkai.runtime.service import ServiceContext, discover
from gongkai.runtime.settings import Settings
from tests.waiting import stable, wait_until

GONGKAI = str(Path(sys.executable).parent / "gongkai")
#: Events a post leaves in the log when it goes through the whole chain.
CHAIN_KINDS = {"PostSubmitted": 1, "ReviewSigned": 2, "ReviewConcluded": 1, "PostPublished": 1}


class ChainLoad:
    """People and the CMS over HTTP; what the services acknowledged, and how long it took."""

    def __init__(
        self, client: httpx.AsyncClient, http: dict[str, int], *, tag: str = "load"
    ) -> None:
        from gongkai_demo.county import DEMO

        self.client = client
        self.http = http
        self.tag = tag
        self.headers = DEMO.headers
        #: event id -> stream sequence when the answer names one (intake's do)
        self.acked: dict[str, int | None] = {}
        self.ack_times: list[float] = []
        self.retries = Counter[str]()
        self.published = 0
        self.today = today().isoformat()

    async def call(self, service: str, path: str, person: str, key: str, body: Any) -> Any:
        """POST until answered; a retry carries the same Idempotency-Key, so it records once."""
        url = f"http://127.0.0.1:{self.http[service]}{path}"
        headers = {**self.headers(person), "Idempotency-Key": key}
        while True:
            try:
                r = await self.client.post(url, json=body, headers=headers)
            except httpx.TransportError as exc:
                self.retries[type(exc).__name__] += 1
            else:
                if r.status_code < 500:
                    assert r.status_code in (200, 201), f"{path} {r.status_code} {r.text}"
                    self.ack_times.append(time.monotonic())
                    return r.json()
                self.retries[f"{service} {r.status_code}"] += 1
            await asyncio.sleep(0.2)  # the client's retry back-off (the scenario), not a wait

    async def chain(self, i: int) -> None:
        k = f"{self.tag}-{i}"
        post = await self.call("intake", "/posts", "finance-maker", f"submit-{k}", {
            "unit": "finance",
            "column": "normative_documents",
            "title": f"关于故障演练的通知（{k}号）",
            "body": f"演练文件正文 {k}。",
            "important_kind": "normative_document",
            "origin": "produced",
            "channel": "website",
            "information_date": self.today,
        })
        self.acked[post["event_id"]] = post["sequence"]
        pid, digest = post["post_id"], post["content_digest"]
        for stage, person in (("staff", "finance-staff"), ("leader", "finance-leader")):
            signed = await self.call(
                "review", f"/posts/{pid}/signatures", person, f"{stage}-{k}",
                {"stage": stage, "decision": "agree", "content_digest": digest},
            )
            self.acked[signed["signature"]["event_id"]] = None
        assert signed["concluded"] == "approved", signed
        pub = await self.call("intake", "/publications", "cms", f"publish-{k}", {
            "post_id": pid,
            "unit": "finance",
            "column": "normative_documents",
            "url": f"https://www.example.gov.cn/finance/{k}",
            "online_at": datetime.now(UTC).isoformat(),
            "content_digest": digest,
        })
        self.acked[pub["event_id"]] = pub["sequence"]
        self.published += 1

    async def worker(self, queue: asyncio.Queue[int]) -> None:
        while not queue.empty():
            await self.chain(queue.get_nowait())

    def run(self, posts: int, workers: int) -> list[asyncio.Task[None]]:
        """Start ``workers`` sessions sharing ``posts`` posts; gather the tasks to finish."""
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(posts):
            queue.put_nowait(i)
        return [asyncio.create_task(self.worker(queue)) for _ in range(workers)]


async def answers_reach(load: ChainLoad, n: int, tasks: list[asyncio.Task[None]]) -> None:
    """Wait until the load has had ``n`` answers (failing early if a session died)."""

    def answered() -> bool:
        failed = [t.exception() for t in tasks if t.done() and t.exception()]
        assert not failed, failed
        return len(load.ack_times) >= n

    await wait_until(answered, 300, f"{n} answers", every=0.01)


@dataclass
class ServiceProcess:
    """One service as its own ``gongkai service NAME`` process, restartable after a kill."""

    name: str
    env: dict[str, str]
    log_path: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        env = {**os.environ, **self.env, "GONGKAI_HTTP_PORT": str(self.port)}
        with open(self.log_path, "ab") as log:  # appended across restarts
            self.proc = subprocess.Popen(
                [GONGKAI, "service", self.name],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no ack of the batch in hand."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def tail(self, chars: int = 1500) -> str:
        return f"--- {self.name}\n" + self.log_path.read_text(errors="replace")[-chars:]

    async def ready(self, client: httpx.AsyncClient) -> bool:
        try:
            r = await client.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2)
        except httpx.HTTPError:
            return False
        return r.status_code == 200


async def caught_up(client: httpx.AsyncClient, port: int) -> bool:
    """Ready, and every projection has applied the log as the server counts it (``/status``).

    Readiness alone says "caught up once and not stalled": a service stays ready while a
    burst is being applied, so "has applied everything" is asked of /status.
    """
    try:
        r = await client.get(f"http://127.0.0.1:{port}/status", timeout=5)
    except httpx.HTTPError:
        return False
    if r.status_code != 200:
        return False
    return all(
        st["ready"] and all(p["lag"] == 0 for p in st["projections"])
        for st in r.json()["services"].values()
    )


async def all_ready(client: httpx.AsyncClient, procs: Iterable[ServiceProcess]) -> bool:
    for p in procs:
        if not await p.ready(client):
            return False
    return True


async def until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> float:
    """Poll ``check`` until true; returns the seconds it took."""
    return await wait_until(check, within, what, every=0.05)


async def settle(
    evlog: EventLog, client: httpx.AsyncClient, procs: list[ServiceProcess], within: float = 60
) -> int:
    """Wait until the log stops growing and every service has applied it; its last sequence.

    Services react to the load (freshness records column events, accountability violations),
    so the end of the log moves for a while after the last answer.
    """
    log_stopped = stable(evlog.last_sequence)

    async def rests() -> bool:
        if not await log_stopped():
            return False
        for p in procs:
            if not await caught_up(client, p.port):
                return False
        return True

    await wait_until(rests, within, lambda: "\n".join(p.tail() for p in procs), every=0.3)
    return await evlog.last_sequence()


async def recorded(evlog: EventLog) -> tuple[list[RecordedEvent], list[int]]:
    """The whole log, decoded; and the sequences that do not decode (poison, dead-lettered)."""
    good: list[RecordedEvent] = []
    bad: list[int] = []
    async for msg in evlog.raw_replay():
        try:
            good.append(evlog.decode(msg))
        except EventDecodeError:
            bad.append(msg.metadata.sequence.stream)
    return good, bad


def check_log(events: list[RecordedEvent], acked: dict[str, int | None]) -> Counter[str]:
    """Nothing acknowledged lost, no event and no command's effect recorded twice."""
    ids = Counter(e.envelope.event_id for e in events)
    dups = [i for i, c in ids.items() if c > 1]
    assert not dups, f"duplicated: {dups[:5]}"
    per_command = Counter((e.envelope.command_id, e.envelope.type) for e in events)
    twice = [k for k, c in per_command.items() if c > 1]
    assert not twice, f"one command recorded twice: {twice[:5]}"
    by_id = {e.envelope.event_id: e.seq for e in events}
    lost = [i for i in acked if i not in by_id]
    assert not lost, f"acknowledged but lost: {lost[:5]}"
    wrong = [i for i, s in acked.items() if s is not None and by_id[i] != s]
    assert not wrong, f"an answer named the wrong sequence: {wrong[:5]}"
    return Counter(e.envelope.type for e in events)


def _first_difference(live: ProjectionStore, rebuilt: ProjectionStore, p: Any) -> str:
    """The first table and row where a live projection and its rebuild part."""
    for table in p.tables():
        a, b = list(live.rows(table)), list(rebuilt.rows(table))
        key = [c.name for c in table.primary_key.columns] or [c.name for c in table.columns]
        a.sort(key=lambda r: [str(r[k]) for k in key])
        b.sort(key=lambda r: [str(r[k]) for k in key])
        ka, kb = ({tuple(str(r[k]) for k in key) for r in rows} for rows in (a, b))
        if ka != kb:
            only = sorted(ka - kb)[:5], sorted(kb - ka)[:5]
            return f"{table.name}: only live {only[0]}, only rebuilt {only[1]}"
        for x, y in zip(a, b, strict=False):
            if x != y:
                fields = {k: (x.get(k), y.get(k)) for k in x.keys() | y.keys()
                          if x.get(k) != y.get(k)}
                if set(fields) == {"data"}:  # a JSON document: name the keys that differ
                    dx, dy = json.loads(str(x["data"])), json.loads(str(y["data"]))
                    fields = {k: (dx.get(k), dy.get(k)) for k in dx.keys() | dy.keys()
                              if dx.get(k) != dy.get(k)}
                return f"{table.name} {[x[k] for k in key]}: live != rebuilt in {fields}"[:3000]
        if len(a) != len(b):
            return f"{table.name}: {len(a)} live rows, {len(b)} rebuilt"
    return "no row differs (the digests do)"


def check_projections(
    events: list[RecordedEvent], dbs: dict[str, str], scratch: Path
) -> dict[str, str]:
    """Every service's projections (in ``dbs``) equal a rebuild from ``events``; the digests."""
    ctx = ServiceContext(settings=Settings(data_dir=scratch))
    scratch.mkdir(parents=True, exist_ok=True)
    digests: dict[str, str] = {}
    for name, build in discover().items():
        if name not in dbs:
            continue
        live = ProjectionStore(make_engine(dbs[name]), manage_schema=False)
        for p in build(ctx).projections:
            fresh = type(p)()
            path = scratch / f"{name}-{p.name}.db"
            path.unlink(missing_ok=True)
            rb = ProjectionStore(make_engine(f"sqlite:///{path}"))
            rb.prepare(fresh)
            rb.apply(fresh, [e for e in events if matches(p.filter_subject, e.subject)])
            want = rb.digest(fresh)
            assert live.digest(p) == want, (
                f"{name}/{p.name} differs from a rebuild: {_first_difference(live, rb, p)}"
            )
            digests[f"{name}/{p.name}"] = want
            rb.engine.dispose()
        live.engine.dispose()
    return digests


def matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` one token, ``>`` the rest."""
    pt, st = pattern.split("."), subject.split(".")
    for i, tok in enumerate(pt):
        if tok == ">":
            return len(st) > i
        if i >= len(st) or (tok != "*" and tok != st[i]):
            return False
    return len(pt) == len(st)
