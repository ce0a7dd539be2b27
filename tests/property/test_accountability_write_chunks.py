"""The rebuild's write, a chunk of rows at a time, writes what one chunk of all would."""

from __future__ import annotations

import gc
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gongkai.access import masked_event
from gongkai_accountability.adapters import sql
from gongkai_accountability.adapters.sql import AccountabilityProjection
from gongkai_accountability.domain.fold import evolve
from gongkai_accountability.domain.rows import MemoryRows
from tests.property.test_projection_batches import (
    HISTORIES,
    _engines_end_with_the_file,  # noqa: F401 - its engines are let go of after this file too
    prepared,
    recorded,
)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(history=HISTORIES, chunk=st.integers(min_value=1, max_value=4))
def test_rows_written_in_chunks_equal_rows_written_at_once(
    history: list[Any], chunk: int
) -> None:
    events = recorded(history)
    rows = MemoryRows()
    for ev in events:
        evolve(rows, masked_event(ev.envelope), ev.seq)
    digests = []
    for size in (chunk, 10**9):
        with mock.patch.object(sql, "WRITE_CHUNK", size):
            projection = AccountabilityProjection()
            store = prepared(AccountabilityProjection, projection)
            projection.write_all(store.engine, rows, len(events))
            digests.append(store.digest(projection))
        assert gc.isenabled()  # the collector is back on after the write
    assert digests[0] == digests[1]


def test_a_county_written_in_chunks_equals_it_written_at_once() -> None:
    """bench_accountability's county (posts, signatures, publications, one unreviewed): tables
    of more rows than a chunk."""
    from bench.bench_accountability import directory, post_events

    envs = [*directory(), *(e for i in range(60) for e in post_events(i))]
    rows = MemoryRows()
    for seq, env in enumerate(envs, 1):
        evolve(rows, masked_event(env), seq)
    assert len(rows.tables["post"]) == 60
    assert len(rows.tables["violation"]) + len(rows.tables["todo"]) == 2  # posts 0 and 50
    digests = []
    for size in (7, 10**9):
        with mock.patch.object(sql, "WRITE_CHUNK", size):
            projection = AccountabilityProjection()
            store = prepared(AccountabilityProjection, projection)
            projection.write_all(store.engine, rows, len(envs))
            digests.append(store.digest(projection))
            assert sum(1 for _ in store.rows(projection.tables_by_name["post"])) == 60
    assert digests[0] == digests[1]
