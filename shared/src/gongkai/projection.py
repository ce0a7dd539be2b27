"""SQL read models fed from the log with exactly-once effects.

A projection keeps the stream sequence of the last event it applied in the same SQL transaction
as its rows. Redelivery of an already applied event is skipped, so effects happen once. Every
projection can be dropped and rebuilt from sequence 1; ``digest`` hashes its rows so a live
projection and a rebuild can be compared.
"""

from __future__ import annotations

import functools
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    exc,
    make_url,
    select,
)
from sqlalchemy.pool import StaticPool

from gongkai import subjects
from gongkai.eventlog import RecordedEvent
from gongkai.events.envelope import REGISTRY, canonical_json

_meta = MetaData()
checkpoints = Table(
    "gk_checkpoint",
    _meta,
    Column("projection", String(64), primary_key=True),
    Column("last_seq", Integer, nullable=False),
    Column("schema_version", Integer, nullable=False),
)


#: How long a SQLite statement waits for another connection's lock before it fails, unless the
#: URL says otherwise (``sqlite:///x.db?timeout=5``).
SQLITE_BUSY_TIMEOUT_S = 30.0


def database_unavailable(error: BaseException) -> bool:
    """True when ``error`` says the database could not be reached or used just now.

    A lock held too long, a lost or refused connection, a server shutting down, an exhausted
    pool: the event being applied is not at fault, so a consumer must wait and try again, never
    dead-letter it (that would drop it from the read model for good). Errors about the data
    itself (integrity, a bad value, a programming error) are not in this class.
    """
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(
        error, exc.OperationalError | exc.InterfaceError | exc.DisconnectionError | exc.TimeoutError
    )


def make_engine(url: str, *, page_size: int | None = None) -> Engine:
    """An engine for a read-model database; SQLite gets WAL and a busy timeout.

    ``page_size``: SQLite's page size for a database this engine creates (a file that exists
    keeps its own: in WAL mode it is fixed once the file is). A read model of rows of some
    kilobytes wants pages larger than the default 4,096 bytes: a 2 KB row on a page of its own
    leaves half of every page empty, and every byte of it goes through the WAL, then the file.
    """
    if url.startswith("sqlite"):
        # connect_args win over the URL's query, so the URL's own timeout is honoured here.
        timeout = float(make_url(url).query.get("timeout", SQLITE_BUSY_TIMEOUT_S))  # type: ignore[arg-type]
        kwargs: dict[str, Any] = {
            "connect_args": {"check_same_thread": False, "timeout": timeout}
        }
        if url in ("sqlite://", "sqlite:///:memory:"):
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the sqlite3 driver, decide when transactions begin, so the
            # "begin" hook below is the only BEGIN.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            if page_size is not None:
                # Before WAL mode, which writes the new file's first page at the default size.
                cur.execute(f"PRAGMA page_size={int(page_size)}")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # Every transaction takes the write lock at BEGIN. A deferred transaction that reads
            # and then writes fails at once with "database is locked" when another writer got
            # in between (the busy timeout does not apply to it); taking the lock first makes
            # writers queue instead. It also makes an applier's checkpoint read and the rows it
            # writes one serialised unit, so two overlapping appliers (a stopped
            # subscription's last batch still finishing in its thread, and its replacement)
            # cannot both apply. Transactions here are short, so readers queueing is cheap.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)


@dataclass(frozen=True)
class RowStatements:
    """Fixed driver SQL for a projection's per-event work on one table, keyed by its primary key.

    ``get`` selects one column by key, ``put`` upserts every column (parameters in the table's
    column order; ``INSERT ... ON CONFLICT ... DO UPDATE`` reads the same in SQLite and
    PostgreSQL), ``delete`` removes by key. A projection that reads and writes a row per event
    runs these on ``driver_cursor``: building the same statement through SQLAlchemy for every
    event cost 15-30 times the database call itself.
    """

    get: str
    put: str
    delete: str


def marker(paramstyle: str) -> str:
    """The driver's parameter placeholder (SQLite's ``?``, psycopg's ``%s``)."""
    return "?" if paramstyle == "qmark" else "%s"


#: Statements kept for the tables most recently asked about: a service's projections have a
#: dozen tables between them. A cache without a bound, keyed by the table object, kept every
#: table ever declared for the rest of the process: each projection instance declares its own,
#: and a test process makes thousands (0.1 million objects from one property test file,
#: walked by every full collection of the cyclic collector after it).
ROW_STATEMENTS_KEPT = 64


@functools.lru_cache(maxsize=ROW_STATEMENTS_KEPT)
def row_statements(table: Table, column: str, paramstyle: str) -> RowStatements:
    m = marker(paramstyle)
    keys = [c.name for c in table.primary_key.columns]
    cols = [c.name for c in table.columns]
    where = " AND ".join(f"{k} = {m}" for k in keys)
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in keys)
    # Table and column names are the projection's own, never input.
    return RowStatements(
        get=f"SELECT {column} FROM {table.name} WHERE {where}",  # noqa: S608
        put=(
            f"INSERT INTO {table.name} ({', '.join(cols)}) "  # noqa: S608
            f"VALUES ({', '.join([m] * len(cols))}) "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
        ),
        delete=f"DELETE FROM {table.name} WHERE {where}",  # noqa: S608
    )


@functools.cache
def _checkpoint_statements(dialect: str, paramstyle: str) -> tuple[str, str]:
    """Read a projection's checkpoint (locking its row where the database can) and move it."""
    m = marker(paramstyle)
    # SQLite has no row locks: its transactions take the write lock at BEGIN (make_engine).
    lock = " FOR UPDATE" if dialect == "postgresql" else ""
    return (
        # Only the driver's placeholder and a fixed clause are formatted in, never input.
        f"SELECT last_seq FROM {checkpoints.name} WHERE projection = {m}{lock}",  # noqa: S608
        f"UPDATE {checkpoints.name} SET last_seq = {m} WHERE projection = {m}",  # noqa: S608
    )


def driver_cursor(conn: Connection) -> Any:
    """A DBAPI cursor on ``conn``'s own database connection, made once per connection.

    Statements run on it belong to whatever transaction ``conn`` has open, so rows and the
    checkpoint still commit together.
    """
    info = conn.connection.info
    cur = info.get("gk_cursor")
    if cur is None:
        cur = info["gk_cursor"] = conn.connection.cursor()
    return cur


def fetch_value(cur: Any, sql: str, key: tuple[Any, ...]) -> Any:
    """The one value ``sql`` selects for ``key``, or None.

    Reads to the end, so no half-read statement holds SQLite's snapshot open past the commit.
    """
    cur.execute(sql, key)
    found = cur.fetchall()
    return found[0][0] if found else None


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        # SQLite hands back a timezone-aware column naive, PostgreSQL aware in the session's
        # zone: the same instant must digest the same on both (rows are written in UTC).
        aware = v if v.tzinfo is not None else v.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, bytes):
        return v.hex()
    return v


class Projection(ABC):
    """A read model: its tables, its filter on the log, and how one event changes its rows."""

    #: Unique name; also the checkpoint key.
    name: str
    #: Bump to make the store drop and rebuild the tables from the log.
    schema_version: int = 1
    #: Subjects this projection reads; the default is every event.
    filter_subject: str = "gk.ev.>"
    #: Narrower subjects its consumer asks the server for, when set (``type_subjects``): the
    #: server skips the rest, so a projection of a few types among a million events receives,
    #: decodes and verifies only those. Every event it does receive is still verified and a
    #: bad one dead-lettered; a projection that must see every event (accountability's, whose
    #: integrity alerts are the checkpoints' list of refused sequences) leaves this unset.
    filter_subjects: Sequence[str] | None = None
    #: Who applies ``filter_subjects``: nats-server (True), or the reader, which then asks the
    #: server for ``filter_subject`` and passes over, by subject and before decoding, what
    #: the narrower filters leave out (False). The server's filter is the cheaper for a
    #: projection of a small part of the log, the dearer for one of most of it: nats-server
    #: (2.15) spends 130-235 µs of CPU on each message a consumer with several filter
    #: subjects is sent, against 6-14 µs with one (bench/profiles/README.md, "several filter
    #: subjects"), while the reader's look at a subject costs it about a microsecond.
    server_filters: bool = True
    #: The event types ``apply`` acts on, when fewer than the filter lets through: what the
    #: service's AsyncAPI document lists as consumed (None: every type the filter matches).
    consumes: frozenset[str] | None = None
    #: Moves on after every committed batch that held an event of a type in ``consumes`` (and
    #: after a reset): a ``Memo`` of this projection's rows is good while it stands still.
    generation: int = 0

    def __init__(self) -> None:
        self.metadata = MetaData()
        self.define(self.metadata)

    @abstractmethod
    def define(self, metadata: MetaData) -> None:
        """Declare the projection's tables on ``metadata``."""

    @abstractmethod
    def apply(self, conn: Connection, event: RecordedEvent) -> None:
        """Change the rows for one event, inside the caller's transaction."""

    def begin(self, conn: Connection) -> None:
        """A batch's transaction begins: forget whatever an earlier batch kept in memory.

        A projection may keep rows it read or changed in memory for the rest of the batch
        (one row touched by several events of the batch is read once and written once); the
        store calls this before the batch's first ``apply``, and ``flush`` after its last.
        """
        return None

    def flush(self, conn: Connection) -> None:
        """Write what ``apply`` kept back, in the batch's transaction, before its checkpoint."""
        return None

    def tables(self) -> Sequence[Table]:
        return list(self.metadata.sorted_tables)

    def subjects(self) -> list[str]:
        """What this projection's consumer asks the server for: ``filter_subjects`` when the
        server filters by them, else ``filter_subject``."""
        if self.filter_subjects and self.server_filters:
            return list(self.filter_subjects)
        return [self.filter_subject]

    def wanted(self) -> Callable[[str], bool] | None:
        """The reader's test of each subject the server sends, or None: every one is wanted."""
        if not self.filter_subjects or self.server_filters:
            return None
        return subjects.matcher(self.filter_subjects)


def type_subjects(types: Iterable[str]) -> tuple[str, ...]:
    """One filter subject per event type (``gk.ev.<its aggregate type>.*.<type>``), sorted."""
    return tuple(
        sorted(subjects.type_filter(t, REGISTRY.payload_class(t).aggregate_type) for t in types)
    )


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(Generic[K, V]):
    """Answers of one lookup on a projection's rows, kept in memory until the projection changes.

    A request path that asks the same few rows again and again (a caller's token and roles, a
    unit's kind) answers from here instead of a SQL round trip each time. An entry is good
    while ``projection.generation`` is what it was *before* the entry was read: the store moves
    it on only after a commit, so an entry read before a change is never taken for one read
    after it, and a read that raced the commit is thrown away with the older ones. Answers are
    no staler than the rows: a caller that needs the rows as of a stream position waits for
    the projection's position first, and the position moves after the generation.

    Only for projections written through ``ProjectionStore`` in this process. ``size`` bounds
    the memory an unbounded key space (tokens from the internet) can take: the memo starts
    afresh when full.
    """

    def __init__(self, projection: Projection, load: Callable[[K], V], size: int = 4096) -> None:
        self.projection = projection
        self.load = load
        self.size = size
        self._entries: dict[K, tuple[int, V]] = {}

    def __call__(self, key: K) -> V:
        generation = self.projection.generation
        hit = self._entries.get(key)
        if hit is not None and hit[0] == generation:
            return hit[1]
        value = self.load(key)
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[key] = (generation, value)
        return value


class ProjectionStore:
    """Applies events to projections transactionally and keeps their checkpoints.

    ``manage_schema``: create the tables from the models (tests, ad-hoc tools, a scratch
    database). A service's store does not: its database is migrated (``gongkai.migrations``),
    and the store only ever changes rows.
    """

    def __init__(self, engine: Engine, *, manage_schema: bool = True) -> None:
        self.engine = engine
        self.manage_schema = manage_schema
        if manage_schema:
            _meta.create_all(engine)

    def prepare(self, projection: Projection) -> int:
        """Create the tables; rebuild-from-scratch when the schema version changed.

        Returns the checkpoint to resume from.
        """
        with self.engine.begin() as conn:
            row = conn.execute(
                select(checkpoints).where(checkpoints.c.projection == projection.name)
            ).first()
        if row is not None and row.schema_version != projection.schema_version:
            self.reset(projection)
            return 0
        if self.manage_schema:
            projection.metadata.create_all(self.engine)
        if row is None:
            with self.engine.begin() as conn:
                conn.execute(
                    checkpoints.insert().values(
                        projection=projection.name,
                        last_seq=0,
                        schema_version=projection.schema_version,
                    )
                )
            return 0
        return int(row.last_seq)

    def reset(self, projection: Projection) -> None:
        """Empty the projection and set its checkpoint to 0 at the code's schema version."""
        if self.manage_schema:
            projection.metadata.drop_all(self.engine)
            projection.metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            if not self.manage_schema:
                # The migrations gave the tables their shape; a rebuild only empties them, in
                # the same transaction as the checkpoint, so a crash leaves no half-reset.
                for table in reversed(projection.tables()):
                    conn.execute(table.delete())
            conn.execute(checkpoints.delete().where(checkpoints.c.projection == projection.name))
            conn.execute(
                checkpoints.insert().values(
                    projection=projection.name, last_seq=0, schema_version=projection.schema_version
                )
            )
        projection.generation += 1

    def checkpoint(self, projection: Projection) -> int:
        with self.engine.connect() as conn:
            v = conn.execute(
                select(checkpoints.c.last_seq).where(checkpoints.c.projection == projection.name)
            ).scalar()
        return int(v or 0)

    def apply(
        self, projection: Projection, events: Sequence[RecordedEvent], *, advance_to: int = 0
    ) -> int:
        """Apply a batch in one transaction; events at or below the checkpoint are skipped.

        ``advance_to`` moves the checkpoint past sequences the projection does not read (a
        dead-lettered event, say). Returns the number of events applied.
        """
        applied = 0
        with self.engine.begin() as conn:
            # Fixed driver SQL, as the rows are written: built through SQLAlchemy Core, these
            # two statements were most of a caught-up projection's transaction of an event or
            # two (a batch that did nothing cost 280-430 us of CPU, 60-100 us this way).
            cur = driver_cursor(conn)
            sql = _checkpoint_statements(conn.dialect.name, conn.dialect.paramstyle)
            cur.execute(sql[0], (projection.name,))
            found = cur.fetchall()
            if not found:
                raise exc.NoResultFound(f"no checkpoint for projection {projection.name}")
            last = found[0][0]
            new_last = last
            projection.begin(conn)
            for ev in events:
                if ev.seq <= new_last:
                    continue
                projection.apply(conn, ev)
                new_last = ev.seq
                applied += 1
            if applied:
                projection.flush(conn)
            new_last = max(new_last, advance_to)
            if new_last != last:
                cur.execute(sql[1], (new_last, projection.name))
        # After the commit, and for events skipped as already applied too: another process on
        # the same database may have written their rows, which this one's memos do not know.
        wanted = projection.consumes
        if any(wanted is None or ev.envelope.type in wanted for ev in events):
            projection.generation += 1
        return applied

    def digest(self, projection: Projection) -> str:
        """sha256 over every row of every table, in primary-key order, canonical JSON."""
        h = hashlib.sha256()
        with self.engine.connect() as conn:
            for table in projection.tables():
                h.update(table.name.encode())
                order = list(table.primary_key.columns) or list(table.columns)
                for row in conn.execute(select(table).order_by(*order)):
                    h.update(canonical_json([_jsonable(v) for v in row]))
        return h.hexdigest()

    def rows(self, table: Table) -> Iterable[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(table))]
