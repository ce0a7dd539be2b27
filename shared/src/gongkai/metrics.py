"""Prometheus metrics shared by every service (one registry per process)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge

EVENTS_APPENDED = Counter(
    "gongkai_events_appended_total", "Events appended to the log", ["service", "type"]
)
EVENTS_APPLIED = Counter(
    "gongkai_events_applied_total", "Events applied by a projection", ["projection"]
)
CONSUMER_LAG = Gauge(
    "gongkai_consumer_lag",
    "Stream last sequence minus the consumer's position; 0 once it applied all its filter matches",
    ["consumer"],
)
DEAD_LETTERS = Counter(
    "gongkai_dead_letters_total", "Messages moved to the dead-letter stream", ["consumer"]
)
APPEND_CONFLICTS = Counter(
    "gongkai_append_conflicts_total", "Appends refused by optimistic concurrency", ["service"]
)
OUTAGE_RETRIES = Counter(
    "gongkai_outage_retries_total",
    "Retries of a consumer waiting for its database or the bus to come back",
    ["consumer"],
)
INTEGRITY_FAILURES = Counter(
    "gongkai_integrity_failures_total",
    "Events a reader refused to believe: unsigned, unknown or wrong key, bad signature, "
    "retired key, or an authority the event claims that the directory does not grant",
    ["service", "check"],
)
READY = Gauge(
    "gongkai_ready",
    "1 while the service is ready (connected, database usable, caught up once, nothing stalled)",
    ["service"],
)
STALLED = Gauge(
    "gongkai_projection_stalled_seconds",
    "Seconds a projection has been behind the log without applying anything (0: not behind)",
    ["consumer"],
)


def start_series(
    service: str,
    event_types: Iterable[str],
    projections: Iterable[str],
    consumers: Iterable[str],
    checks: Iterable[str],
) -> None:
    """Export every series of a service at 0 from its start.

    A labelled series appears at its first increment otherwise, and ``rate()`` or an alert on
    ``increase(...) > 0`` cannot see the step from nothing to 1: the first dead letter would
    never fire the alert meant for it.
    """
    for t in event_types:
        EVENTS_APPENDED.labels(service=service, type=t)
    APPEND_CONFLICTS.labels(service=service)
    for c in checks:
        INTEGRITY_FAILURES.labels(service=service, check=c)
    for p in projections:
        EVENTS_APPLIED.labels(projection=p)
        CONSUMER_LAG.labels(consumer=p)
        STALLED.labels(consumer=p)
    for c in [*projections, *consumers]:
        DEAD_LETTERS.labels(consumer=c)
        OUTAGE_RETRIES.labels(consumer=c)
    READY.labels(service=service)
