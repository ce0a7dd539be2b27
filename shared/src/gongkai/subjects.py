"""The subject scheme of the event log.

    gk.ev.<aggregate type>.<aggregate id>.<EventType>     an event, in stream GONGKAI
    gk.dlq.<service>.<consumer>                            a dead letter, in stream GONGKAI_DLQ
    gk.cmd.<service>.<command>                             a command request (core NATS, no stream)

One wildcard subscribes to one event type (``gk.ev.*.*.PostSubmitted``); one filter reads one
aggregate's history (``gk.ev.post.P1.*``), and that same filter is the subject of the
per-aggregate optimistic-concurrency check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from gongkai.identifiers import check_token

STREAM = "GONGKAI"
EVENTS = "gk.ev"
DLQ_STREAM = "GONGKAI_DLQ"
DLQ = "gk.dlq"
COMMANDS = "gk.cmd"
#: The one wildcard a filter may put where a token goes: "any aggregate type".
ANY = "*"


def token(value: str, what: str) -> str:
    """The one way a value becomes a subject token: an identifier (``A-Z a-z 0-9 _ -``, 1-128,
    the whole value), or InvalidIdentifier naming ``what``. No ``.``, ``*``, ``>``, whitespace
    or newline gets into a subject through here, so an id from a request can never address
    another subject, widen a filter, or make NATS refuse the subject (a 503 instead of a 4xx).
    Every function below builds its subject from tokens made here."""
    return check_token(value, what)


def event_subject(aggregate_type: str, aggregate_id: str, event_type: str) -> str:
    at = token(aggregate_type, "aggregate_type")
    aid = token(aggregate_id, "aggregate_id")
    return f"{EVENTS}.{at}.{aid}.{token(event_type, 'event_type')}"


def aggregate_filter(aggregate_type: str, aggregate_id: str) -> str:
    at = token(aggregate_type, "aggregate_type")
    return f"{EVENTS}.{at}.{token(aggregate_id, 'aggregate_id')}.*"


def aggregate_type_filter(aggregate_type: str) -> str:
    """Every event of every aggregate of one type: ``gk.ev.<type>.*.*``."""
    return f"{EVENTS}.{token(aggregate_type, 'aggregate_type')}.*.*"


def type_filter(event_type: str, aggregate_type: str = ANY) -> str:
    at = aggregate_type if aggregate_type == ANY else token(aggregate_type, "aggregate_type")
    return f"{EVENTS}.{at}.*.{token(event_type, 'event_type')}"


def matches(filter_subject: str, subject: str) -> bool:
    """Whether a NATS filter (``*`` one token, a final ``>`` one or more) matches ``subject``."""
    want, have = filter_subject.split("."), subject.split(".")
    for i, tok in enumerate(want):
        if tok == ">":
            return len(have) > i
        if i >= len(have) or (tok != "*" and tok != have[i]):
            return False
    return len(have) == len(want)


def matcher(filters: Iterable[str]) -> Callable[[str], bool]:
    """``lambda subject: any(matches(f, subject) for f in filters)``, made fast for a reader
    that tests every message of the log: filters that are all ``type_filter``s
    (``gk.ev.<aggregate type or *>.*.<EventType>``) become one lookup by event type."""
    wanted = tuple(dict.fromkeys(filters))
    by_type: dict[str, frozenset[str]] = {}
    for f in wanted:
        parts = f.split(".")
        if (
            len(parts) != 5
            or f"{parts[0]}.{parts[1]}" != EVENTS
            or parts[3] != ANY
            or parts[4] in (ANY, ">")
            or parts[2] == ">"
        ):
            return lambda subject: any(matches(f, subject) for f in wanted)
        by_type[parts[4]] = by_type.get(parts[4], frozenset()) | {parts[2]}

    head = EVENTS.split(".")

    def match(subject: str) -> bool:
        parts = subject.split(".")
        if len(parts) != 5 or parts[:2] != head:
            return False
        aggregates = by_type.get(parts[4])
        return aggregates is not None and (ANY in aggregates or parts[2] in aggregates)

    return match


def all_events() -> str:
    return f"{EVENTS}.>"


def all_dead_letters() -> str:
    return f"{DLQ}.>"


def dlq_subject(consumer: str, owner: str | None = None) -> str:
    """Where a consumer's dead letters go: ``gk.dlq.<service>.<consumer>`` for a service's own
    consumers (so each service's NATS user may publish only under its own name), and
    ``gk.dlq.<consumer>`` for tools and tests without one."""
    name = token(consumer, "consumer")
    if owner is None:
        return f"{DLQ}.{name}"
    return f"{DLQ}.{token(owner, 'service')}.{name}"


def command_subject(service: str, command: str) -> str:
    return f"{COMMANDS}.{token(service, 'service')}.{token(command, 'command')}"
