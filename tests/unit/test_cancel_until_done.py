"""Stopping a consumer's task ends it even when a cancellation is lost on the way."""

from __future__ import annotations

import asyncio

from gongkai.consumer import cancel_until_done


async def test_a_task_that_swallows_a_cancellation_is_cancelled_until_it_ends() -> None:
    """What Python 3.11's wait_for does to a cancellation that lands as its future finishes:
    the task reads on. A stop that cancelled once waited for it forever."""
    swallowed = 0

    async def reads_on() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed == 0:
                    swallowed += 1
                    continue  # the first one is lost
                raise

    task = asyncio.create_task(reads_on())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_until_done(task, every=0.01), timeout=5)
    assert task.cancelled() and swallowed == 1
