"""The event-log client against a real nats-server."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta

import nats.errors
import nats.js.errors
import pytest

from gongkai import subjects
from gongkai.eventlog import ConcurrencyConflict, EventLog
from gongkai.events import Actor, new_event
from gongkai.events.contracts.review import ReviewSigned
from gongkai.natsserver import NatsServer
from tests.builders import submission

ACTOR = Actor(person="p-maker", role="maker", unit="finance")
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def submitted(post: str, command: str, title: str = "t") -> object:
    return submission(post, command, actor=ACTOR, title=title, at=T0, body="body")


def signed(post: str, command: str, index: int = 0) -> object:
    return new_event(
        ReviewSigned(
            post_id=post,
            chain=1,
            stage="leader",
            decision="agree",
            signer=ACTOR,
            content_digest="a" * 64,
        ),
        aggregate_id=post,
        actor=ACTOR,
        command_id=command,
        index=index,
        recorded_at=T0,
    )


async def count(evlog: EventLog) -> int:
    return await evlog.last_sequence()


async def test_append_and_load_one_aggregate(evlog: EventLog) -> None:
    r1 = await evlog.append([submitted("P1", "c1")], expected=0)
    await evlog.append([submitted("P2", "c2")], expected=0)
    r3 = await evlog.append([submitted("P1", "c3", "second")], expected=r1.last)
    history, last = await evlog.load("post", "P1")
    assert [e.seq for e in history] == [1, 3]
    assert last == r3.last == 3
    assert history[1].envelope.payload.title == "second"
    assert history[0].subject == "gk.ev.post.P1.PostSubmitted"


async def test_stale_expected_sequence_is_refused_and_records_nothing(evlog: EventLog) -> None:
    await evlog.append([submitted("P1", "c1")], expected=0)
    with pytest.raises(ConcurrencyConflict):
        await evlog.append([submitted("P1", "c2")], expected=0)
    await evlog.append([signed("P1", "c3")], expected=0)
    with pytest.raises(ConcurrencyConflict):
        await evlog.append([signed("P1", "c4", 0), signed("P1", "c4", 1)], expected=0)
    assert await count(evlog) == 2


async def test_same_command_twice_records_once(evlog: EventLog) -> None:
    first = await evlog.append([submitted("P1", "cmd-1")], expected=0)
    again = await evlog.append([submitted("P1", "cmd-1")], expected=0)
    assert again.duplicate and again.sequences == first.sequences
    batch = [signed("P9", "cmd-2", 0), signed("P9", "cmd-2", 1)]
    b1 = await evlog.append(batch, expected=0)
    b2 = await evlog.append(batch, expected=0)
    assert b2.duplicate and b2.sequences == b1.sequences
    assert await count(evlog) == 3


async def test_concurrent_writers_exactly_one_wins(evlog: EventLog) -> None:
    await evlog.append([submitted("P1", "c0")], expected=0)
    results = await asyncio.gather(
        *(evlog.append([submitted("P1", f"w{i}")], expected=1) for i in range(20)),
        return_exceptions=True,
    )
    wins = [r for r in results if not isinstance(r, BaseException)]
    assert len(wins) == 1
    assert all(isinstance(r, ConcurrencyConflict) for r in results if r not in wins)
    assert await count(evlog) == 2


async def test_multi_event_command_is_atomic(evlog: EventLog) -> None:
    r = await evlog.append([signed("P1", "c1", i) for i in range(3)], expected=0)
    assert r.sequences == (1, 2, 3)


async def test_replay_from_sequence_and_from_time(evlog: EventLog) -> None:
    for i in range(5):
        await evlog.append([submitted(f"P{i}", f"c{i}")], expected=0)
    seqs = [e.seq async for e in evlog.replay(from_seq=3)]
    assert seqs == [3, 4, 5]
    # The scenario: the wall clock moves on between the appends (from_time is a wall-clock
    # boundary); nothing is awaited here, every append above was already acknowledged.
    await asyncio.sleep(0.05)
    mark = datetime.now(UTC)
    await asyncio.sleep(0.05)  # the clock moves on again before the next appends
    for i in range(5, 7):
        await evlog.append([submitted(f"P{i}", f"c{i}")], expected=0)
    assert [e.seq async for e in evlog.replay(from_time=mark)] == [6, 7]
    assert [e.seq async for e in evlog.replay(from_time=mark + timedelta(hours=1))] == []
    assert [e.seq async for e in evlog.replay(from_seq=99)] == []
    by_type = [
        e.seq async for e in evlog.replay(filter_subject=subjects.type_filter("PostSubmitted"))
    ]
    assert by_type == list(range(1, 8))


async def test_replay_gives_what_decode_gives_and_refuses_what_it_refuses(
    evlog: EventLog,
) -> None:
    """Replay decodes inline without keys (issue 18): the same events as ``decode`` of each
    message, and a stored message that is no event still stops it, as before."""
    from gongkai.eventlog import _recorded
    from gongkai.events import EventDecodeError

    await evlog.append([submitted("P1", "c1")], expected=0)
    await evlog.append([signed("P1", "c2", i) for i in range(2)], expected=0)
    await evlog.js.publish("gk.ev.post.P2.PostSubmitted", b"{not json", stream=evlog.stream)
    keys, evlog.keys = evlog.keys, None
    try:
        replayed = [e async for e in evlog.replay(filter_subject="gk.ev.*.P1.>")]
        decoded = [
            evlog.decode(m) async for m in evlog.raw_replay(filter_subject="gk.ev.*.P1.>")
        ]
        assert replayed == decoded and [e.seq for e in replayed] == [1, 2, 3]
        assert [type(e.envelope.payload).__name__ for e in replayed] == [
            "PostSubmitted", "ReviewSigned", "ReviewSigned",
        ]
        one = replayed[0]
        made = _recorded(one.seq, one.subject, one.stored_ns, one.envelope, one.data)
        assert made == one and repr(made) == repr(one)
        with pytest.raises(EventDecodeError, match="not JSON"):
            _ = [e async for e in evlog.replay()]
    finally:
        evlog.keys = keys
    if keys is not None:
        # With trust anchors the unsigned message is never believed, and the replay goes on.
        assert [e.seq async for e in evlog.replay()] == [1, 2, 3]


async def test_pipelined_appends(evlog: EventLog) -> None:
    cmds = [(submitted(f"Q{i}", str(uuid.uuid4())), 0) for i in range(200)]
    results = await evlog.append_pipelined(cmds)  # type: ignore[arg-type]
    assert all(not isinstance(r, Exception) for r in results)
    stale = await evlog.append_pipelined([(submitted("Q1", "x"), 0)])  # type: ignore[list-item]
    assert isinstance(stale[0], ConcurrencyConflict)
    assert await count(evlog) == 200


async def test_a_lone_append_refused_or_unanswered_fails_as_js_publish_did(
    nats_server: NatsServer,
) -> None:
    """A one-at-a-time append waits on the shared ack inbox, not nats-py's request: the same
    errors as before, and nothing left waiting after either."""
    log = await EventLog.connect(nats_server.url)
    log.timeout = 0.5
    try:
        # No stream takes the subject (the log was never created): refused at once.
        with pytest.raises(nats.js.errors.NoStreamResponseError):
            await log.append([submitted("P1", "c1")], expected=0)
        # Something takes the subject but never answers with a PubAck: the timeout.
        sub = await log.nc.subscribe(subjects.all_events())
        await log.nc.flush()
        with pytest.raises(nats.errors.TimeoutError):
            await log.append([submitted("P1", "c2")], expected=0)
        assert not log._ack_futures
        await sub.unsubscribe()
        [refused] = await log.append_pipelined([(submitted("P2", "c3"), 0)])  # type: ignore[list-item]
        assert str(refused) == "no stream answers: is the stream created?"
        # The log created, the same client appends (the inbox and its token counter kept).
        await log.ensure_stream()
        first = await log.append([submitted("P1", "c4")], expected=0)
        assert first.sequences == (1,) and not first.duplicate
        again = await log.append([submitted("P1", "c4")], expected=0)
        assert again.duplicate and again.sequences == (1,)
    finally:
        with contextlib.suppress(Exception):
            for name in (subjects.STREAM, subjects.DLQ_STREAM):
                await log.js.delete_stream(name)
        await log.close()


async def test_lone_appends_amid_a_pipelined_burst_on_one_connection(evlog: EventLog) -> None:
    """A lone append writes at once only when nothing is queued before it; amid a burst that
    the flusher writes, both kinds land, each acknowledged to its own caller."""
    burst = [(submitted(f"B{i}", f"b-{i}"), 0) for i in range(300)]
    lone = [submitted(f"L{i}", f"l-{i}") for i in range(30)]

    async def one_by_one() -> list[int]:
        return [(await evlog.append([e], expected=0)).last for e in lone]

    piped, seqs = await asyncio.gather(
        evlog.append_pipelined(burst),  # type: ignore[arg-type]
        one_by_one(),
    )
    assert not [r for r in piped if isinstance(r, Exception)]
    got = sorted([r.last for r in piped if not isinstance(r, Exception)] + seqs)
    assert got == list(range(1, 331))
    assert not evlog._ack_futures
    history, _ = await evlog.load("post", "L7")
    assert [e.envelope.event_id for e in history] == [lone[7].event_id]  # type: ignore[attr-defined]


async def test_lone_appends_of_one_turn_share_a_signature_while_others_wait(
    evlog: EventLog,
) -> None:
    """An append with nothing else in flight is signed alone, at once; the lone appends made
    in one turn of the event loop while another waits for its PubAck share one batch signature
    (bench/profiles/README.md, the front door's fifth part). Every event verifies on its own,
    in a store that has seen no other event of its batch, and a verifying replay reads all."""
    from gongkai.trust.keys import HDR_BATCH, Keyring, ServiceKey, TrustStore

    key = ServiceKey.generate("intake")
    trust = TrustStore()
    trust.add(key)
    keys, evlog.keys = evlog.keys, Keyring(trust, {"intake": key})
    try:
        await evlog.append([submitted("S0", "s0")], expected=0)  # type: ignore[list-item]
        await asyncio.gather(
            *(
                evlog.append([submitted(f"S{i}", f"s{i}")], expected=0)  # type: ignore[list-item]
                for i in range(1, 21)
            )
        )
        msgs = [m async for m in evlog.raw_replay()]
        replayed = [e.envelope.aggregate_id async for e in evlog.replay()]
    finally:
        evlog.keys = keys
    # S0 alone; S1 found nothing in flight either; S2-S20 were made while S1 waited.
    assert [(m.headers or {}).get(HDR_BATCH) for m in msgs] == [
        None, None, *(f"{i}/19" for i in range(19)),
    ]
    for m in msgs:
        fresh = TrustStore()
        fresh.add(key)
        assert fresh.check(m.subject, m.data, m.headers, "PostSubmitted").service == "intake"
    assert replayed == [f"S{i}" for i in range(21)]
