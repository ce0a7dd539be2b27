"""Shared fixtures: a real nats-server per test session on a free loopback port."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gongkai import subjects
from gongkai.eventlog import EventLog, StreamSettings
from gongkai.natsserver import NatsServer


@pytest.fixture(scope="session")
def nats_server() -> Iterator[NatsServer]:
    with tempfile.TemporaryDirectory(prefix="gongkai-test-nats-") as d:
        # Tests favour speed; the embedded default keeps sync_interval: always.
        srv = NatsServer(store_dir=Path(d), sync_always=False).start()
        try:
            yield srv
        finally:
            srv.stop()


@pytest.fixture
async def evlog(nats_server: NatsServer) -> AsyncIterator[EventLog]:
    """A connected client on fresh streams: each test starts with an empty log.

    Deleting the whole stream is allowed (deny_delete/deny_purge protect its messages); only
    tests do it, to start clean.
    """
    log = await EventLog.connect(nats_server.url)
    await log.ensure_stream(StreamSettings(duplicate_window_s=120))
    try:
        yield log
    finally:
        for name in (subjects.STREAM, subjects.DLQ_STREAM):
            with contextlib.suppress(Exception):
                await log.js.delete_stream(name)
        await log.close()
