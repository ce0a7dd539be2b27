"""A platform a test stopped is freed: nothing the test process keeps holds its services.

The suite starts hundreds of platforms in each worker. One held on to (FastAPI's caches of its
routes, ``conftest.forget_routes``) kept its services' projections, rows and engines alive for
the rest of the run, and every full collection of the cyclic collector walked them again.
"""

from __future__ import annotations

import gc
import typing
import weakref
from pathlib import Path

import pytest

from gongkai.eventlog import EventLog
from gongkai.natsserver import NatsServer
from gongkai.runtime.service import Service
from tests.conftest import _running_platform


async def test_a_stopped_platform_leaves_nothing_alive(
    nats_server: NatsServer, evlog: EventLog, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    services: list[weakref.ref[Service]] = []
    async with _running_platform(nats_server.url, evlog, tmp_path, request.node) as platform:
        services = [weakref.ref(svc) for svc in platform.services.values()]
        assert (await platform.client.get("/readyz")).status_code == 200  # its routes answered
        del platform
    # typing keeps its last 128 subscriptions of each kind (a route's Annotated[Principal,
    # Depends(authenticate)] among them): a bounded few platforms, not what grows. Let go of
    # them here so that what is checked is only what would grow.
    for clear in typing._cleanups:  # type: ignore[attr-defined]
        clear()
    gc.collect()
    assert len(services) == 4
    assert [ref() for ref in services] == [None] * 4
