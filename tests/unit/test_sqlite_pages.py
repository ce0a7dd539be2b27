"""SQLite's page size for a read model of large rows (issue 18: the accountability rebuild)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import text

from gongkai.projection import make_engine
from gongkai.runtime.service import ServiceContext, discover
from gongkai.runtime.settings import Settings
from gongkai_accountability.adapters.sql import PAGE_SIZE


def _pages(path: Path) -> tuple[int, str]:
    con = sqlite3.connect(path)
    try:
        return con.execute("PRAGMA page_size").fetchone()[0], con.execute(
            "PRAGMA journal_mode"
        ).fetchone()[0]
    finally:
        con.close()


def test_a_new_database_gets_the_page_size_and_an_existing_one_keeps_its_own(
    tmp_path: Path,
) -> None:
    new = tmp_path / "new.db"
    engine = make_engine(f"sqlite:///{new}", page_size=8192)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)"))
        conn.execute(text("INSERT INTO t VALUES ('a', 'b')"))
    engine.dispose()
    assert _pages(new) == (8192, "wal")

    old = tmp_path / "old.db"
    engine = make_engine(f"sqlite:///{old}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)"))
    engine.dispose()
    engine = make_engine(f"sqlite:///{old}", page_size=8192)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES ('a', 'b')"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT v FROM t")).scalar_one() == "b"
    engine.dispose()
    assert _pages(old) == (4096, "wal")


def test_accountability_creates_its_database_with_larger_pages(tmp_path: Path) -> None:
    """A post's row is about 2 KB: at 4,096 bytes each sat on a page of its own."""
    ctx = ServiceContext(settings=Settings(data_dir=tmp_path))
    built = discover()
    accountability, intake = built["accountability"](ctx), built["intake"](ctx)
    for service in (accountability, intake):
        with service.engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (k TEXT)"))
    found = {}
    for service in (accountability, intake):
        with service.engine.connect() as conn:
            found[service.name] = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
        service.engine.dispose()
    assert found == {"accountability": PAGE_SIZE, "intake": 4096}
    assert PAGE_SIZE > 4096
