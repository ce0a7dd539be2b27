"""The rebuild's write, a chunk of rows at a time, writes what one chunk of all would."""

from __future__ import annotations

import gc
from typing import Any
from unittest import mock

import pytest
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


def _county(posts: int) -> tuple[MemoryRows, int]:
    from bench.bench_accountability import directory, post_events

    envs = [*directory(), *(e for i in range(posts) for e in post_events(i))]
    rows = MemoryRows()
    for seq, env in enumerate(envs, 1):
        evolve(rows, masked_event(env), seq)
    return rows, len(envs)


def test_posts_encoded_by_a_forked_child_are_written_as_encoded_here() -> None:
    """``write_all`` with the posts encoded by a forked child (in chunks of 7, while this
    process writes the other tables) writes the rows it writes alone."""
    rows, last = _county(60)
    digests = []
    for helped, least in ((("post",), 1), ((), 1), (("post",), 61)):
        with (
            mock.patch.object(sql, "HELPED", helped),
            mock.patch.object(sql, "HELPER_MIN_ROWS", least),
            mock.patch.object(sql, "HELPER_CHUNK", 7),
            mock.patch.object(sql.forked, "Forked", wraps=sql.forked.Forked) as forks,
        ):
            projection = AccountabilityProjection()
            store = prepared(AccountabilityProjection, projection)
            projection.write_all(store.engine, rows, last)
            digests.append(store.digest(projection))
        # A child only where the table has enough rows for one.
        assert forks.call_count == (1 if helped and least <= 60 else 0)
        assert gc.isenabled()
    assert digests[0] == digests[1] == digests[2]


def test_a_failed_child_leaves_the_old_rows_and_checkpoint() -> None:
    """A child that cannot encode a post, or dies part way, fails the write: the rows and the
    checkpoint written before are all still there, and no child is left."""
    import os
    import signal

    from gongkai.projection import checkpoints
    from gongkai_accountability.adapters.forked import HelperError

    old, old_last = _county(10)
    rows, last = _county(30)
    projection = AccountabilityProjection()
    store = prepared(AccountabilityProjection, projection)
    projection.write_all(store.engine, old, old_last)
    before = store.digest(projection)
    parent = os.getpid()
    encoded = sql._encoded

    def dies(*args: Any) -> Any:
        for n, item in enumerate(encoded(*args)):
            if n == 2 and os.getpid() != parent:
                os.kill(os.getpid(), signal.SIGKILL)
            yield item

    class Recorded(sql.forked.Forked):
        made: list[sql.forked.Forked] = []

        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            self.made.append(self)

    broken = MemoryRows()
    for name, found in rows.tables.items():
        broken.tables[name].update(found)
    broken.tables["post"]["P5"] = object()  # no post row: its encoding fails in the child

    for written, patch in (
        (broken, mock.patch.object(sql, "HELPER_CHUNK", 7)),
        (rows, mock.patch.object(sql, "_encoded", dies)),
    ):
        with (
            mock.patch.object(sql, "HELPER_MIN_ROWS", 1),
            mock.patch.object(sql, "HELPER_CHUNK", 7),
            patch,
            mock.patch.object(sql.forked, "Forked", Recorded),
            pytest.raises(HelperError),
        ):
            projection.write_all(store.engine, written, last)
        (helper,) = Recorded.made
        Recorded.made.clear()
        assert store.digest(projection) == before
        with store.engine.connect() as conn:
            assert conn.execute(
                checkpoints.select().where(checkpoints.c.projection == projection.name)
            ).one().last_seq == old_last
        with pytest.raises(ChildProcessError):
            os.waitpid(helper.pid, os.WNOHANG)  # reaped
        assert gc.isenabled()
