"""Event contracts: the envelope, canonical JSON, the registry and every event type."""

from gongkai.events import contracts
from gongkai.events.envelope import (
    HDR_TYPE,
    HDR_VERSION,
    REGISTRY,
    SYSTEM_ACTOR,
    Actor,
    Envelope,
    EventDecodeError,
    EventPayload,
    Id,
    canonical_json,
    digest,
    event,
    new_event,
    payload_json,
)
from gongkai.identifiers import InvalidIdentifier, check_token, is_token

__all__ = [
    "HDR_TYPE",
    "HDR_VERSION",
    "REGISTRY",
    "SYSTEM_ACTOR",
    "Actor",
    "Envelope",
    "EventDecodeError",
    "EventPayload",
    "Id",
    "InvalidIdentifier",
    "canonical_json",
    "check_token",
    "contracts",
    "digest",
    "event",
    "is_token",
    "new_event",
    "payload_json",
]
