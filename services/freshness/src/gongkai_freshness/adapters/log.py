"""freshness and the event log: replaying it into a register, recording its transitions.

Transitions are a reaction's decisions (made on the register, not on one aggregate's history),
so they are appended through ``gongkai.decider.record``: each event's id follows from its
command id, which follows from the facts decided on, so deciding the same again records
nothing new.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from gongkai.calendar import local_date
from gongkai.decider import Decided, Log, Recorded, record
from gongkai.eventlog import EventLog
from gongkai.events import Actor, Envelope, EventDecodeError
from gongkai_freshness.adapters.register import ColumnRegister
from gongkai_freshness.domain.evaluation import Transition
from gongkai_freshness.domain.register import RELEVANT_TYPES

#: The author of every transition: freshness itself, not a person.
FRESHNESS_ACTOR = Actor(person="freshness", role="system", unit="system")


def transition_events(
    transitions: Sequence[Transition], at: datetime, cause: Envelope[Any] | None = None
) -> list[Envelope[Any]]:
    """The envelopes of ``transitions``, each caused by (and correlated with) the event it
    follows from (``Transition.cause``); ``cause``, the event being folded, only stands in for
    a transition whose facts name none."""
    return [
        Decided.of(
            t.payload,
            aggregate_id=t.aggregate_id,
            actor=FRESHNESS_ACTOR,
            command_id=t.command_id,
            business_time=t.business_time,
            recorded_at=at,
            cause=t.cause or cause,
        ).event
        for t in transitions
    ]


async def record_transitions(
    log: Log, transitions: Sequence[Transition], at: datetime, cause: Envelope[Any] | None
) -> list[Recorded]:
    """Append the transitions, pipelined, in order; one outcome each (none raised)."""
    # Any aggregate sequence will do (expected None): the event id is the guard, and an
    # episode's transitions only ever follow each other.
    envs = transition_events(transitions, at, cause)
    return await record(log, [Decided(env, None) for env in envs], pipelined=True)


async def fold_log(evlog: EventLog, register: ColumnRegister, *, until: date | None) -> int:
    """Replay the whole log into ``register``; returns the number of events folded in.

    ``until``: only events whose business time falls on or before that date (Asia/Shanghai).
    """
    n = 0
    async for msg in evlog.raw_replay(follow=False):
        if msg.subject.rpartition(".")[2] not in RELEVANT_TYPES:
            continue
        try:
            rec = evlog.decode(msg)
        except EventDecodeError:
            continue  # dead-lettered by the consumers; not evidence of anything here
        if until is not None and local_date(rec.envelope.business_time) > until:
            continue
        register.fold(rec.envelope, rec.seq)
        n += 1
    return n
