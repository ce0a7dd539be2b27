"""Same facts, same verdict, at any delay (issue 13), through HTTP against the running platform.

The four services run as their own ``gongkai service NAME`` processes on a real nats-server,
as deploy runs them. Fifty posts each go: submitted, staff and principal leader sign (approved),
revised by the maker — and then the CMS reports the **old**, approved digest online. Review voids
the overtaken chain as a reaction to the revision, so the publication report lands before or
after that void. The verdict must not care: every one of the fifty is
``published_without_review``, naming the same people, and the trail says so.

Both orders are made to happen, not hoped for (a test that waited for the race to fall both ways
failed at random): half the posts are revised and reported online while the review process is
stopped (SIGSTOP: it cannot void before the report), the other half are reported once the void
is in the trail, after a delay between 0 and 2 s (the CMS's own delay: the scenario, not a wait
for a result). Every wait for a result polls the services until it holds.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gongkai.eventlog import EventLog, StreamSettings
from gongkai.natsserver import NatsServer, free_port
from tests.chain import ServiceProcess, all_ready, settle, until

SERVICES = ("intake", "review", "freshness", "accountability")
RUNS = 50
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
async def running(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[EventLog, httpx.AsyncClient, dict[str, ServiceProcess]]]:
    from gongkai_demo.county import seed_demo

    base: Path = tmp_path_factory.mktemp("verdict")
    server = NatsServer(store_dir=base / "nats", sync_always=True).start()
    procs = {
        n: ServiceProcess(
            n,
            {
                "GONGKAI_NATS_URL": server.url,
                "GONGKAI_DATA_DIR": str(base / "var"),
                f"GONGKAI_DB_URL_{n.upper()}": f"sqlite:///{base / n}.db",
                "GONGKAI_LOG_FORMAT": "json",
            },
            base / f"{n}.log",
            free_port(),
        ).start()
        for n in SERVICES
    }
    evlog = await EventLog.connect(server.url)
    client = httpx.AsyncClient(timeout=30)
    try:
        await evlog.ensure_stream(StreamSettings())
        await seed_demo(evlog, datetime.now(UTC), units=["finance"])
        logs = "\n".join(p.tail() for p in procs.values())
        await until(lambda: all_ready(client, procs.values()), 90, "services ready\n" + logs)
        yield evlog, client, procs
    finally:
        await client.aclose()
        for proc in procs.values():
            proc.stop()
        await evlog.close()
        server.stop()


class Caller:
    def __init__(self, client: httpx.AsyncClient, procs: dict[str, ServiceProcess]) -> None:
        from gongkai_demo.county import DEMO

        self.client = client
        self.port = {n: p.port for n, p in procs.items()}
        self.headers = DEMO.headers

    async def post(self, service: str, path: str, person: str, body: Any) -> Any:
        r = await self.client.post(
            f"http://127.0.0.1:{self.port[service]}{path}", json=body, headers=self.headers(person)
        )
        assert r.status_code in (200, 201), f"{path}: {r.status_code} {r.text}"
        return r.json()

    async def get(self, service: str, path: str, person: str, **params: Any) -> Any:
        r = await self.client.get(
            f"http://127.0.0.1:{self.port[service]}{path}",
            params=params,
            headers=self.headers(person),
        )
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
        return r.json()


async def approved_post(c: Caller, i: int) -> tuple[str, str]:
    """A post submitted and approved (staff, then the principal leader): (id, approved digest)."""
    post = await c.post("intake", "/posts", "finance-maker", {
        "unit": "finance",
        "column": "normative_documents",
        "title": f"关于同一事实的通知（第{i}号）",
        "body": f"正文 {i}。",
        "important_kind": "normative_document",
        "origin": "produced",
        "channel": "website",
        "information_date": datetime.now(UTC).date().isoformat(),
    })
    pid, approved = post["post_id"], post["content_digest"]
    for stage, person in (("staff", "finance-staff"), ("leader", "finance-leader")):
        signed = await c.post("review", f"/posts/{pid}/signatures", person, {
            "stage": stage, "decision": "agree", "content_digest": approved,
        })
    assert signed["concluded"] == "approved"
    return str(pid), str(approved)


async def revise(c: Caller, i: int, pid: str, approved: str) -> None:
    revised = await c.post("intake", f"/posts/{pid}/revisions", "finance-maker", {
        "title": f"关于同一事实的通知（第{i}号，修订）",
        "body": f"修订后的正文 {i}。",
        "information_date": datetime.now(UTC).date().isoformat(),
    })
    assert revised["content_digest"] != approved


async def publish_old(c: Caller, i: int, pid: str, approved: str) -> None:
    """The CMS reports the old, approved digest online."""
    await c.post("intake", "/publications", "cms", {
        "post_id": pid,
        "unit": "finance",
        "column": "normative_documents",
        "url": f"https://www.example.gov.cn/finance/verdict-{i}",
        "online_at": datetime.now(UTC).isoformat(),
        "content_digest": approved,
    })


async def voided(c: Caller, pid: str) -> bool:
    r = await c.client.get(
        f"http://127.0.0.1:{c.port['accountability']}/posts/{pid}/trail",
        headers=c.headers("office-supervisor"),
    )
    return r.status_code == 200 and any(s["what"] == "review:voided" for s in r.json()["trail"])


async def test_the_old_approved_digest_published_after_a_revision_is_one_verdict_at_any_delay(
    running: tuple[EventLog, httpx.AsyncClient, dict[str, ServiceProcess]],
) -> None:
    evlog, client, procs = running
    c = Caller(client, procs)
    approved = await asyncio.gather(*(approved_post(c, i) for i in range(RUNS)))
    before, after = approved[: RUNS // 2], approved[RUNS // 2 :]
    review = procs["review"].proc
    assert review is not None
    # Reported before the void: review is stopped from the revision to the report, so its
    # reaction to the revision comes after the publication, whatever the machine's speed.
    review.send_signal(signal.SIGSTOP)
    try:
        for i, (pid, digest) in enumerate(before):
            await revise(c, i, pid, digest)
            await publish_old(c, i, pid, digest)
    finally:
        review.send_signal(signal.SIGCONT)

    async def after_the_void(i: int, pid: str, digest: str, delay: float) -> None:
        await revise(c, i, pid, digest)
        await until(lambda: voided(c, pid), 60, f"review voids {pid}")
        await asyncio.sleep(delay)  # the CMS's own delay: the scenario, not a synchronisation
        await publish_old(c, i, pid, digest)

    delays = [2.0 * k / (len(after) - 1) for k in range(len(after))]
    await asyncio.gather(
        *(
            after_the_void(len(before) + k, pid, digest, d)
            for k, ((pid, digest), d) in enumerate(zip(after, delays, strict=True))
        )
    )
    posts = [pid for pid, _ in approved]
    await settle(evlog, client, list(procs.values()), within=120)

    async def all_judged() -> bool:
        found = await c.get(
            "accountability", "/violations", "office-supervisor",
            kind="published_without_review", unit="finance",
        )
        return {v.get("post_id") for v in found} >= set(posts)

    await until(all_judged, 60, "every publication judged")
    found = await c.get(
        "accountability", "/violations", "office-supervisor",
        kind="published_without_review", unit="finance",
    )
    by_post = {v["post_id"]: v for v in found if v.get("post_id") in posts}
    assert len(by_post) == RUNS, "one violation per post, 50 out of 50"
    shapes = {
        (
            v["severity"],
            tuple(sorted((r["person"], r["role"]) for r in v["responsible"])),
            v["summary"].split(" went online ")[1],
        )
        for v in by_post.values()
    }
    assert len(shapes) == 1, shapes  # the same people, the same words, at every delay
    (_severity, people, _), = shapes
    assert ("finance-maker", "maker") in people and ("finance-leader", "leader") in people
    # Each order of the void and the publication report happened where it was made to.
    for pid in posts:
        trail = await c.get("accountability", f"/posts/{pid}/trail", "office-supervisor")
        steps = [s["what"] for s in trail["trail"]]
        assert "violation" in steps
        void_first = steps.index("review:voided") < steps.index("published")
        assert void_first == (pid in dict(after)), (pid, steps)
