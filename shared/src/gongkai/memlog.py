"""An event log in memory, with the JetStream semantics the runner relies on.

For application-layer tests of deciders through ``gongkai.decider.handle``: milliseconds
instead of a nats-server, the same outcomes. What it keeps of ``EventLog``:

* one stream, sequences from 1 in append order; subjects ``gk.ev.<type>.<id>.<Event>``;
* ``append(events, expected=n)``: one command's events to one aggregate, all or nothing,
  refused with ``ConcurrencyConflict`` unless the aggregate's last sequence is ``n`` (0 for
  a new aggregate; ``ANY`` skips the check), as ``Nats-Expected-Last-Subject-Sequence``;
* deduplication by event id (``Nats-Msg-Id``): an event id already stored records nothing
  and answers ``duplicate`` with the stored sequences — the check runs before the expected
  sequence, as the server's does, so a retry of a recorded command is not a conflict;
* events stored as their canonical bytes and decoded back through the registry on read, so a
  test sees exactly what a reader of the real log would (upcasting included).

It signs nothing and verifies nothing: trust is the real log's (tests/security).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from gongkai import subjects
from gongkai.events.envelope import REGISTRY, Envelope, Registry
from gongkai.logtypes import (
    AppendResult,
    ConcurrencyConflict,
    EventLogError,
    RecordedEvent,
    one_aggregate,
)


class MemoryEventLog:
    def __init__(self, *, registry: Registry = REGISTRY, service: str = "memory") -> None:
        self.registry = registry
        self.service = service
        self._events: list[RecordedEvent] = []
        self._by_aggregate: dict[str, list[int]] = {}
        self._by_id: dict[str, int] = {}
        self._ns = 0

    async def append(
        self, events: Sequence[Envelope[Any]], *, expected: int | None = None
    ) -> AppendResult:
        if not events:
            return AppendResult(())
        agg = one_aggregate(events)
        known = [self._by_id.get(e.event_id) for e in events]
        if known[0] is not None:
            return AppendResult(tuple(s for s in known if s is not None), duplicate=True)
        seqs = self._by_aggregate.get(agg, [])
        last = seqs[-1] if seqs else 0
        if expected is not None and expected != last:
            raise ConcurrencyConflict(agg, expected, f"last sequence is {last}")
        out = []
        for env in events:
            self._ns += 1
            seq = len(self._events) + 1
            data = env.to_json()
            subject = subjects.event_subject(env.aggregate_type, env.aggregate_id, env.type)
            decoded = self.registry.decode(data, subject_type=env.type)
            self._events.append(RecordedEvent(seq, subject, self._ns, decoded, data))
            self._by_aggregate.setdefault(agg, []).append(seq)
            self._by_id[env.event_id] = seq
            out.append(seq)
        return AppendResult(tuple(out))

    async def append_pipelined(
        self, commands: Sequence[tuple[Envelope[Any], int | None]]
    ) -> list[AppendResult | EventLogError]:
        """As ``EventLog.append_pipelined``: one outcome per single-event command, in order."""
        out: list[AppendResult | EventLogError] = []
        for env, expected in commands:
            try:
                out.append(await self.append([env], expected=expected))
            except EventLogError as exc:
                out.append(exc)
        return out

    async def load(
        self, aggregate_type: str, aggregate_id: str
    ) -> tuple[list[RecordedEvent], int]:
        seqs = self._by_aggregate.get(subjects.aggregate_filter(aggregate_type, aggregate_id), [])
        return [self._events[s - 1] for s in seqs], (seqs[-1] if seqs else 0)

    async def last_sequence(self, filter_subject: str | None = None) -> int:
        if filter_subject is None:
            return len(self._events)
        return next(
            (e.seq for e in reversed(self._events) if subjects.matches(filter_subject, e.subject)),
            0,
        )

    async def replay(self, *, from_seq: int = 1) -> AsyncIterator[RecordedEvent]:
        for event in self._events[from_seq - 1 :]:
            yield event
