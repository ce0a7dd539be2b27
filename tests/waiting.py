"""Waiting for a condition, never for a length of time.

No ``sleep`` stands in for synchronisation in the suite: a test that waits for something to
happen polls for it here, with a deadline, and fails saying what did not happen. The poll
interval below is the only sleep that waits for a result; the others in the suite are part of
their scenario (a slow reader, a client's retry back-off, an outage that lasts a second) and
say so where they are.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

from nats.js import JetStreamContext

#: Seconds between two looks at the condition.
POLL_S = 0.02

Check = Callable[[], Any]  # returns a truth value, or an awaitable of one


async def wait_until(
    check: Check, within: float, what: str | Callable[[], str], *, every: float = POLL_S
) -> float:
    """Poll ``check`` until it is true; the seconds it took. AssertionError naming ``what``
    (a string, or a function giving one: a log tail, say) after ``within`` seconds."""
    t0 = time.monotonic()
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return time.monotonic() - t0
        if time.monotonic() - t0 > within:
            raise AssertionError(f"not within {within} s: {what() if callable(what) else what}")
        await asyncio.sleep(every)  # the poll interval


def wait_until_sync(
    check: Callable[[], Any], within: float, what: str, *, every: float = POLL_S
) -> float:
    """``wait_until`` for code without an event loop."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > within:
            raise AssertionError(f"not within {within} s: {what}")
        time.sleep(every)  # the poll interval
    return time.monotonic() - t0


def stable(read: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[bool]]:
    """A check that is true once two reads in a row give the same value (a log that stopped
    growing); poll it with an ``every`` long enough for the next change to have shown."""
    last: list[Any] = [object()]

    async def check() -> bool:
        now = await read()
        same = now == last[0]
        last[0] = now
        return same

    return check


async def consumers_idle(js: JetStreamContext, stream: str) -> bool:
    """Every durable consumer on ``stream`` has handled everything: nothing pending, nothing
    delivered but unacknowledged. What a reaction would still record, it has recorded."""
    infos = await js.consumers_info(stream)
    durable = [i for i in infos if i.config.durable_name]
    return all(i.num_pending == 0 and i.num_ack_pending == 0 for i in durable)
