"""A projection's rows do not depend on where its batches end.

A catching-up projection applies hundreds of events per transaction and keeps the rows a batch
touches in memory until the batch's end (``Projection.begin``/``flush``); a caught-up one
applies an event or two at a time; a rebuild folds everything at once. The three must give the
same rows. Histories here are valid envelopes of every type, from the small pools of
``test_folds_take_any_event`` so that they meet on the same posts, units and people; each is
applied one event per transaction and in random batches, and the digests compared (for
accountability, also against the rebuild's fold in memory written in one go).

An event a projection cannot apply is isolated as the live consumer isolates it (the batch
rolled back, then each event alone, the failing one skipped).
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from gongkai import subjects
from gongkai.access import masked_event
from gongkai.directory import DirectoryProjection
from gongkai.eventlog import RecordedEvent
from gongkai.projection import Projection, ProjectionStore, make_engine
from gongkai_accountability.adapters.sql import AccountabilityProjection
from gongkai_accountability.domain.fold import evolve
from gongkai_accountability.domain.rows import MemoryRows
from gongkai_review.adapters.queue import ReviewQueueProjection
from tests.property.strategies import envelopes
from tests.property.test_folds_take_any_event import POOLS

HISTORIES = st.lists(envelopes(pools=POOLS), min_size=1, max_size=24)


def recorded(history: Sequence[Any]) -> list[RecordedEvent]:
    return [
        RecordedEvent(
            seq,
            subjects.event_subject(env.aggregate_type, env.aggregate_id, env.type),
            0,
            env,
            env.to_json(),
        )
        for seq, env in enumerate(history, 1)
    ]


#: Per projection class: one in-memory engine, and the empty database its store prepared.
_EMPTY: dict[type[Projection], tuple[Engine, sqlite3.Connection]] = {}


@pytest.fixture(scope="module", autouse=True)
def _engines_end_with_the_file() -> Iterator[None]:
    """The engines are let go of after the file's last test: each one's cache of compiled
    statements held the tables of hundreds of examples' projections (0.35 million objects),
    which the test process's later full collections would walk until it ended."""
    yield
    for engine, empty in _EMPTY.values():
        engine.dispose()
        empty.close()
    _EMPTY.clear()


def fresh_store(make: type[Projection]) -> ProjectionStore:
    """A store on an empty database with ``make``'s tables, as ``ProjectionStore.prepare``
    leaves it (checkpoint 0).

    A new engine for every application spent a quarter of this file's time creating the
    tables again. So each class keeps one engine, as a service does for its life, and each
    store starts from a copy of the empty database (sqlite3's backup replaces the engine's
    in-memory database whole): no row, checkpoint or table a previous example wrote is left.
    """
    if make not in _EMPTY:
        engine = make_engine("sqlite://")  # StaticPool: one connection, the database itself
        ProjectionStore(engine).prepare(make())
        empty = sqlite3.connect(":memory:")
        with engine.connect() as conn:
            conn.connection.driver_connection.backup(empty)  # type: ignore[union-attr]
        _EMPTY[make] = (engine, empty)
    engine, empty = _EMPTY[make]
    with engine.connect() as conn:
        empty.backup(conn.connection.driver_connection)  # type: ignore[arg-type]
    # The tables are the copy's; the store checks the checkpoint row, as on a migrated database.
    return ProjectionStore(engine, manage_schema=False)


def prepared(make: type[Projection], projection: Projection) -> ProjectionStore:
    """``fresh_store``, prepared for ``projection``: checkpoint 0 and no row."""
    store = fresh_store(make)
    assert store.prepare(projection) == 0
    # Driver SQL: each projection instance has tables of its own, which SQLAlchemy compiles anew.
    with store.engine.connect() as conn:
        left = [t.name for t in projection.tables()
                if conn.exec_driver_sql(f'SELECT count(*) FROM "{t.name}"').scalar()]
    assert not left, f"a previous example's rows were left in {left}"
    return store


def applied(
    make: type[Projection], events: list[RecordedEvent], cuts: Sequence[int]
) -> tuple[str, Projection, ProjectionStore]:
    """The projection's digest after ``events`` in batches ending before each of ``cuts``."""
    projection = make()
    store = prepared(make, projection)
    bounds = [0, *sorted(set(cuts)), len(events)]
    for lo, hi in itertools.pairwise(bounds):
        batch = events[lo:hi]
        if not batch:
            continue
        try:
            store.apply(projection, batch)
        except Exception:  # isolated one by one, as CatchUpSubscription does
            for ev in batch:
                try:
                    store.apply(projection, [ev])
                except Exception:  # the consumer dead-letters it and goes on
                    store.apply(projection, [], advance_to=ev.seq)
    assert store.checkpoint(projection) == len(events)
    return store.digest(projection), projection, store


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(history=HISTORIES, cuts=st.lists(st.integers(min_value=1, max_value=23), max_size=6))
def test_batches_give_the_rows_of_one_event_at_a_time(
    history: list[Any], cuts: list[int]
) -> None:
    events = recorded(history)
    one_by_one = list(range(1, len(events)))
    for make in (AccountabilityProjection, ReviewQueueProjection, DirectoryProjection):
        single, _, _ = applied(make, events, one_by_one)
        batched, _, _ = applied(make, events, [c for c in cuts if c < len(events)])
        whole, _, _ = applied(make, events, [])
        assert batched == single == whole, make.__name__


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(history=HISTORIES, cuts=st.lists(st.integers(min_value=1, max_value=23), max_size=6))
def test_accountability_batches_equal_the_rebuilds_fold(
    history: list[Any], cuts: list[int]
) -> None:
    events = recorded(history)
    live, projection, _ = applied(
        AccountabilityProjection, events, [c for c in cuts if c < len(events)]
    )
    assert isinstance(projection, AccountabilityProjection)
    rows = MemoryRows()
    for ev in events:
        evolve(rows, masked_event(ev.envelope), ev.seq)  # as fold_log folds
    rebuilt = AccountabilityProjection()
    store = prepared(AccountabilityProjection, rebuilt)
    rebuilt.write_all(store.engine, rows, len(events))
    assert store.digest(rebuilt) == live
