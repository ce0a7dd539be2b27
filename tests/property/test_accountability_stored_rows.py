"""What SQL keeps of accountability's rows changed shape (schema_version 5: a step of a trail, a
person, a post's form kept as arrays, a step's ``recorded_at`` as null where it is its ``at``);
what a reader sees did not.

Each county's rows are written as the rebuild writes them and read back as the routes, the CLI
and the live projection read them; every row, rendered as they render it (the row's JSON as HTTP
answers it, ``gongkai audit trail --json``'s indented text), is held byte for byte to the same
row through the form SQL kept before: the reader's object, keys sorted, read back.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings

from gongkai.access import masked_event
from gongkai_accountability.adapters.sql import (
    AccountabilityProjection,
    ReadModel,
    SqlRows,
    StoredRows,
)
from gongkai_accountability.domain.fold import evolve
from gongkai_accountability.domain.rows import MemoryRows, Table
from gongkai_accountability.domain.tables import ALL, POST, PUBLICATION, as_json
from tests.property.test_accountability_fold import LIVES, lived
from tests.property.test_projection_batches import (
    _engines_end_with_the_file,  # noqa: F401 - its engines are let go of after this file too
    prepared,
)

SORTED = orjson.OPT_SORT_KEYS


def before(table: Table[Any], row: Any) -> Any:
    """The row as a reader got it from SQL before: its reader's object stored, keys sorted."""
    return table.decode_row(orjson.loads(orjson.dumps(table.encode_row(row), option=SORTED)))


def rendered(table: Table[Any], row: Any) -> tuple[bytes, str]:
    """What a reader is shown: the HTTP body's JSON, and the CLI's indented text."""
    obj = table.encode_row(row)
    return orjson.dumps(obj), json.dumps(obj, ensure_ascii=False, indent=2)


def held_to_before(rows: MemoryRows, last_seq: int) -> int:
    """Write ``rows`` as a rebuild does, read every row back every way a reader does, and hold
    each rendering to the one before; the number of rows compared."""
    projection = AccountabilityProjection()
    store = prepared(AccountabilityProjection, projection)
    projection.write_all(store.engine, rows, last_seq)
    model = ReadModel(store.engine, projection)
    snapshot: StoredRows = model.snapshot()
    compared = 0
    with store.engine.connect() as conn:
        live = SqlRows(conn, projection.tables_by_name)  # the live projection's reads
        for table in ALL:
            found = rows.tables[table]
            listed = model.list(table)
            assert [rendered(table, r) for r in listed] == [
                rendered(table, before(table, r)) for _, r in sorted(found.items())
            ], table
            for key, row in found.items():
                old = rendered(table, before(table, row))
                assert rendered(table, model.get(table, key)) == old, (table, key)
                assert rendered(table, live.get(table, key)) == old, (table, key)
                # Stored and loaded, the row is the very row the fold wrote.
                assert table.load_row(
                    orjson.loads(orjson.dumps(table.store_row(row), option=SORTED))
                ) == row
                compared += 1
            if table in snapshot.stored or table in ("unit", "violation"):
                assert [(k, rendered(table, r)) for k, r in snapshot.scan(table)] == [
                    (k, rendered(table, before(table, r)))
                    for k, r in sorted(found.items())
                    if table != "case" or r.status != "closed"
                ], table
    return compared


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(facts=LIVES)
def test_a_lived_countys_rows_read_back_from_sql_render_as_before(
    facts: list[tuple[int, str, tuple[Any, ...]]],
) -> None:
    log = lived(facts)
    assert held_to_before(log.rows, len(log.events)) == sum(
        len(t) for t in log.rows.tables.values()
    )


def test_the_bench_countys_posts_are_smaller_and_render_as_before() -> None:
    """bench_accountability's county (posts signed, approved, published; one unreviewed)."""
    from bench.bench_accountability import directory, post_events

    envs = [*directory(), *(e for i in range(60) for e in post_events(i))]
    rows = MemoryRows()
    for seq, env in enumerate(envs, 1):
        evolve(rows, masked_event(env), seq)
    assert held_to_before(rows, len(envs)) >= 120
    for table in (POST, PUBLICATION):
        for row in rows.tables[table].values():
            old = orjson.dumps(table.encode_row(row), option=SORTED)
            new = orjson.dumps(table.store_row(row), option=SORTED)
            # The keys of each step and person are gone, and each step's second timestamp.
            assert len(new) < len(old) - 60 * len(row.trail), (len(new), len(old))
    # What a fold is compared by (``as_json``) is the readers' object, not SQL's.
    assert as_json(rows)["post"]["P7"]["trail"][0]["recorded_at"] == envs[
        len(directory()) + 28
    ].recorded_at.isoformat()
