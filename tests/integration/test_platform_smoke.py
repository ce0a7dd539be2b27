"""The in-process platform fixture starts every service and answers health checks."""

from __future__ import annotations

from tests.conftest import Platform


async def test_platform_ready(platform: Platform) -> None:
    r = await platform.client.get("/readyz")
    assert r.status_code == 200, r.text
    assert set(r.json()["services"]) == set(platform.services)
    assert (await platform.client.get("/healthz")).json() == {"status": "ok"}
    metrics = (await platform.client.get("/metrics")).text
    assert "gongkai_consumer_lag" in metrics or "gongkai_events_applied_total" in metrics
