"""A subject's stored messages through the stream's batched direct get (``gongkai.directget``),
against a real nats-server: the same messages in the same order as an ordered consumer reads,
across several batches, from a sequence on, nothing for a subject nothing matches."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from nats.aio.client import Client as NATS

from gongkai import subjects
from gongkai.directget import StoredMsg, last_stored, read_subject, stored_ns
from gongkai.eventlog import EventLog, ack_position
from tests.integration.test_projection_consumers import submitted


def test_the_stored_time_keeps_its_nanoseconds() -> None:
    assert stored_ns("1970-01-01T00:00:01.000000007Z") == 1_000_000_007
    assert stored_ns("2026-12-02T23:18:35.389525546Z") == 1_796_253_515_389_525_546
    assert stored_ns("2026-12-02T23:18:35Z") == 1_796_253_515_000_000_000
    assert stored_ns("2026-12-02T23:18:35.5Z") == 1_796_253_515_500_000_000


async def _consumer_read(
    evlog: EventLog, filt: str, from_seq: int = 1
) -> list[tuple[int, str, bytes, int, str | None]]:
    out = []
    async for msg in evlog.raw_replay(filter_subject=filt, from_seq=from_seq):
        seq, ns, _ = ack_position(msg)
        out.append((seq, msg.subject, msg.data, ns, (msg.headers or {}).get("Gk-Sig")))
    return out


async def test_direct_reads_equal_an_ordered_consumers(evlog: EventLog) -> None:
    for i in range(7):
        await evlog.append([submitted(f"P{i % 3}", f"c{i}")])  # type: ignore[list-item]
    nc, stream = evlog.nc, subjects.STREAM
    for filt in (
        subjects.aggregate_filter("post", "P0"),
        subjects.aggregate_filter("post", "P1"),
        subjects.type_filter("PostSubmitted"),
    ):
        for from_seq in (1, 3):
            want = await _consumer_read(evlog, filt, from_seq)
            assert want, filt
            for batch in (1, 2, 512):  # one request, or several with the rest after each
                got = [
                    (m.seq, m.subject, m.data, m.stored_ns, m.headers.get("Gk-Sig"))
                    async for m in read_subject(nc, stream, filt, from_seq=from_seq, batch=batch)
                ]
                assert got == want, (filt, from_seq, batch)
    nothing = subjects.aggregate_filter("post", "P9")
    assert [m async for m in read_subject(nc, stream, nothing)] == []
    last = await evlog.last_sequence()
    assert [m async for m in read_subject(nc, stream, "gk.ev.>", from_seq=last + 1)] == []


@contextlib.contextmanager
def direct_gets_asked(nc: NATS) -> Iterator[list[dict[str, Any]]]:
    """Every direct-get request published on ``nc`` inside the block, as the JSON it asked."""
    asked: list[dict[str, Any]] = []
    publish = nc.publish

    async def recording(subject: str, payload: bytes = b"", **kw: Any) -> None:
        if subject.startswith("$JS.API.DIRECT.GET."):
            asked.append(json.loads(payload))
        await publish(subject, payload, **kw)

    nc.publish = recording  # type: ignore[method-assign]
    try:
        yield asked
    finally:
        nc.publish = publish  # type: ignore[method-assign]


async def test_a_read_never_asks_for_more_than_match(evlog: EventLog) -> None:
    """A request for more messages than match makes nats-server walk every message stored
    after the last match (``gongkai.directget``): after the first message, each request asks
    for at most what the answer before said was still there."""
    for i in range(9):
        await evlog.append([submitted(f"P{i % 3}", f"c{i}")])  # type: ignore[list-item]
    nc, stream = evlog.nc, subjects.STREAM
    filt = subjects.aggregate_filter("post", "P1")
    for batch, want in ((512, [1, 2]), (1, [1, 1, 1])):
        with direct_gets_asked(nc) as asked:
            got = [m async for m in read_subject(nc, stream, filt, batch=batch)]
        assert len(got) == 3
        assert [a["batch"] for a in asked] == want, batch


def _fields(m: StoredMsg) -> tuple[int, str, bytes, int, str | None]:
    return (m.seq, m.subject, m.data, m.stored_ns, m.headers.get("Gk-Sig"))


async def test_the_last_stored_message_of_a_subject(evlog: EventLog) -> None:
    for i in range(5):
        await evlog.append([submitted(f"P{i % 2}", f"c{i}")])  # type: ignore[list-item]
    nc, stream = evlog.nc, subjects.STREAM
    for agg in ("P0", "P1"):
        filt = subjects.aggregate_filter("post", agg)
        every = [m async for m in read_subject(nc, stream, filt)]
        last = await last_stored(nc, stream, filt)
        assert last is not None
        assert _fields(last) == _fields(every[-1])
    assert await last_stored(nc, stream, subjects.aggregate_filter("post", "P9")) is None
