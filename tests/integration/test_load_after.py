"""``EventLog.load(..., after=)``: the rest of an aggregate's history after a sequence already
read, by direct get (one replica) and through the ordered consumer (a replicated stream's
way), on a real nats-server: the events stored since, in order, and the last sequence."""

from __future__ import annotations

import pytest

from gongkai.eventlog import EventLog
from tests.integration.test_direct_get import direct_gets_asked
from tests.integration.test_projection_consumers import submitted


@pytest.mark.parametrize("direct", [True, False], ids=["direct get", "consumer"])
async def test_load_after_reads_only_what_was_stored_since(evlog: EventLog, direct: bool) -> None:
    assert await evlog._loads_directly()
    evlog._direct_load = direct
    await evlog.append([submitted("P1", "c1", "one")])  # type: ignore[list-item]
    await evlog.append([submitted("P2", "c2", "other")])  # type: ignore[list-item]
    await evlog.append([submitted("P1", "c3", "two")], expected=None)  # type: ignore[list-item]
    whole, last = await evlog.load("post", "P1")
    assert [r.envelope.payload.title for r in whole] == ["one", "two"]  # type: ignore[attr-defined]

    assert await evlog.load("post", "P1", after=last) == ([], last)
    assert await evlog.load("post", "P1", after=whole[0].seq) == ([whole[1]], last)

    await evlog.append([submitted("P2", "c4", "other again")])  # type: ignore[list-item]
    await evlog.append([submitted("P1", "c5", "three")], expected=last)  # type: ignore[list-item]
    rest, now = await evlog.load("post", "P1", after=last)
    assert [r.envelope.payload.title for r in rest] == ["three"]  # type: ignore[attr-defined]
    assert now == rest[0].seq > last
    assert await evlog.load("post", "P1") == ([*whole, *rest], now)
    assert await evlog.load("post", "nothing-here", after=0) == ([], 0)


async def test_the_last_sequence_of_a_filter_is_the_same_both_ways(evlog: EventLog) -> None:
    """By direct get (one replica) and by the stream's message get (a replicated stream's
    way): the last matching sequence, 0 for nothing, counted as soon as its append is."""
    assert await evlog._loads_directly()
    filters = ("gk.ev.post.*.*", "gk.ev.post.P1.*", "gk.ev.post.P9.*", "gk.ev.unit.*.*")
    answers = []
    for direct in (True, False):
        evlog._direct_load = direct
        answers.append([await evlog.last_sequence(f) for f in filters])
    assert answers[0] == answers[1] == [0, 0, 0, 0]
    await evlog.append([submitted("P1", "c1", "one")])  # type: ignore[list-item]
    await evlog.append([submitted("P2", "c2", "other")])  # type: ignore[list-item]
    last = await evlog.last_sequence()
    answers = []
    for direct in (True, False):
        evlog._direct_load = direct
        answers.append([await evlog.last_sequence(f) for f in filters])
    assert answers[0] == answers[1] == [last, last - 1, 0, 0]


async def test_a_held_history_with_nothing_new_is_one_question(evlog: EventLog) -> None:
    """``load(after=)`` by direct get asks for the aggregate's last message first and reads
    nothing more when it is not after ``after``: a read on from ``after`` would have the
    server walk every message stored since (``gongkai.directget``)."""
    assert await evlog._loads_directly()
    await evlog.append([submitted("P1", "c1", "one")])  # type: ignore[list-item]
    for i in range(5):
        await evlog.append([submitted(f"Q{i}", f"d{i}", "other")])  # type: ignore[list-item]
    _, last = await evlog.load("post", "P1")
    with direct_gets_asked(evlog.nc) as asked:
        assert await evlog.load("post", "P1", after=last) == ([], last)
    assert asked == [{"last_by_subj": "gk.ev.post.P1.*"}]
    await evlog.append([submitted("P1", "c2", "two")], expected=last)  # type: ignore[list-item]
    with direct_gets_asked(evlog.nc) as asked:
        rest, now = await evlog.load("post", "P1", after=last)
    assert [r.envelope.payload.title for r in rest] == ["two"]  # type: ignore[attr-defined]
    assert now == rest[0].seq
    assert asked[0] == {"last_by_subj": "gk.ev.post.P1.*"}
    assert [a.get("seq") for a in asked[1:]] == [last + 1]
