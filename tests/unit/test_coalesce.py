"""``Fresh``: one read shared by concurrent callers, never one sent before a caller asked."""

from __future__ import annotations

import asyncio

import pytest

from gongkai.runtime.coalesce import Fresh


class GatedRead:
    """A read that returns how many reads were sent before it, once let through."""

    def __init__(self) -> None:
        self.sent = 0
        self.gates: list[asyncio.Event] = []
        self.fail: Exception | None = None

    async def __call__(self) -> int:
        self.sent += 1
        n = self.sent
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        if self.fail is not None:
            raise self.fail
        return n

    async def sent_count(self, n: int) -> None:
        # Each step lets the loop run the coalescer's task; bounded, never a sleep.
        for _ in range(100):
            if self.sent >= n:
                return
            await asyncio.sleep(0)
        raise AssertionError(f"{n} reads expected, {self.sent} sent")


async def test_callers_during_a_read_share_the_next_one() -> None:
    read = GatedRead()
    fresh = Fresh(read)
    first = asyncio.create_task(fresh())
    await read.sent_count(1)
    # These arrive while read 1 is on its way: its answer may predate them, so they must
    # get read 2, sent after read 1 returns, and all of them the same one.
    later = [asyncio.create_task(fresh()) for _ in range(20)]
    await asyncio.sleep(0)
    assert read.sent == 1
    read.gates[0].set()
    assert await first == 1
    await read.sent_count(2)
    read.gates[1].set()
    assert await asyncio.gather(*later) == [2] * 20
    assert read.sent == 2


async def test_a_failed_read_fails_its_callers_only() -> None:
    read = GatedRead()
    fresh = Fresh(read)
    a, b = asyncio.create_task(fresh()), asyncio.create_task(fresh())
    await read.sent_count(1)
    read.fail = TimeoutError("no answer")
    read.gates[0].set()
    for t in (a, b):
        with pytest.raises(TimeoutError):
            await t
    read.fail = None
    c = asyncio.create_task(fresh())
    await read.sent_count(2)
    read.gates[1].set()
    assert await c == 2


async def test_one_cancelled_caller_does_not_cancel_the_others() -> None:
    read = GatedRead()
    fresh = Fresh(read)
    a, b = asyncio.create_task(fresh()), asyncio.create_task(fresh())
    await read.sent_count(1)
    a.cancel()
    with pytest.raises(asyncio.CancelledError):
        await a
    read.gates[0].set()
    assert await b == 1
