"""Causality checks over a whole log (docs/events.md, "Causality"; ``gongkai.causality``).

``check_log`` holds every event of a log to the rule: a cause is an event recorded before it,
in the same correlation; an event without a cause is a command's (a person or a tool acting,
never a service reacting) or one about the log itself, and starts its own correlation, named by
its command's first event. ``walk`` follows the causes of one event back to that command.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gongkai.causality import LOG_EVENTS, first_event_id
from gongkai.events import SYSTEM_ACTOR, Envelope
from gongkai.trust.owners import SERVICES

#: The actors of reactions: a service deciding on its own, never a person or a tool.
REACTORS = frozenset({*SERVICES, SYSTEM_ACTOR.person})


def is_reaction(env: Envelope[Any]) -> bool:
    return env.actor.person in REACTORS


def check_log(events: Iterable[Envelope[Any]]) -> dict[str, Envelope[Any]]:
    """Every event in log order against the rule; returns the events by id."""
    seen: dict[str, Envelope[Any]] = {}
    for e in events:
        what = f"{e.type} {e.event_id} ({e.command_id})"
        if e.causation_id is not None:
            cause = seen.get(e.causation_id)
            assert cause is not None, f"{what}: its cause {e.causation_id} is not before it"
            assert e.correlation_id == cause.correlation_id, (
                f"{what}: correlation {e.correlation_id}, its cause's {cause.correlation_id}"
            )
        else:
            assert not is_reaction(e) or e.type in LOG_EVENTS, (
                f"{what}: a reaction of {e.actor.person} without a cause"
            )
            assert e.correlation_id == first_event_id(e.command_id), (
                f"{what}: a chain's first event must be named by its command's first event"
            )
        seen[e.event_id] = e
    return seen


def walk(event: Envelope[Any], by_id: Mapping[str, Envelope[Any]]) -> list[Envelope[Any]]:
    """``event`` and its causes, back to the event of the command that started the chain."""
    chain = [event]
    while chain[-1].causation_id is not None:
        chain.append(by_id[chain[-1].causation_id])
        assert len(chain) <= len(by_id), "a cycle of causes"
    root = chain[-1]
    assert not is_reaction(root), f"{root.type} {root.event_id}: a reaction starts no chain"
    assert all(e.correlation_id == first_event_id(root.command_id) for e in chain)
    return chain
