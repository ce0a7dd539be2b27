"""What a route's infrastructure failure looks like to a client."""

from __future__ import annotations

import httpx
import nats.errors
from fastapi import FastAPI

from gongkai.eventlog import ConcurrencyConflict, EventLogError
from gongkai.runtime.http import PROBLEM, infrastructure_problem, install_problem_handlers


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/log-down")
    async def log_down() -> None:
        raise EventLogError("append failed: no response from stream")

    @app.post("/nats-timeout")
    async def nats_timeout() -> None:
        raise nats.errors.TimeoutError

    @app.post("/conflict")
    async def conflict() -> None:
        raise ConcurrencyConflict("gk.ev.intake.P1.>", 3)

    return app


async def _post(path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        return await c.post(path)


async def test_log_that_did_not_confirm_is_503_with_retry_after() -> None:
    for path in ("/log-down", "/nats-timeout"):
        r = await _post(path)
        assert r.status_code == 503
        assert r.headers["content-type"] == PROBLEM
        assert r.headers["retry-after"] == "2"
        body = r.json()
        assert body["title"] == "Event log unavailable"
        assert "Idempotency-Key" in body["detail"]
        assert body["instance"] == path


async def test_lost_race_is_409_not_500() -> None:
    r = await _post("/conflict")
    assert r.status_code == 409
    assert r.json()["title"] == "Conflict"


def test_bus_and_http_share_the_mapping() -> None:
    assert infrastructure_problem(ValueError("x")) is None
    p = infrastructure_problem(nats.errors.NoRespondersError())
    assert p is not None and p.status == 503
    c = infrastructure_problem(ConcurrencyConflict("a", 1))
    assert c is not None and c.status == 409
