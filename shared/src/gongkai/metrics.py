"""Prometheus metrics shared by every service (one registry per process)."""

from __future__ import annotations

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
