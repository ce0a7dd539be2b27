"""Readiness that holds under writes and falls when NATS goes: what a Kubernetes probe sees.

Readiness used to be "no projection has unread events at this instant", so under steady writes
a probe found some projection a few events behind about every time, and pods left their
Service. Now: connected, database usable, caught up once since start, nothing stalled.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from gongkai import metrics
from gongkai.natsserver import NatsServer
from gongkai_demo.testing import DEMO, seed_demo
from tests.conftest import Platform
from tests.waiting import wait_until

WRITERS = 20
POSTS_EACH = 5
UNITS = ("finance", "education", "health", "market")


def post(unit: str, i: int) -> dict[str, Any]:
    return {
        "unit": unit,
        "column": "leaders_activities",
        "title": f"{unit} 工作动态 第{i}期",
        "body": "本周召开专题会议，部署下一阶段重点工作。",
        "information_date": "2026-02-27",
        "origin": "produced",
        "channel": "website",
    }


def appended_by_type() -> Counter[str]:
    """gongkai_events_appended_total summed over services, by event type."""
    out: Counter[str] = Counter()
    for metric in metrics.EVENTS_APPENDED.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                out[sample.labels["type"]] += int(sample.value)
    return out


async def logged_by_type(platform: Platform, after: int) -> Counter[str]:
    return Counter([rec.envelope.type async for rec in platform.evlog.replay(from_seq=after + 1)])


async def test_ready_on_every_probe_under_twenty_concurrent_writers(platform: Platform) -> None:
    await seed_demo(platform.evlog, platform.clock.now(), units=UNITS)
    await platform.settle()
    # The counters are the process's (earlier tests of this worker counted too): compare what
    # this test adds to the counters with what it adds to the log.
    counted_before, start = appended_by_type(), await platform.evlog.last_sequence()
    client = platform.client
    assert (await client.get("/readyz")).status_code == 200
    codes: list[int] = []
    done = asyncio.Event()

    async def writer(w: int) -> None:
        unit = UNITS[w % len(UNITS)]
        for i in range(POSTS_EACH):
            r = await client.post(
                "/posts", json=post(unit, w * 100 + i),
                headers=DEMO.headers(f"{unit}-maker", f"ready-{w}-{i}"),
            )
            assert r.status_code == 201, r.text

    async def prober() -> None:
        while not done.is_set():
            codes.append((await client.get("/readyz")).status_code)
            await asyncio.sleep(0.005)  # a probe's period, compressed

    probing = asyncio.create_task(prober())
    try:
        await asyncio.gather(*(writer(w) for w in range(WRITERS)))
        # Probed on until every projection has applied the burst: the window in which the old
        # readiness answered 503.
        await platform.settle(within=30)
    finally:
        done.set()
        await probing
    assert len(codes) >= 5, codes
    assert set(codes) == {200}, f"{codes.count(503)} of {len(codes)} probes answered 503"

    async def counters_equal_the_log() -> bool:
        await platform.settle(within=30)
        added = appended_by_type()
        added.subtract(counted_before)
        return +added == await logged_by_type(platform, start)

    # Every event appended once is counted once (ColumnStale, ReviewSigned and PostSubmitted
    # were counted twice: by the log and again by the service that appended them).
    await wait_until(counters_equal_the_log, 20, "gongkai_events_appended_total equals the log")


async def test_not_ready_while_nats_is_away_and_ready_again_after(
    platform: Platform, nats_server: NatsServer
) -> None:
    client = platform.client
    assert (await client.get("/readyz")).status_code == 200
    await asyncio.to_thread(nats_server.stop)
    try:
        await wait_until(
            lambda: _status(client, 503), 10, "/readyz 503 once NATS stopped"
        )
        body = (await client.get("/readyz")).json()
        assert any("not connected to NATS" in r for r in body["reasons"]), body
    finally:
        await asyncio.to_thread(nats_server.start)  # the same port and store
    await wait_until(lambda: _status(client, 200), 20, "/readyz 200 once NATS is back")


async def _status(client: Any, code: int) -> bool:
    return bool((await client.get("/readyz")).status_code == code)


async def test_status_shows_each_projection_s_progress(platform: Platform) -> None:
    body = (await platform.client.get("/status")).json()
    assert set(body["services"]) == set(platform.services)
    for name, st in body["services"].items():
        assert st["ready"] is True and st["reasons"] == [], name
        for proj in st["projections"]:
            assert set(proj) >= {
                "projection", "position", "stream_last_sequence", "lag", "caught_up_once",
                "rate_per_second", "eta_seconds", "stalled_seconds",
            }
            assert proj["caught_up_once"] is True and proj["lag"] == 0, proj


async def test_every_series_is_exported_at_zero_from_the_start(platform: Platform) -> None:
    # The series exist before their first increment. (Their values are the process's: earlier
    # tests in this worker may have counted into them, so only their presence is asked.)
    text = (await platform.client.get("/metrics")).text
    for svc in platform.services.values():
        assert f'gongkai_append_conflicts_total{{service="{svc.name}"}} ' in text, svc.name
        assert f'gongkai_ready{{service="{svc.name}"}}' in text
        for sub in svc.subscriptions:
            assert f'gongkai_dead_letters_total{{consumer="{sub.name}"}} ' in text
        for t in svc.owns:
            assert f'type="{t.event_type}"' in text, t.event_type
    assert 'check="bad_signature"' in text
