"""Trust in the log: who owns each event type, the services' signing keys, verification.

The stream is the single source of truth, so what may be appended to it, and by whom, is
decided here once: the permission matrix of NATS users, the signing policy of events and the
trust anchors all derive from the ownership of event types (the contracts module an event type
is declared in names the one service that decides it).
"""

from gongkai.trust.owners import SERVICES, owned_types, owner_of

__all__ = ["SERVICES", "owned_types", "owner_of"]
