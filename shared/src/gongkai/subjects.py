"""The subject scheme of the event log.

    gk.ev.<aggregate type>.<aggregate id>.<EventType>     an event, in stream GONGKAI
    gk.dlq.<service>.<consumer>                            a dead letter, in stream GONGKAI_DLQ
    gk.cmd.<service>.<command>                             a command request (core NATS, no stream)

One wildcard subscribes to one event type (``gk.ev.*.*.PostSubmitted``); one filter reads one
aggregate's history (``gk.ev.post.P1.*``), and that same filter is the subject of the
per-aggregate optimistic-concurrency check.
"""

from __future__ import annotations

from gongkai.events.envelope import check_token

STREAM = "GONGKAI"
EVENTS = "gk.ev"
DLQ_STREAM = "GONGKAI_DLQ"
DLQ = "gk.dlq"
COMMANDS = "gk.cmd"


def event_subject(aggregate_type: str, aggregate_id: str, event_type: str) -> str:
    check_token(aggregate_type, "aggregate_type")
    check_token(aggregate_id, "aggregate_id")
    check_token(event_type, "event_type")
    return f"{EVENTS}.{aggregate_type}.{aggregate_id}.{event_type}"


def aggregate_filter(aggregate_type: str, aggregate_id: str) -> str:
    check_token(aggregate_type, "aggregate_type")
    check_token(aggregate_id, "aggregate_id")
    return f"{EVENTS}.{aggregate_type}.{aggregate_id}.*"


def type_filter(event_type: str, aggregate_type: str = "*") -> str:
    return f"{EVENTS}.{aggregate_type}.*.{event_type}"


def all_events() -> str:
    return f"{EVENTS}.>"


def dlq_subject(consumer: str, owner: str | None = None) -> str:
    """Where a consumer's dead letters go: ``gk.dlq.<service>.<consumer>`` for a service's own
    consumers (so each service's NATS user may publish only under its own name), and
    ``gk.dlq.<consumer>`` for tools and tests without one."""
    check_token(consumer, "consumer")
    if owner is None:
        return f"{DLQ}.{consumer}"
    check_token(owner, "service")
    return f"{DLQ}.{owner}.{consumer}"


def command_subject(service: str, command: str) -> str:
    return f"{COMMANDS}.{service}.{command}"
