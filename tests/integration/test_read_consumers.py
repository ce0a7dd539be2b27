"""Many one-shot reads in a row: each aggregate load is an ephemeral ordered consumer.

nats-server 2.15 caps a stream at 1,000 consumers. A finished read's consumer used to stay on
the server for the default inactivity threshold (5 s), so a few hundred loads a second filled
the cap and every further load failed ("maximum consumers limit reached", a 503 on any route);
schemathesis found it through GET /posts/{id}/review. Each read's consumer now goes half a
second after the read. On a stream of one replica ``load`` reads by direct get and makes no
consumer at all; the consumer read (a replicated stream's) is driven here too.
"""

from __future__ import annotations

import time

import pytest

from gongkai import subjects
from gongkai.eventlog import EventLog
from tests.integration.test_projection_consumers import submitted


@pytest.mark.parametrize("direct", [True, False], ids=["direct get", "consumer"])
async def test_thousands_of_loads_in_a_row_do_not_exhaust_the_consumer_cap(
    evlog: EventLog, direct: bool
) -> None:
    await evlog.append([submitted("P1", "c1")])  # type: ignore[list-item]
    assert await evlog._loads_directly()  # one replica, allow_direct: the log's own settings
    evlog._direct_load = direct
    t0 = time.perf_counter()
    n = 2500
    for i in range(n):
        events, _ = await evlog.load("post", "P1" if i % 2 else "nothing-here")
        assert len(events) == (1 if i % 2 else 0)
    took = time.perf_counter() - t0
    info = await evlog.js.stream_info(subjects.STREAM)
    print(f"\n{n} loads in {took:.1f} s; {info.state.consumer_count} consumers left")
    assert info.state.consumer_count < 1000
    if direct:
        assert info.state.consumer_count == 0
