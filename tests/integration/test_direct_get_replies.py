"""Direct gets share one reply subscription per connection (``gongkai.directget``), against a
real nats-server: reads at once on one connection each get their own answers, nothing more is
subscribed per read, a read whose request goes unanswered gives up after its timeout, and one
waiting when the connection closes raises at once."""

from __future__ import annotations

import asyncio
from typing import Any

import nats
import pytest
from nats.errors import ConnectionClosedError

from gongkai import directget, subjects
from gongkai.directget import DirectGetError, read_subject
from gongkai.eventlog import EventLog
from gongkai.natsserver import NatsServer
from tests.integration.test_projection_consumers import submitted
from tests.waiting import wait_until


async def test_reads_at_once_each_get_their_own_answers(
    evlog: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(30):
        await evlog.append([submitted(f"P{i % 6}", f"c{i}")])  # type: ignore[list-item]
    nc = evlog.nc

    async def read(post: str, batch: int) -> list[tuple[int, str]]:
        filt = subjects.aggregate_filter("post", post)
        return [(m.seq, m.subject) async for m in read_subject(nc, subjects.STREAM, filt,
                                                               batch=batch)]

    alone = [await read(f"P{i}", 512) for i in range(6)]
    assert all(len(a) == 5 for a in alone)
    subscribed: list[str] = []
    subscribe = nc.subscribe

    async def counted(subject: str, *args: Any, **kw: Any) -> Any:
        subscribed.append(subject)
        return await subscribe(subject, *args, **kw)

    monkeypatch.setattr(nc, "subscribe", counted)
    together = await asyncio.gather(*(read(f"P{i % 6}", 1 + i % 3) for i in range(24)))
    assert together == [alone[i % 6] for i in range(24)]
    assert subscribed == []  # no read subscribed on its own
    assert directget._REPLIES[nc].waiting == {}


async def test_an_unanswered_read_times_out_and_a_closed_connection_ends_it(
    nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    nc = await nats.connect(nats_server.url)
    publish = nc.publish

    async def dropped(subject: str, payload: bytes = b"", **kw: Any) -> None:
        if not subject.startswith("$JS.API.DIRECT.GET."):
            await publish(subject, payload, **kw)

    monkeypatch.setattr(nc, "publish", dropped)  # the request never reaches the server
    monkeypatch.setattr(directget, "TIMEOUT_S", 0.3)
    with pytest.raises(DirectGetError, match="no answer"):
        [m async for m in read_subject(nc, subjects.STREAM, "gk.>")]

    monkeypatch.setattr(directget, "TIMEOUT_S", 60.0)
    reading = asyncio.ensure_future(_drain(read_subject(nc, subjects.STREAM, "gk.>")))
    replies = directget._REPLIES[nc]
    await wait_until(lambda: len(replies.waiting) == 1, 5, "the read waits for its answer")
    await nc.close()
    with pytest.raises(ConnectionClosedError):
        await asyncio.wait_for(reading, 5)  # not the read's 60 s


async def _drain(read: Any) -> list[Any]:
    return [m async for m in read]
