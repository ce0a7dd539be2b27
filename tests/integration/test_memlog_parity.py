"""The in-memory log answers as JetStream does, for everything the decider runner relies on.

The same operations against ``MemoryEventLog`` and the real ``EventLog`` on a nats-server:
sequences, the expected-sequence check, deduplication by event id (checked before the expected
sequence, so a retry of a recorded command is a duplicate, not a conflict), an atomic
multi-event append, the aggregate's history and last sequence, and the last sequence of a
subject filter (0 when nothing matches).
"""

from __future__ import annotations

from typing import Any

from gongkai import subjects
from gongkai.eventlog import ConcurrencyConflict, EventLog
from gongkai.memlog import MemoryEventLog
from tests.unit.test_decider_runner import unit_event


async def script(log: Any) -> list[Any]:
    out: list[Any] = []

    async def step(events: list[Any], expected: int | None) -> None:
        try:
            r = await log.append(events, expected=expected)
            out.append(("ok", r.sequences, r.duplicate))
        except ConcurrencyConflict:
            out.append(("conflict",))

    await step([unit_event("a", "1")], 0)
    await step([unit_event("b", "2")], 0)
    await step([unit_event("a", "3")], 0)
    await step([unit_event("a", "1")], 0)
    await step([unit_event("a", "4")], 1)
    await step([unit_event("b", "5"), unit_event("b", "6")], 2)
    await step([unit_event("b", "7")], 2)
    await step([unit_event("c", "8")], None)
    for agg in ("a", "b", "c", "nothing"):
        history, last = await log.load("unit", agg)
        out.append((agg, [(h.seq, h.envelope.event_id) for h in history], last))
    out.append(await log.last_sequence())
    for filt in (
        subjects.aggregate_filter("unit", "a"),
        subjects.aggregate_filter("unit", "b"),
        subjects.aggregate_type_filter("unit"),
        subjects.aggregate_filter("unit", "nothing"),
        subjects.all_events(),
    ):
        out.append((filt, await log.last_sequence(filt)))
    return out


async def test_memory_log_and_jetstream_give_the_same_answers(evlog: EventLog) -> None:
    assert await script(MemoryEventLog()) == await script(evlog)
