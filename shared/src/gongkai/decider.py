"""One way to handle a command: a decider, and the runner that loads, decides and appends.

A *decider* is the pure part of an aggregate (Chassaing's decider pattern): the state before
anything happened (``initial``), how an event changes the state (``evolve``) and what a command
decides given the state (``decide``: the new events, or a ``Refusal``). ``handle`` is the rest,
the same for every command of every service:

1. load the aggregate's history (its events and its last stream sequence);
2. if the history already holds this command's events (a retry whose first attempt was
   recorded but never answered), answer with them: a command id records once;
3. fold the history, decide; nothing decided records nothing;
4. build the envelopes — event ids from the command id, so a retried append is deduplicated
   by JetStream's ``Nats-Msg-Id``; causation and correlation from the event the command
   answers (``cause``, or the aggregate's last with ``follow``; ``gongkai.causality``) — and
   append them with the last sequence the decision saw
   (the log signs them: ``EventLog`` holds the keys, nothing else signs);
5. on a conflict (another writer appended to the aggregate in between) decide again on the new
   history, up to ``ATTEMPTS`` times — one policy for every service — then refuse with 409.

A *reaction's* decision is made on a read model, not on one aggregate's history (freshness
finds a column stale, accountability finds a publication without review, a checkpoint covers
the log so far): ``record`` appends such decisions, each an event whose id is derived from the
facts it was decided on, so deciding again records nothing new, and caused by the event it
answers (``Decided.of(..., cause=)``): the fact whose arrival or deadline decided it, which
makes the decision's causation as deterministic as its id. Its expected sequence (0: the
aggregate must be new) guards a decision that may be made once: losing that race means the
decision already stands. ``handle`` and ``record`` are the only callers of the log's append.

``Refusal`` is the one refusal type: ``kind`` says what went wrong and fixes the HTTP status
(``STATUS``); ``gongkai.runtime.http`` turns it into an RFC 9457 problem in one place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Literal, Protocol, TypeVar

from gongkai import metrics
from gongkai.causality import Cause, caused_by
from gongkai.events.envelope import Actor, Envelope, EventPayload, new_event
from gongkai.logtypes import AppendResult, ConcurrencyConflict, EventLogError, RecordedEvent
from gongkai.refusal import STATUS, Refusal, RefusalKind

__all__ = [
    "ATTEMPTS", "STATUS", "Cause", "Decided", "Decider", "Handled", "Log", "Outcome", "Recorded",
    "Refusal", "RefusalKind", "View", "handle", "record",
]

S = TypeVar("S")
C = TypeVar("C")

#: How many times a command is decided again after losing a race for its aggregate.
ATTEMPTS = 5


@dataclass(frozen=True)
class View(Generic[S]):
    """What a decider decides on, as its own loader read it."""

    state: S
    #: The aggregate's own last stream sequence: the append's expected sequence.
    last: int
    #: The aggregate's own events (a command id found among them was recorded already).
    history: Sequence[RecordedEvent]


@dataclass(frozen=True)
class Decider(Generic[S, C]):
    """The pure part of one aggregate type.

    ``decide`` returns payloads (the runner builds their envelopes) or, where one command
    records events with different actors, causes or command ids (review: a signature, the
    conclusion it causes, a void it settles), envelopes it built itself; the runner appends
    those as they are.

    ``load``: a decider whose state folds more than its own aggregate (review: the post's
    facts, the unit's policy, the signers' roles) reads it itself — an adapter's function,
    so the decider stays pure; only its own aggregate is written and checked.
    """

    aggregate_type: str
    initial: Callable[[str], S]
    evolve: Callable[[S, RecordedEvent], S]
    decide: Callable[[S, C], Sequence[EventPayload | Envelope[Any]]]
    load: Callable[[str], Awaitable[View[S]]] | None = None
    #: A later command continues the aggregate's story (a post's revision, a finding's
    #: confirmation): without a cause of its own it is caused by the aggregate's last event,
    #: in that event's correlation (``gongkai.causality``).
    follow: bool = False

    def fold(self, aggregate_id: str, history: Sequence[RecordedEvent]) -> S:
        state = self.initial(aggregate_id)
        for event in history:
            state = self.evolve(state, event)
        return state


class Log(Protocol):
    """What ``handle`` needs of an event log: ``EventLog`` and ``MemoryEventLog`` both are."""

    service: str

    async def load(
        self, aggregate_type: str, aggregate_id: str
    ) -> tuple[list[RecordedEvent], int]: ...

    async def append(
        self, events: Sequence[Envelope[Any]], *, expected: int | None = ...
    ) -> Any: ...

    async def append_pipelined(
        self, commands: Sequence[tuple[Envelope[Any], int | None]]
    ) -> list[AppendResult | EventLogError]: ...


@dataclass(frozen=True)
class Handled(Generic[S]):
    """What a handled command recorded (or had recorded, on a retry) and the state it saw."""

    events: tuple[Envelope[Any], ...]
    sequences: tuple[int, ...]
    #: The aggregate's state the decision was made on, before these events (for a replayed
    #: command of a decider with its own loader: the state as loaded, these events in it).
    before: S
    #: The command started the aggregate.
    created: bool
    #: The events were recorded by an earlier attempt of the same command.
    replayed: bool = False


async def handle(
    log: Log,
    decider: Decider[S, C],
    aggregate_id: str,
    command: C,
    *,
    command_id: str,
    actor: Actor | Callable[[S], Actor] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    business_time: datetime | None = None,
    cause: Cause | Envelope[Any] | None = None,
    new: bool = False,
    loaded: View[S] | None = None,
) -> Handled[S]:
    """Load, fold, decide, append with the expected sequence; decide again on a race.

    ``actor`` may depend on the state (the role a person acts in for this aggregate).

    Causality (``gongkai.causality``): ``cause`` is the event the command answers (a reaction's
    triggering event, the stale column a notice is about); its id becomes the new events'
    ``causation_id`` and its correlation id theirs. Without one, a decider that ``follow``s
    (the command continues the aggregate's story: a post's revision, a finding's confirmation)
    takes the aggregate's last event as the cause (one post's whole life under one correlation
    id); any other command starts a chain: no causation, the correlation its first event's id.

    ``new``: the aggregate id was derived from this command's id, so nothing is loaded (a read
    of the log saved per submission); the append expects an empty aggregate, a retry is
    deduplicated by event id, and an aggregate that exists with other content is refused.

    ``loaded``: a view the caller read already (to check who may act) is decided on first
    instead of reading it again; a conflict reads afresh.
    """
    history: list[RecordedEvent]
    for _ in range(1 if new else ATTEMPTS):
        view: View[S] | None = None
        if new:
            history, last = [], 0
        elif loaded is not None:
            view, loaded = loaded, None
        elif decider.load is not None:
            view = await decider.load(aggregate_id)
        else:
            history, last = await log.load(decider.aggregate_type, aggregate_id)
        if view is not None:
            history, last = list(view.history), view.last
        mine = [h for h in history if h.envelope.command_id == command_id]
        if mine:
            # With a loader of its own the decider's state is the view's (these events in it).
            return _replayed(
                decider, aggregate_id, history, mine, view.state if view is not None else None
            )
        state = view.state if view is not None else decider.fold(aggregate_id, history)
        payloads = decider.decide(state, command)
        if not payloads:
            return Handled((), (), state, created=False)
        because = cause if cause is not None else (
            history[-1].envelope if decider.follow and history else None
        )
        at = now()
        who = actor(state) if callable(actor) else actor
        if who is None and not all(isinstance(p, Envelope) for p in payloads):
            raise TypeError("handle: payloads need an actor")
        envs = [
            p
            if isinstance(p, Envelope)
            else new_event(
                p,
                aggregate_id=aggregate_id,
                actor=who,  # type: ignore[arg-type]
                command_id=command_id,
                index=i,
                recorded_at=at,
                business_time=business_time,
                **caused_by(because),
            )
            for i, p in enumerate(payloads)
        ]
        try:
            result = await log.append(envs, expected=last)
        except ConcurrencyConflict:
            metrics.APPEND_CONFLICTS.labels(service=log.service).inc()
            if new:
                raise Refusal(
                    "conflict",
                    "Already recorded",
                    f"{decider.aggregate_type} {aggregate_id} exists with other content",
                ) from None
            continue
        if result.duplicate:
            # Recorded meanwhile by a twin of this command (same id): answer with what the
            # log holds, which must be the same facts.
            return await _as_recorded(log, decider, aggregate_id, envs, command_id)
        return Handled(tuple(envs), tuple(result.sequences), state, created=not history)
    raise Refusal(
        "conflict",
        "Concurrent change",
        f"{decider.aggregate_type} {aggregate_id} kept changing while this command was "
        "decided; retry",
    )


async def _as_recorded(
    log: Log, decider: Decider[S, Any], aggregate_id: str, envs: Sequence[Envelope[Any]],
    command_id: str,
) -> Handled[S]:
    history, _ = await log.load(decider.aggregate_type, aggregate_id)
    by_id = {h.envelope.event_id: h for h in history}
    recorded = [by_id.get(e.event_id) for e in envs]
    if any(r is None or r.envelope.payload != e.payload for r, e in zip(recorded, envs,
                                                                         strict=True)):
        raise Refusal(
            "invalid",
            "Idempotency-Key reused",
            "this key was used for a different request",
            field="Idempotency-Key",
        )
    mine = [r for r in recorded if r is not None]
    loaded = (await decider.load(aggregate_id)).state if decider.load is not None else None
    return _replayed(decider, aggregate_id, history, mine, loaded)


def _replayed(
    decider: Decider[S, Any],
    aggregate_id: str,
    history: Sequence[RecordedEvent],
    mine: Sequence[RecordedEvent],
    loaded: S | None,
) -> Handled[S]:
    """A command recorded earlier, answered with its events and the state it was decided on."""
    before = (
        loaded
        if loaded is not None
        else decider.fold(aggregate_id, [h for h in history if h.seq < mine[0].seq])
    )
    return Handled(
        tuple(h.envelope for h in mine),
        tuple(h.seq for h in mine),
        before,
        created=mine[0].seq == history[0].seq,
        replayed=True,
    )


@dataclass(frozen=True)
class Decided:
    """A reaction's decision: one event (its id derived from the facts decided on) and the
    aggregate sequence it expects (0: the aggregate must be new; None: any)."""

    event: Envelope[Any]
    expected: int | None = None

    @classmethod
    def of(
        cls,
        payload: EventPayload,
        *,
        aggregate_id: str,
        actor: Actor,
        command_id: str,
        recorded_at: datetime,
        cause: Cause | Envelope[Any] | None,
        expected: int | None = None,
        business_time: datetime | None = None,
    ) -> Decided:
        """The decision to record ``payload``, caused by (and correlated with) ``cause``.

        ``cause`` is required: a reaction without one (None) says so on purpose, and then
        starts a chain of its own (``gongkai.causality.LOG_EVENTS``).
        """
        return cls(
            new_event(
                payload,
                aggregate_id=aggregate_id,
                actor=actor,
                command_id=command_id,
                recorded_at=recorded_at,
                business_time=business_time,
                **caused_by(cause),
            ),
            expected,
        )


#: ``recorded``: appended now; ``duplicate``: the log held this event already (an earlier run
#: decided the same); ``stands``: the aggregate moved past ``expected`` (another instance
#: decided first, and that decision stands); ``failed``: not recorded (``error`` says why),
#: the caller decides again later.
Outcome = Literal["recorded", "duplicate", "stands", "failed"]


@dataclass(frozen=True)
class Recorded:
    decision: Decided
    outcome: Outcome
    seq: int | None = None
    error: str | None = None


async def record(
    log: Log, decisions: Sequence[Decided], *, pipelined: bool = False
) -> list[Recorded]:
    """Append a reaction's decisions, in order; one outcome each, none raised.

    ``pipelined``: many single-event decisions with their acks in flight together (a daily
    evaluation's thousands of transitions); otherwise one append after the other. A failure
    of the whole burst (the connection closed) fails every decision of it.
    """
    if not decisions:
        return []
    if pipelined:
        try:
            results: list[AppendResult | EventLogError] = await log.append_pipelined(
                [(d.event, d.expected) for d in decisions]
            )
        except Exception as exc:  # noqa: BLE001 - e.g. the connection closed mid-way
            # A reaction outlives its connection: nothing is lost, the caller decides again.
            err = exc if isinstance(exc, EventLogError) else EventLogError(str(exc))
            results = [err] * len(decisions)
    else:
        results = []
        for d in decisions:
            try:
                results.append(await log.append([d.event], expected=d.expected))
            except Exception as exc:  # noqa: BLE001 - as above, one decision at a time
                results.append(exc if isinstance(exc, EventLogError) else EventLogError(str(exc)))
    out: list[Recorded] = []
    for d, res in zip(decisions, results, strict=True):
        if isinstance(res, ConcurrencyConflict):
            out.append(Recorded(d, "stands"))
        elif isinstance(res, EventLogError):
            out.append(Recorded(d, "failed", error=str(res)[:300]))
        else:
            out.append(Recorded(d, "duplicate" if res.duplicate else "recorded", res.sequences[-1]))
    return out
