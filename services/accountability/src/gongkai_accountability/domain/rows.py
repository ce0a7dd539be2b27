"""The read model as keyed rows, independent of where they are kept.

The fold (``evolve``) reads and writes rows by table and key only. The live service backs them
with SQL inside the projection's transaction; a rebuild or an as-of query backs them with a
dict and writes once at the end. The same code runs on both, so both give the same rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

Row = dict[str, Any]

#: Every table of the read model. Each row has a key, a unit (for filtering) and a JSON body.
TABLES = (
    "post", "publication", "unit", "column", "case", "finding", "violation", "todo", "alert"
)


class Rows(Protocol):
    def get(self, table: str, key: str) -> Row | None: ...

    def put(self, table: str, key: str, row: Row) -> None: ...

    def delete(self, table: str, key: str) -> None: ...

    def scan(self, table: str) -> Iterator[tuple[str, Row]]: ...


class MemoryRows:
    """Rows in dicts: for rebuilds, as-of queries and unit tests."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, Row]] = {t: {} for t in TABLES}

    def get(self, table: str, key: str) -> Row | None:
        return self.tables[table].get(key)

    def put(self, table: str, key: str, row: Row) -> None:
        self.tables[table][key] = row

    def delete(self, table: str, key: str) -> None:
        self.tables[table].pop(key, None)

    def scan(self, table: str) -> Iterator[tuple[str, Row]]:
        yield from sorted(self.tables[table].items())
