"""The read model as keyed rows, independent of where they are kept.

The fold (``evolve``) reads and writes rows by table and key only. The live service backs them
with SQL inside the projection's transaction; a rebuild or an as-of query backs them with a
dict and writes once at the end. The same code runs on both, so both give the same rows.

A table (``Table``) says what its rows are: a typed row class (``domain.tables``) with the one
``encode``/``decode`` pair that turns it into the JSON body SQL keeps (``Row``) and back. Rows
are handed out as objects of that type on every path (memory, SQL, the kept days), and the
stored JSON is the same whichever path wrote it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, Protocol, TypeVar

#: A row as the JSON object SQL keeps (and HTTP answers hold).
Row = dict[str, Any]

R = TypeVar("R")


class Table(str, Generic[R]):
    """A table of the read model. It *is* its name (rows are kept and found by it, and a plain
    name still finds them), carrying how its rows are read and stored: ``encode_row`` to the
    JSON object readers see (HTTP answers, exports, digests of folds), ``decode_row`` back to
    the row type (not ``encode``: that is ``str``'s); ``store_row``/``load_row`` the same for
    the object SQL keeps (``codec``: nested objects a row repeats kept as arrays), by default
    the same pair."""

    encode_row: Callable[[R], Row]
    decode_row: Callable[[Row], R]
    store_row: Callable[[R], Row]
    load_row: Callable[[Row], R]

    def __new__(
        cls,
        name: str,
        encode: Callable[[R], Row],
        decode: Callable[[Row], R],
        store: Callable[[R], Row] | None = None,
        load: Callable[[Row], R] | None = None,
    ) -> Table[R]:
        table = super().__new__(cls, name)
        table.encode_row = encode
        table.decode_row = decode
        table.store_row = store or encode
        table.load_row = load or decode
        _MADE[name] = table
        return table


#: One write of a fold: (table, key, the row put; None: deleted).
Change = tuple[Table[Any], str, Any]

#: Every table made, by name. ``MemoryRows`` keys its dicts with these very objects: a lookup
#: with the same object is found by identity, where a str subclass against a plain str key is
#: compared by value on every get (four times the cost, seen in a profile of the fold).
_MADE: dict[str, Table[Any]] = {}


class Rows(Protocol):
    def get(self, table: Table[R], key: str) -> R | None: ...

    def put(self, table: Table[R], key: str, row: R) -> None: ...

    def delete(self, table: Table[Any], key: str) -> None: ...

    def scan(self, table: Table[R]) -> Iterator[tuple[str, R]]: ...


#: The name of every table of the read model (``tables.ALL`` are the tables themselves). Each
#: row has a key, a unit (for filtering) and a JSON body.
NAMES = (
    "post", "publication", "unit", "column", "case", "finding", "violation", "todo", "alert"
)


class MemoryRows:
    """Rows in dicts: for rebuilds, as-of queries and unit tests."""

    def __init__(self) -> None:
        #: Table name -> key -> row (of the table's type).
        self.tables: dict[str, dict[str, Any]] = {_MADE.get(t, t): {} for t in NAMES}

    def get(self, table: Table[R], key: str) -> R | None:
        found: R | None = self.tables[table].get(key)
        return found

    def put(self, table: Table[R], key: str, row: R) -> None:
        self.tables[table][key] = row

    def delete(self, table: Table[Any], key: str) -> None:
        self.tables[table].pop(key, None)

    def scan(self, table: Table[R]) -> Iterator[tuple[str, R]]:
        yield from sorted(self.tables[table].items())
