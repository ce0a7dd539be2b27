"""HTTP requests on /metrics: by route template, method and status, with a latency histogram."""

from __future__ import annotations

import httpx

from gongkai.runtime.host import make_app


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
