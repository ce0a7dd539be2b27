"""review's kept histories (``gongkai_review.adapters.history``) on a real nats-server: each
read answers what a whole read of the log answers, asking the log only for what was stored
after the kept history's end; the least recently read are dropped past the bound."""

from __future__ import annotations

from typing import Any

import pytest

from gongkai.eventlog import EventLog
from gongkai_review.adapters.history import Histories
from tests.integration.test_projection_consumers import submitted


async def test_a_kept_history_is_read_on_from_its_end(
    evlog: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, int]] = []
    load = evlog.load

    async def counted(aggregate_type: str, aggregate_id: str, *, after: int = 0) -> Any:
        asked.append((aggregate_id, after))
        return await load(aggregate_type, aggregate_id, after=after)

    kept = Histories(kept=2)
    await evlog.append([submitted("P1", "c1", "one")])  # type: ignore[list-item]
    monkeypatch.setattr(evlog, "load", counted)
    first = await kept.load(evlog, "post", "P1")
    assert first == await load("post", "P1")
    await evlog.append([submitted("P1", "c2", "two")], expected=None)  # type: ignore[list-item]
    second = await kept.load(evlog, "post", "P1")
    assert second == await load("post", "P1")
    assert [r.envelope.payload.title for r in second[0]] == ["one", "two"]  # type: ignore[attr-defined]
    assert asked == [("P1", 0), ("P1", first[1])]

    # Nothing new: the log is asked, the kept history answers.
    assert await kept.load(evlog, "post", "P1") == second
    assert asked[-1] == ("P1", second[1])

    # Two more aggregates read: P1, the least recently read, is dropped and read whole again.
    await kept.load(evlog, "post", "P2")
    await kept.load(evlog, "post", "P3")
    assert await kept.load(evlog, "post", "P1") == second
    assert asked[-1] == ("P1", 0)
