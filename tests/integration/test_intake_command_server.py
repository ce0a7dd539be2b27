"""intake's bus requests on its own connection (``CommandServer``): concurrent, bounded, and
answered to the end when the service stops; against a real nats-server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping

import nats
import pytest
from nats.aio.client import Client

from gongkai import subjects
from gongkai.natsserver import NatsServer
from gongkai_intake.entrypoints.bus import MAX_WORKERS, CommandServer
from tests.waiting import wait_until


class Held:
    """An answer that waits until the test lets it go: a request that is 'in hand'."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release: dict[str, asyncio.Event] = {}

    async def __call__(
        self, data: bytes, headers: Mapping[str, str]
    ) -> tuple[bytes, dict[str, str]]:
        name = json.loads(data)["name"]
        if name == "probe":
            return b"{}", {"Gk-Status": "200"}
        self.started.append(name)
        await self.release.setdefault(name, asyncio.Event()).wait()
        return json.dumps({"answered": name}).encode(), {"Gk-Status": "201"}

    def let_go(self, name: str) -> None:
        self.release.setdefault(name, asyncio.Event()).set()


@pytest.fixture
async def clients(nats_server: NatsServer) -> AsyncIterator[tuple[Client, Client]]:
    service, caller = await nats.connect(nats_server.url), await nats.connect(nats_server.url)
    try:
        yield service, caller
    finally:
        await caller.close()
        await service.close()


SUBJECT = subjects.command_subject("intake", "submit_post")


async def serving(
    held: Held, clients: tuple[Client, Client], limit: int = MAX_WORKERS
) -> CommandServer:
    """A server of ``held`` started on the service's connection, and reached from the
    caller's: nats-server, rarely, answers a request from another connection with "no
    responders" just after a subscription it has confirmed (a flush after the SUB); a probe is
    retried until it gets through."""
    service, caller = clients
    server = CommandServer({"submit_post": held}, limit=limit)
    await server.start(service)

    async def through() -> bool:
        try:
            await caller.request(SUBJECT, b'{"name": "probe"}', timeout=5)
        except nats.errors.NoRespondersError:
            return False
        return True

    await wait_until(through, 5, "the caller's requests reach the service")
    return server


def ask(caller: Client, name: str) -> asyncio.Task[dict[str, object]]:
    async def go() -> dict[str, object]:
        msg = await caller.request(SUBJECT, json.dumps({"name": name}).encode(), timeout=10)
        assert msg.headers is not None and msg.headers["Gk-Status"] == "201"
        answer: dict[str, object] = json.loads(msg.data)
        return answer

    return asyncio.create_task(go())


async def test_a_request_is_answered_while_an_earlier_one_waits(
    clients: tuple[Client, Client],
) -> None:
    _, caller = clients
    held = Held()
    server = await serving(held, clients)
    try:
        first = ask(caller, "first")
        await wait_until(lambda: held.started == ["first"], 5, "the first request in hand")
        second = ask(caller, "second")
        held.let_go("second")
        # nats-py runs one subscription's callbacks one after another: served inline, the
        # second would wait for the first.
        assert await asyncio.wait_for(second, 5) == {"answered": "second"}
        assert not first.done()
        held.let_go("first")
        assert await asyncio.wait_for(first, 5) == {"answered": "first"}
    finally:
        await server.stop()


async def test_at_most_limit_requests_are_in_hand(clients: tuple[Client, Client]) -> None:
    service, caller = clients
    held = Held()
    server = await serving(held, clients, limit=2)
    try:
        asked = [ask(caller, f"r{i}") for i in range(3)]
        await wait_until(lambda: len(held.started) == 2, 5, "two requests in hand")
        # The server has the three requests, then the service's connection has them all.
        await caller.flush()
        await service.flush()
        assert len(held.started) == 2
        held.let_go(held.started[0])
        await wait_until(lambda: len(held.started) == 3, 5, "the third taken once one ended")
        for name in held.started:
            held.let_go(name)
        answers = await asyncio.wait_for(asyncio.gather(*asked), 5)
        assert sorted(str(a["answered"]) for a in answers) == ["r0", "r1", "r2"]
    finally:
        await server.stop()


async def test_stop_answers_what_is_in_hand_and_takes_nothing_more(
    clients: tuple[Client, Client],
) -> None:
    service, caller = clients
    held = Held()
    server = await serving(held, clients)
    in_hand = ask(caller, "in-hand")
    await wait_until(lambda: held.started == ["in-hand"], 5, "the request in hand")
    stopping = asyncio.create_task(server.stop())
    # nats-py drops a subscription from its client once it has drained (no public view).
    await wait_until(lambda: not service._subs, 5, "the subscription drained")
    assert not stopping.done()  # it waits for the request in hand
    held.let_go("in-hand")
    await asyncio.wait_for(stopping, 5)
    assert await asyncio.wait_for(in_hand, 5) == {"answered": "in-hand"}
    with pytest.raises(nats.errors.NoRespondersError):
        await caller.request(SUBJECT, json.dumps({"name": "late"}).encode(), timeout=5)
    assert held.started == ["in-hand"]
