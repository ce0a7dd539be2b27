"""One server read shared by every caller that needs it at about the same time.

``Fresh`` answers each caller with a read *sent after the caller asked*: a caller that arrives
while a read is on its way waits for the next one, which goes out as soon as the current one
returns and answers everybody who arrived meanwhile. So the answer is never older than the
question (what a read-your-writes check such as the directory's revocation guarantee needs),
while under load one round trip serves dozens of requests instead of one each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


def _retrieve(fut: asyncio.Future[T]) -> None:
    # A read whose every waiter was cancelled must not log "exception never retrieved".
    if not fut.cancelled():
        fut.exception()


class Fresh(Generic[T]):
    """``await fresh()``: the result of ``read()`` begun after this call."""

    def __init__(self, read: Callable[[], Awaitable[T]]) -> None:
        self._read = read
        #: The read the callers arriving now will get; not sent yet.
        self._next: asyncio.Future[T] | None = None
        self._task: asyncio.Task[None] | None = None

    async def __call__(self) -> T:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            self._next.add_done_callback(_retrieve)
        fut = self._next
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        # shield: one caller's cancellation must not cancel the others' answer.
        return await asyncio.shield(fut)

    async def _run(self) -> None:
        while self._next is not None:
            # Taken before the read is sent: whoever arrives from here on waits for the next.
            fut, self._next = self._next, None
            try:
                value = await self._read()
            except asyncio.CancelledError:
                # The service is stopping: nobody waits for an answer that will not come.
                fut.cancel()
                if self._next is not None:
                    self._next.cancel()
                    self._next = None
                raise
            except Exception as exc:  # noqa: BLE001 - handed to every waiter of this read
                fut.set_exception(exc)
            else:
                fut.set_result(value)
