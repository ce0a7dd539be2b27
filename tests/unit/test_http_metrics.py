"""HTTP requests on /metrics: by route template, method and status, with a latency histogram."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel

from gongkai.runtime.host import make_app


class Body(BaseModel):
    """A command's body (module level: the route's annotations are read at runtime)."""

    title: str


async def test_requests_are_counted_by_route_template_method_and_status() -> None:
    make_app([])  # an earlier app in the same process (as in the tests) takes nothing away
    app = make_app([])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gongkai.local"
    ) as client:
        assert (await client.get("/docs")).status_code == 200
        assert (await client.get("/healthz")).status_code == 200
        text = (await client.get("/metrics")).text
    assert 'gongkai_http_requests_total{handler="/docs",method="GET",status="200"}' in text
    assert 'gongkai_http_request_duration_seconds_bucket{handler="/docs",le="0.025",method="GET"}' \
        in text
    # Probes and the scrape itself would drown the figures that matter.
    assert 'handler="/healthz"' not in text and 'handler="/metrics"' not in text


def test_a_service_s_series_start_at_zero_before_anything_is_counted() -> None:
    from prometheus_client import REGISTRY

    from gongkai import metrics

    metrics.start_series("zero-svc", ["PostSubmitted"], ["zero-proj"], ["zero-svc-react"],
                         ["unsigned"])
    for name, labels in [
        ("gongkai_events_appended_total", {"service": "zero-svc", "type": "PostSubmitted"}),
        ("gongkai_append_conflicts_total", {"service": "zero-svc"}),
        ("gongkai_integrity_failures_total", {"service": "zero-svc", "check": "unsigned"}),
        ("gongkai_dead_letters_total", {"consumer": "zero-proj"}),
        ("gongkai_dead_letters_total", {"consumer": "zero-svc-react"}),
        ("gongkai_consumer_lag", {"consumer": "zero-proj"}),
        ("gongkai_ready", {"service": "zero-svc"}),
    ]:
        assert REGISTRY.get_sample_value(name, labels) == 0.0, (name, labels)


def _samples(text: str) -> list[str]:
    """The exposition's lines, the durations' sums and bucket counts without their values
    (they depend on the clock; the buckets' bounds stay), and no creation times."""
    keep = []
    for line in text.splitlines():
        name = line.split("{")[0].split(" ")[0]
        if name.endswith("_created"):
            continue
        if "duration" in name and (name.endswith("_sum") or name.endswith("_bucket")):
            line = line.rsplit(" ", 1)[0]
        keep.append(line)
    return keep


async def test_the_series_are_the_instrumentator_s_to_the_sample() -> None:
    """The lean middleware writes what prometheus_fastapi_instrumentator wrote as ``make_app``
    configured it: the same names, help, labels and buckets, and the same counts by the same
    handler, method and status, for routes with ids, refusals, 404s (``none``), a 405, a
    trailing-slash redirect, a mount, a raised exception, an excluded probe and sizes."""
    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_fastapi_instrumentator import Instrumentator
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    from gongkai.runtime.http_metrics import HttpMetrics, HttpMetricsMiddleware

    lowr = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
    excluded = ["/metrics", "/healthz", "/readyz"]

    def app_with(instrument: str) -> tuple[FastAPI, CollectorRegistry]:
        app = FastAPI()
        registry = CollectorRegistry()
        if instrument == "library":
            Instrumentator(
                should_group_status_codes=False, excluded_handlers=excluded, registry=registry
            ).instrument(app, metric_namespace="gongkai", latency_lowr_buckets=lowr)
        else:
            app.add_middleware(
                HttpMetricsMiddleware,
                metrics=HttpMetrics(
                    registry, namespace="gongkai", lowr_buckets=lowr, excluded=excluded
                ),
            )

        @app.get("/posts/{post_id}")
        async def read(post_id: str) -> dict[str, str]:
            return {"post_id": post_id}

        @app.post("/posts", status_code=201)
        async def submit(body: Body) -> dict[str, str]:
            return {"title": body.title}

        @app.get("/slash/")
        async def slash() -> dict[str, str]:
            return {}

        @app.get("/boom")
        async def boom() -> None:
            raise RuntimeError("boom")

        @app.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        async def plain(_: Any) -> PlainTextResponse:
            return PlainTextResponse("mounted")

        app.router.routes.append(Mount("/sub", routes=[Route("/x/{n}", plain)]))
        return app, registry

    texts = []
    for instrument in ("library", "lean"):
        app, registry = app_with(instrument)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://gongkai.local",
        ) as client:
            assert (await client.get("/posts/p1")).status_code == 200
            assert (await client.get("/posts/p2")).status_code == 200
            assert (await client.post("/posts", json={"title": "标题"})).status_code == 201
            assert (await client.post("/posts", json={"x": 1})).status_code == 422
            assert (await client.delete("/posts/p1")).status_code == 405
            assert (await client.get("/nothing/here")).status_code == 404
            assert (await client.get("/slash")).status_code == 307
            assert (await client.get("/boom")).status_code == 500
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/sub/x/3")).status_code == 200
        texts.append(_samples(generate_latest(registry).decode()))
    library, lean = texts
    assert 'gongkai_http_requests_total{handler="/sub/x/{n}",method="GET",status="200"} 1.0' \
        in lean
    assert 'gongkai_http_requests_total{handler="none",method="GET",status="404"} 1.0' in lean
    assert lean == library
