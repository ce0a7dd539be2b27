"""The read model in SQL: one table per kind of row, a JSON body per row.

The live projection writes through (each ``put`` is an upsert in the batch's transaction) and
caches what it read for the rest of that transaction. A rebuild folds into memory and writes
every row in one transaction with the checkpoint.
"""

from __future__ import annotations

import bisect
import gc
import itertools
from collections.abc import Iterator
from typing import Any

import orjson
from sqlalchemy import Column, Connection, Engine, MetaData, String, Table, Text, delete, select

from gongkai.eventlog import RecordedEvent
from gongkai.masking import masked_event
from gongkai.projection import (
    Projection,
    RowStatements,
    checkpoints,
    driver_cursor,
    fetch_value,
    marker,
    row_statements,
)
from gongkai_accountability.domain.fold import RELEVANT, evolve
from gongkai_accountability.domain.rows import Change, MemoryRows, R, Row
from gongkai_accountability.domain.rows import Table as RowTable
from gongkai_accountability.domain.tables import ALL, BY_NAME


def _tag(table: str, row: Row) -> str:
    # A plain column beside the JSON body, so list queries filter in SQL.
    return str(row.get("status") or row.get("kind") or row.get("event") or "")


def _encode(row: Row) -> str:
    # Rows are JSON (str keys, str/int/bool/None/list/dict values), and any fixed encoding
    # gives stable digests as long as the live projection and the rebuild share it; orjson
    # is several times faster than json.dumps(sort_keys=True), which a rebuild of a million
    # events felt. Event bytes still go through canonical_json.
    return orjson.dumps(row, option=orjson.OPT_SORT_KEYS).decode()


_decode = orjson.loads

#: SQLite's page size for accountability's database: a post's row is about 2 KB (its trail),
#: so at the default 4,096 bytes each sat on a page of its own, half of it empty, and a
#: rebuild wrote every empty half twice (WAL, then the file). At 8,192 three share a page:
#: bench_accountability 100,000, the rows' write alone, best of 4: 125 -> 89 MB of database,
#: 2.65 -> 2.23 s (16,384: 79 MB, 2.38 s).
PAGE_SIZE = 8192
#: Rows encoded and inserted at a time by ``write_all``.
WRITE_CHUNK = 20000
#: The tables ``decide`` reads (``ReadModel.snapshot`` copies them): a batch that changes
#: none of them leaves its decisions as they were.
DECIDES_ON = frozenset({"todo", "case", "violation", "unit"})


class AccountabilityProjection(Projection):
    name = "accountability"
    consumes = RELEVANT
    #: 2: posts' screened personal data masked (rebuilds rows that kept raw titles).
    #: 3: integrity alerts (acc_alert) and signatures checked against the directory.
    #: 4: what the printed forms show (Attachment 1's boxes, Attachment 2's ticks, contacts).
    #: 5: steps, people and forms kept as arrays (``codec``'s ``ARRAY``): smaller rows, read
    #: back into the same objects (rows stored at 4 are rebuilt, not read).
    schema_version = 5

    def __init__(self) -> None:
        self.tables_by_name: dict[str, Table] = {}
        # One SqlRows (its read cache) per transaction: ``apply`` is called once per
        # event of a batch, all in the batch's transaction.
        self._conn: Connection | None = None
        self._rows: SqlRows | None = None
        #: Tables the live projection wrote since the service last looked (``touched``): a
        #: rolled-back batch may leave names here, which only costs a decision made again.
        self.touched: set[str] = set()
        #: The tables whose writes are noted per event (``note``); none by default.
        self._noted: frozenset[str] = frozenset()
        #: Stream sequence -> what its fold wrote in the noted tables, for every event applied
        #: since the last ``take_notes`` while noting.
        self._notes: dict[int, list[Change]] = {}
        super().__init__()

    def note(self, tables: frozenset[str]) -> None:
        """From the next batch on, keep what each applied event's fold writes in ``tables``
        (every put and delete, in order) until ``take_notes``: the service's kept days take
        them instead of folding every event a second time (bench/profiles/README.md, "one fold
        for the rows and the kept days"). An empty set stops it."""
        self._noted = tables
        self._notes = {}

    def take_notes(self) -> dict[int, list[Change]]:
        """The notes kept since the last call, by stream sequence (an event applied twice, as
        a batch rolled back and applied again one by one, has its last application's)."""
        notes, self._notes = self._notes, {}
        return notes

    def define(self, metadata: MetaData) -> None:
        for t in ALL:
            self.tables_by_name[t] = Table(
                f"acc_{t}",
                metadata,
                Column("key", String(200), primary_key=True),
                Column("unit", String(128), nullable=False, index=True),
                Column("tag", String(64), nullable=False, index=True),
                Column("data", Text, nullable=False),
            )

    def begin(self, conn: Connection) -> None:
        self._conn, self._rows = conn, SqlRows(
            conn, self.tables_by_name, touched=self.touched, noted=self._noted
        )

    def apply(self, conn: Connection, event: RecordedEvent) -> None:
        if conn is not self._conn or self._rows is None:
            self.begin(conn)
        rows = self._rows
        assert rows is not None
        # The fold sees a post's content with its screened personal data already masked.
        evolve(rows, masked_event(event.envelope), event.seq)
        if rows.noted:
            # Kept only once the fold went through: an event whose fold failed has no note.
            self._notes[event.seq], rows.changes = rows.changes, []

    def flush(self, conn: Connection) -> None:
        if self._rows is not None and conn is self._conn:
            self._rows.flush()

    def write_all(self, engine: Engine, rows: MemoryRows, last_seq: int) -> None:
        """Replace every row and the checkpoint in one transaction (the rebuild's last step)."""
        # What is encoded here is plain dicts and strings, none in a cycle, made and dropped
        # a chunk at a time: the cyclic collector, triggered by every few hundred of them,
        # would find nothing (about a tenth of the encoding's CPU).
        collecting = gc.isenabled()
        gc.disable()
        try:
            with engine.begin() as conn:
                # The driver's executemany with plain tuples: SQLAlchemy's per-row parameter
                # processing cost as much as the encoding for a quarter of a million rows.
                mark = marker(conn.dialect.paramstyle)
                for name, table in self.tables_by_name.items():
                    conn.execute(delete(table))
                    # The table name is one of ours, not input.
                    cols = f"{table.name} (key, unit, tag, data)"
                    sql = f"INSERT INTO {cols} VALUES ({mark}, {mark}, {mark}, {mark})"  # noqa: S608
                    encode = BY_NAME[name].store_row
                    items = iter(rows.tables[name].items())
                    # A chunk at a time: a million-event log's posts encoded at once held
                    # half a gigabyte of JSON before the first was written.
                    while chunk := list(itertools.islice(items, WRITE_CHUNK)):
                        bodies = [(k, encode(r)) for k, r in chunk]
                        conn.exec_driver_sql(
                            sql,
                            [(k, b.get("unit") or "", _tag(name, b), _encode(b))
                             for k, b in bodies],
                        )
                conn.execute(
                    checkpoints.update()
                    .where(checkpoints.c.projection == self.name)
                    .values(last_seq=last_seq, schema_version=self.schema_version)
                )
        finally:
            if collecting:
                gc.enable()


class SqlRows:
    """``Rows`` over SQL, inside one transaction, as ``MemoryRows`` hands them out.

    A row read is kept for the rest of the transaction and handed out as it is: the fold
    changes what it gets in place and puts it back, exactly as on a rebuild's ``MemoryRows``,
    so the live projection and a rebuild run the same code on the same objects. Writes are
    kept back until ``flush`` (the projection flushes at the end of its batch, before the
    checkpoint, in the same transaction): a post's row, changed by its submission, signatures,
    approval and publication in one batch, is read and decoded once, written and encoded once.
    """

    def __init__(
        self,
        conn: Connection,
        tables: dict[str, Table],
        cache: dict[tuple[str, str], Any] | None = None,
        touched: set[str] | None = None,
        noted: frozenset[str] = frozenset(),
    ) -> None:
        self.conn = conn
        self.tables = tables
        #: Where the names of the tables written are noted (the projection's ``touched``).
        self.touched = touched if touched is not None else set()
        #: Tables whose puts and deletes are also listed, in order, in ``changes``.
        self.noted = noted
        self.changes: list[Change] = []
        #: (table, key) -> the row (of the table's type) as the transaction has it (None: no
        #: row).
        self.cache = cache if cache is not None else {}
        #: The rows put or deleted since the last ``flush``.
        self._pending: dict[tuple[str, str], None] = {}

    def get(self, table: RowTable[R], key: str) -> R | None:
        ck: tuple[str, str] = (table, key)
        try:
            found: R | None = self.cache[ck]
            return found
        except KeyError:
            data = fetch_value(driver_cursor(self.conn), self._sql(table).get, (key,))
            row = self.cache[ck] = (
                BY_NAME[table].load_row(_decode(data)) if data is not None else None
            )
            return row

    def put(self, table: RowTable[R], key: str, row: R) -> None:
        ck: tuple[str, str] = (table, key)
        self.cache[ck] = row
        self._pending[ck] = None
        self.touched.add(table)
        if table in self.noted:
            self.changes.append((table, key, row))

    def delete(self, table: RowTable[Any], key: str) -> None:
        ck: tuple[str, str] = (table, key)
        self.cache[ck] = None
        self._pending[ck] = None
        self.touched.add(table)
        if table in self.noted:
            self.changes.append((table, key, None))

    def flush(self) -> None:
        """Write the rows kept back: one statement per table and kind, many rows each."""
        if not self._pending:
            return
        puts: dict[str, list[tuple[str, str, str, str]]] = {}
        deletes: dict[str, list[tuple[str]]] = {}
        for table, key in self._pending:
            row = self.cache[(table, key)]
            if row is None:
                deletes.setdefault(table, []).append((key,))
            else:
                body = BY_NAME[table].store_row(row)
                puts.setdefault(table, []).append(
                    (key, body.get("unit") or "", _tag(table, body), _encode(body))
                )
        self._pending = {}
        cur = driver_cursor(self.conn)
        for table, keys in deletes.items():
            cur.executemany(self._sql(table).delete, keys)
        for table, rows in puts.items():
            cur.executemany(self._sql(table).put, rows)

    def _sql(self, table: str) -> RowStatements:
        return row_statements(self.tables[table], "data", self.conn.dialect.paramstyle)

    def scan(self, table: RowTable[R]) -> Iterator[tuple[str, R]]:
        self.flush()  # what was kept back is part of what a scan reads
        t = self.tables[table]
        decode = BY_NAME[table].load_row
        for key, data in self.conn.execute(select(t.c.key, t.c.data).order_by(t.c.key)):
            yield key, decode(_decode(data))


class ReadModel:
    """Queries for routes and the CLI, on the service's engine."""

    def __init__(self, engine: Engine, projection: AccountabilityProjection) -> None:
        self.engine = engine
        self.p = projection

    def get(self, table: RowTable[R], key: str) -> R | None:
        with self.engine.connect() as conn:
            return SqlRows(conn, self.p.tables_by_name).get(table, key)

    def list(self, table: RowTable[R], unit: str | None = None, tag: str | None = None) -> list[R]:
        t = self.p.tables_by_name[table]
        q = select(t.c.data).order_by(t.c.key)
        if unit:
            q = q.where(t.c.unit == unit)
        if tag:
            q = q.where(t.c.tag == tag)
        decode = BY_NAME[table].load_row
        with self.engine.connect() as conn:
            return [decode(_decode(d)) for d in conn.execute(q).scalars()]

    def snapshot(self) -> StoredRows:
        """The tables ``decide`` reads, copied out of SQL in one transaction; the obligations
        and cases (tens of thousands after a catch-up from nothing) as their stored JSON, each
        decoded when ``decide`` reaches it; closed cases left out (``decide`` passes them)."""
        mem = StoredRows()
        with self.engine.connect() as conn:
            for name in sorted(DECIDES_ON):
                t = self.p.tables_by_name[name]
                q = select(t.c.key, t.c.data)
                if name == "case":
                    # decide passes closed cases by, and they are most of them (19,000 of a
                    # million-event log's), read after every batch the live projection applies.
                    q = q.where(t.c.tag != "closed")
                # In Python's order, as ``MemoryRows.scan`` gives it (a database's collation
                # need not be).
                found = sorted((k, d) for k, d in conn.execute(q))
                if name in StoredRows.KEPT_STORED:
                    mem.stored[name] = [(k, d.encode()) for k, d in found]
                    continue
                decode = BY_NAME[name].load_row
                for key, data in found:
                    mem.tables[name][key] = decode(_decode(data))
        return mem


class StoredRows(MemoryRows):
    """``MemoryRows`` whose obligations and cases stay as the read model stored them until
    scanned (read only there): decoded, a million-event log's owed events and supervision
    cases held at once were most of accountability's peak while it settled."""

    KEPT_STORED = ("todo", "case")

    def __init__(self) -> None:
        super().__init__()
        #: Table -> (key, stored JSON) in key order.
        self.stored: dict[str, list[tuple[str, bytes]]] = {}

    def get(self, table: RowTable[R], key: str) -> R | None:
        if table in self.stored:
            rows = self.stored[table]
            i = bisect.bisect_left(rows, (key,))
            if i < len(rows) and rows[i][0] == key:
                found: R = BY_NAME[table].load_row(_decode(rows[i][1]))
                return found
            return None
        return super().get(table, key)

    def put(self, table: RowTable[R], key: str, row: R) -> None:
        raise TypeError("a snapshot is read only")

    def delete(self, table: RowTable[Any], key: str) -> None:
        raise TypeError("a snapshot is read only")

    def scan(self, table: RowTable[R]) -> Iterator[tuple[str, R]]:
        if table not in self.stored:
            yield from super().scan(table)
            return
        decode = BY_NAME[table].load_row
        for key, data in self.stored[table]:
            yield key, decode(_decode(data))
