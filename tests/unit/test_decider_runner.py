"""The decider runner (``gongkai.decider.handle``) over the in-memory log: given/when/then.

The decider here is the smallest real one: a unit is registered once (``UnitRegistered``), a
second registration is refused, renaming is decided on the registered state. Every rule of the
runner — idempotent by command id, nothing decided records nothing, re-decide on a race, one
retry policy, a new aggregate that exists is refused, one refusal type — is one case.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from gongkai.causality import first_event_id
from gongkai.decider import ATTEMPTS, Cause, Decided, Decider, Handled, Refusal, handle, record
from gongkai.eventlog import AppendResult, ConcurrencyConflict, EventLogError, RecordedEvent
from gongkai.events import Actor, Envelope, EventPayload, new_event
from gongkai.events.contracts.intake import UnitRegistered
from gongkai.memlog import MemoryEventLog

OFFICE = Actor(person="office", role="office", unit="county-office")
T0 = datetime(2026, 3, 2, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Unit:
    code: str
    name: str | None = None


def evolve(state: Unit, rec: RecordedEvent) -> Unit:
    p = rec.envelope.payload
    return Unit(state.code, p.name) if isinstance(p, UnitRegistered) else state


def register(name: str) -> Any:
    def decide(state: Unit) -> Sequence[EventPayload]:
        if state.name == name:
            return []  # already so: nothing to record
        if state.name is not None:
            raise Refusal("conflict", "Unit exists", f"{state.code} is {state.name}")
        return [
            UnitRegistered(
                code=state.code, name=name, kind="department", contact_name="x",
                contact_mobile="x",
            )
        ]

    return decide


UNIT = Decider("unit", lambda aid: Unit(aid), evolve, lambda s, decide: decide(s))


async def run(log: Any, name: str, command_id: str, **kw: Any) -> Handled[Unit]:
    return await handle(
        log, UNIT, "finance", register(name), command_id=command_id, actor=OFFICE,
        now=lambda: T0, **kw,
    )


async def test_given_nothing_when_registered_then_one_event_creates_the_aggregate() -> None:
    log = MemoryEventLog()
    h = await run(log, "财政局", "c1")
    assert h.created and not h.replayed and h.sequences == (1,)
    assert h.before == Unit("finance")
    assert [e.type for e in h.events] == ["UnitRegistered"]
    assert h.events[0].command_id == "c1" and h.events[0].causation_id is None


async def test_given_a_recorded_command_when_retried_then_its_events_answer_and_nothing_new(
) -> None:
    log = MemoryEventLog()
    first = await run(log, "财政局", "c1")
    again = await run(log, "财政局", "c1")
    assert again.replayed and again.events == first.events and again.sequences == (1,)
    assert await log.last_sequence() == 1


async def test_given_the_same_state_when_nothing_is_decided_then_nothing_is_recorded() -> None:
    log = MemoryEventLog()
    await run(log, "财政局", "c1")
    h = await run(log, "财政局", "c2")
    assert h.events == () and not h.created and await log.last_sequence() == 1


async def test_given_a_registered_unit_when_registered_otherwise_then_the_decider_refuses(
) -> None:
    log = MemoryEventLog()
    await run(log, "财政局", "c1")
    with pytest.raises(Refusal) as exc:
        await run(log, "教育局", "c2")
    assert exc.value.kind == "conflict" and exc.value.status == 409
    assert await log.last_sequence() == 1


RENAME = Decider(
    "unit", lambda aid: Unit(aid), evolve,
    lambda s, _c: [UnitRegistered(code=s.code, name="新名", kind="department",
                                  contact_name="x", contact_mobile="x")],
)


async def test_a_command_starts_a_chain_named_by_its_first_event() -> None:
    log = MemoryEventLog()
    first = await run(log, "财政局", "c1")
    assert first.events[0].causation_id is None
    assert first.events[0].correlation_id == first.events[0].event_id == first_event_id("c1")
    # Another command on the same aggregate answers no event: a chain of its own.
    h = await handle(log, RENAME, "finance", None, command_id="c2", actor=OFFICE,
                     now=lambda: T0)
    assert h.events[0].causation_id is None
    assert h.events[0].correlation_id == h.events[0].event_id == first_event_id("c2")


async def test_a_command_that_follows_is_caused_by_the_aggregates_last_event() -> None:
    log = MemoryEventLog()
    first = await run(log, "财政局", "c1")
    follows = dataclasses.replace(RENAME, follow=True)
    h = await handle(log, follows, "finance", None, command_id="c2", actor=OFFICE,
                     now=lambda: T0)
    assert h.events[0].causation_id == first.events[0].event_id
    assert h.events[0].correlation_id == first.events[0].correlation_id


async def test_a_command_answering_an_event_joins_its_chain() -> None:
    log = MemoryEventLog()
    first = await run(log, "财政局", "c1")
    h = await handle(log, RENAME, "finance", None, command_id="c2", actor=OFFICE,
                     now=lambda: T0, cause=Cause("e-1", "corr-1"))
    assert (h.events[0].causation_id, h.events[0].correlation_id) == ("e-1", "corr-1")
    # A replay of the same command answers with what was recorded: the same ids.
    again = await handle(log, RENAME, "finance", None, command_id="c2", actor=OFFICE,
                         now=lambda: T0, cause=Cause("e-1", "corr-1"))
    assert again.replayed and again.events == h.events
    assert first.events[0].correlation_id != h.events[0].correlation_id


def test_a_reactions_decision_names_its_cause() -> None:
    cause = new_event(
        UnitRegistered(code="finance", name="财政局", kind="department", contact_name="x",
                       contact_mobile="x"),
        aggregate_id="finance", actor=OFFICE, command_id="c1", recorded_at=T0,
    )
    d = Decided.of(
        UnitRegistered(code="x", name="x", kind="department", contact_name="x",
                       contact_mobile="x"),
        aggregate_id="x", actor=OFFICE, command_id="r1", recorded_at=T0, cause=cause,
        expected=0,
    )
    assert d.expected == 0
    assert d.event.causation_id == cause.event_id
    assert d.event.correlation_id == cause.correlation_id == first_event_id("c1")


class Racing(MemoryEventLog):
    """Another writer registers the unit between this command's load and its append."""

    def __init__(self, races: int) -> None:
        super().__init__()
        self.races = races

    async def load(self, aggregate_type: str, aggregate_id: str) -> tuple[list[Any], int]:
        got = await super().load(aggregate_type, aggregate_id)
        if self.races:
            self.races -= 1
            n = await self.last_sequence()
            other = new_event(
                UnitRegistered(code=aggregate_id, name=f"别人{n}", kind="department",
                               contact_name="x", contact_mobile="x"),
                aggregate_id=aggregate_id, actor=OFFICE, command_id=f"other-{n}",
                recorded_at=T0,
            )
            await super().append([other], expected=None)
        return got


async def test_given_a_race_when_the_append_conflicts_then_the_command_is_decided_again(
) -> None:
    log = Racing(races=1)
    with pytest.raises(Refusal) as exc:
        await run(log, "财政局", "c1")
    # Decided again on the winner's state: the unit exists with another name.
    assert exc.value.title == "Unit exists"
    assert await log.last_sequence() == 1


async def test_given_races_without_end_when_attempts_run_out_then_409() -> None:
    log = Racing(races=ATTEMPTS)
    rename = Decider("unit", lambda aid: Unit(aid), evolve, lambda s, _c: [
        UnitRegistered(code=s.code, name="x", kind="department", contact_name="x",
                       contact_mobile="x")])
    with pytest.raises(Refusal) as exc:
        await handle(log, rename, "finance", None, command_id="c1", actor=OFFICE,
                     now=lambda: T0)
    assert exc.value.kind == "conflict" and exc.value.title == "Concurrent change"
    assert await log.last_sequence() == ATTEMPTS  # only the other writer's events


async def test_given_a_new_aggregate_when_it_exists_with_other_content_then_refused() -> None:
    log = MemoryEventLog()
    await run(log, "财政局", "c1")
    with pytest.raises(Refusal) as exc:
        await run(log, "教育局", "c2", new=True)
    assert exc.value.title == "Already recorded"


async def test_given_a_new_aggregate_when_retried_then_deduplicated_by_event_id() -> None:
    log = MemoryEventLog()
    first = await run(log, "财政局", "c1", new=True)
    again = await run(log, "财政局", "c1", new=True)
    assert again.replayed and again.sequences == first.sequences
    assert await log.last_sequence() == 1


async def test_given_a_command_id_reused_for_other_content_then_422_naming_the_key() -> None:
    log = MemoryEventLog()
    await run(log, "财政局", "c1", new=True)
    with pytest.raises(Refusal) as exc:
        await run(log, "教育局", "c1", new=True)
    assert (exc.value.status, exc.value.field) == (422, "Idempotency-Key")


# ---- the in-memory log keeps JetStream's semantics -----------------------------------------


def unit_event(code: str, command_id: str) -> Envelope[Any]:
    return new_event(
        UnitRegistered(code=code, name=code, kind="department", contact_name="x",
                       contact_mobile="x"),
        aggregate_id=code, actor=OFFICE, command_id=command_id, recorded_at=T0,
    )


async def test_memory_log_expected_sequence_dedup_and_load() -> None:
    log = MemoryEventLog()
    a = await log.append([unit_event("a", "1")], expected=0)
    b = await log.append([unit_event("b", "2")], expected=0)
    assert (a, b) == (AppendResult((1,)), AppendResult((2,)))
    with pytest.raises(ConcurrencyConflict):
        await log.append([unit_event("a", "3")], expected=0)
    dup = await log.append([unit_event("a", "1")], expected=0)  # dedup before the check
    assert dup == AppendResult((1,), duplicate=True)
    await log.append([unit_event("a", "4")], expected=1)
    history, last = await log.load("unit", "a")
    assert [h.seq for h in history] == [1, 3] and last == 3
    assert [e.seq async for e in log.replay()] == [1, 2, 3]


# ---- a reaction's decisions: ``record`` ----------------------------------------------------


def registered(code: str, name: str, command_id: str) -> Envelope[Any]:
    payload = UnitRegistered(
        code=code, name=name, kind="department", contact_name="x", contact_mobile="x"
    )
    return new_event(payload, aggregate_id=code, actor=OFFICE, command_id=command_id,
                     recorded_at=T0)


@pytest.mark.parametrize("pipelined", [False, True], ids=["one-by-one", "pipelined"])
async def test_given_decisions_when_recorded_then_each_has_its_outcome_in_order(
    pipelined: bool,
) -> None:
    log = MemoryEventLog()
    await log.append([registered("audit", "审计局", "earlier")])
    decisions = [
        Decided(registered("finance", "财政局", "r1"), expected=0),  # new: recorded
        Decided(registered("audit", "审计局", "r2"), expected=0),  # decided elsewhere first
        Decided(registered("finance", "财政局", "r1"), expected=0),  # the same again
        Decided(registered("tax", "税务局", "r3")),  # any sequence: recorded
    ]
    out = await record(log, decisions, pipelined=pipelined)
    assert [(r.outcome, r.seq) for r in out] == [
        ("recorded", 2), ("stands", None), ("duplicate", 2), ("recorded", 3),
    ]
    assert [r.decision for r in out] == decisions
    assert await log.last_sequence() == 3


class _Broken(MemoryEventLog):
    async def append(self, events: Sequence[Envelope[Any]], *,
                     expected: int | None = None) -> AppendResult:
        raise OSError("connection closed")

    async def append_pipelined(
        self, commands: Sequence[tuple[Envelope[Any], int | None]]
    ) -> list[AppendResult | EventLogError]:
        raise OSError("connection closed")


@pytest.mark.parametrize("pipelined", [False, True], ids=["one-by-one", "pipelined"])
async def test_given_a_lost_connection_when_recorded_then_every_decision_failed_nothing_raised(
    pipelined: bool,
) -> None:
    out = await record(_Broken(), [Decided(registered("finance", "财政局", "r1"))],
                       pipelined=pipelined)
    assert [(r.outcome, r.error) for r in out] == [("failed", "connection closed")]


async def test_given_no_decisions_when_recorded_then_nothing_is_asked_of_the_log() -> None:
    assert await record(_Broken(), [], pipelined=True) == []

