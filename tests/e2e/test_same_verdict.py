"""Same facts, same verdict, at any delay (issue 13), through HTTP against the running platform.

The four services run as their own ``gongkai service NAME`` processes on a real nats-server,
as deploy runs them. Fifty posts each go: submitted, staff and principal leader sign (approved),
revised by the maker — and then the CMS reports the **old**, approved digest online, after a
delay between 0 and 2 s. Review voids the overtaken chain as a reaction to the revision; with
no delay the publication report usually lands before that void, with 2 s after it. The verdict
must not care: every one of the fifty is ``published_without_review``, naming the same people,
and the trail says so.

The delays are the scenario (how long the CMS takes to report), not a wait for a result: every
wait for a result polls the services until it holds.
"""

from __future__ import annotations

import asyncio
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


async def revise_then_publish_old(c: Caller, i: int, delay: float) -> str:
    today = datetime.now(UTC).date().isoformat()
    post = await c.post("intake", "/posts", "finance-maker", {
        "unit": "finance",
        "column": "normative_documents",
        "title": f"关于同一事实的通知（第{i}号）",
        "body": f"正文 {i}。",
        "important_kind": "normative_document",
        "origin": "produced",
        "channel": "website",
        "information_date": today,
    })
    pid, approved = post["post_id"], post["content_digest"]
    for stage, person in (("staff", "finance-staff"), ("leader", "finance-leader")):
        signed = await c.post("review", f"/posts/{pid}/signatures", person, {
            "stage": stage, "decision": "agree", "content_digest": approved,
        })
    assert signed["concluded"] == "approved"
    revised = await c.post("intake", f"/posts/{pid}/revisions", "finance-maker", {
        "title": f"关于同一事实的通知（第{i}号，修订）",
        "body": f"修订后的正文 {i}。",
        "information_date": today,
    })
    assert revised["content_digest"] != approved
    await asyncio.sleep(delay)  # the CMS's own delay: the scenario, not a synchronisation
    await c.post("intake", "/publications", "cms", {
        "post_id": pid,
        "unit": "finance",
        "column": "normative_documents",
        "url": f"https://www.example.gov.cn/finance/verdict-{i}",
        "online_at": datetime.now(UTC).isoformat(),
        "content_digest": approved,
    })
    return str(pid)


async def test_the_old_approved_digest_published_after_a_revision_is_one_verdict_at_any_delay(
    running: tuple[EventLog, httpx.AsyncClient, dict[str, ServiceProcess]],
) -> None:
    evlog, client, procs = running
    c = Caller(client, procs)
    delays = [2.0 * k / (RUNS - 1) for k in range(RUNS)]
    posts = await asyncio.gather(
        *(revise_then_publish_old(c, i, d) for i, d in enumerate(delays))
    )
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
    # Both orders of the void and the publication report really happened.
    orders = set()
    for pid in posts:
        trail = await c.get("accountability", f"/posts/{pid}/trail", "office-supervisor")
        steps = [s["what"] for s in trail["trail"]]
        assert "violation" in steps
        orders.add(steps.index("review:voided") < steps.index("published"))
    assert orders == {True, False}, "both orders of void and publication were exercised"
