"""Which service decides each event type: the one source of publish and signing rights."""

from __future__ import annotations

from functools import cache

#: The four services; each owns the event types declared in gongkai.events.contracts.<name>.
SERVICES: tuple[str, ...] = ("intake", "review", "freshness", "accountability")
_PREFIX = "gongkai.events.contracts."


@cache
def _owners() -> dict[str, str]:
    # Imported here: the permission matrix and the command line's parser need SERVICES, not
    # the event contracts (pydantic), and `gongkai --help` should not wait for them.
    from gongkai.events import REGISTRY

    out: dict[str, str] = {}
    for name, cls in REGISTRY.types().items():
        module = cls.__module__
        if not module.startswith(_PREFIX) or module[len(_PREFIX) :] not in SERVICES:
            raise ValueError(f"event type {name} is declared outside a service's contracts")
        out[name] = module[len(_PREFIX) :]
    return out


def owner_of(event_type: str) -> str | None:
    """The service that decides ``event_type`` (and alone may publish and sign it)."""
    return _owners().get(event_type)


def owned_types(service: str) -> list[tuple[str, str]]:
    """(aggregate type, event type) of every event ``service`` decides, sorted."""
    from gongkai.events import REGISTRY

    return sorted(
        (REGISTRY.payload_class(t).aggregate_type, t) for t, s in _owners().items() if s == service
    )
