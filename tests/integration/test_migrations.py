"""The read models' versioned migrations (gongkai.migrations), on SQLite and PostgreSQL.

Upgrading an empty database creates exactly the tables its service's code defines (Alembic's
autogenerate comparison finds no difference); a second upgrade does nothing; a database created
before migrations existed is adopted, and so is one made by the single chain that covered every
service's tables before each service owned its migrations; a schema_version bump empties a
migrated projection without touching its shape; and a service started in deploy mode on an
un-migrated database refuses to start with one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select

from gongkai import cli, migrations
from gongkai.directory import DirectoryProjection
from gongkai.natsserver import NatsServer
from gongkai.projection import ProjectionStore, checkpoints, make_engine
from gongkai.runtime.service import Service, ServiceContext, discover
from gongkai.runtime.settings import Settings
from tests.integration import legacy_migrations
from tests.pg import fresh_database, pg_server

__all__ = ["pg_server"]  # the fixture, imported for pytest

SERVICES = list(discover())
GONGKAI = str(Path(sys.executable).parent / "gongkai")


def _service(name: str) -> Service:
    return discover()[name](ServiceContext(settings=Settings()))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'read.db'}"
    return fresh_database(request.getfixturevalue("pg_server"), "mig")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    e = make_engine(db_url)
    yield e
    e.dispose()


def _layout(engine: Engine) -> dict[str, object]:
    """Tables, columns, keys and indexes, as the database reports them."""
    insp = inspect(engine)
    return {
        t: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(t)],
            insp.get_pk_constraint(t)["constrained_columns"],
            sorted((i["name"], tuple(i["column_names"])) for i in insp.get_indexes(t)),
        )
        for t in sorted(insp.get_table_names())
    }


@pytest.mark.parametrize("service", SERVICES)
def test_upgrade_from_empty_creates_what_the_code_defines(engine: Engine, service: str) -> None:
    before, after = migrations.upgrade(engine, service)
    assert (before, after) == (None, migrations.head(service))

    expected = _service(service).schema()
    tables = set(inspect(engine).get_table_names())
    assert tables == {*expected.tables, migrations.VERSION_TABLE}
    with engine.connect() as conn:
        mc = MigrationContext.configure(conn, opts={"version_table": migrations.VERSION_TABLE})
        diff = compare_metadata(mc, expected)
    assert diff == [], f"{service}: the migrated schema differs from the models: {diff}"


def test_upgrade_twice_is_a_no_op(engine: Engine) -> None:
    migrations.upgrade(engine, "accountability")
    layout = _layout(engine)
    assert migrations.upgrade(engine, "accountability") == (migrations.head("accountability"),) * 2
    assert _layout(engine) == layout
    migrations.check(engine, "accountability")  # at head: no complaint


def test_a_database_from_before_migrations_is_adopted(engine: Engine) -> None:
    # What services did before migrations existed: create the tables from the models.
    svc = _service("review")
    old = ProjectionStore(engine)
    proj = DirectoryProjection()
    old.prepare(proj)
    svc.schema().create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            proj.people.insert().values(person_id="finance-leader", name="局长（演示）")
        )
    assert migrations.upgrade(engine, "review") == (None, migrations.head("review"))
    with engine.connect() as conn:
        mc = MigrationContext.configure(conn, opts={"version_table": migrations.VERSION_TABLE})
        assert compare_metadata(mc, svc.schema()) == []
        assert conn.execute(select(proj.people.c.name)).scalar() == "局长（演示）"
        assert conn.execute(select(checkpoints.c.last_seq)).scalar() == 0


def _old_chain(engine: Engine, service: str) -> None:
    """Migrate as the single chain did: every revision in one place, filtered by service."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", str(legacy_migrations.LOCATION))
    cfg.set_main_option("version_table", migrations.VERSION_TABLE)
    with engine.begin() as conn:
        cfg.attributes.update(connection=conn, service=service)
        command.upgrade(cfg, "head")


@pytest.mark.parametrize("service", SERVICES)
def test_a_database_made_by_the_single_chain_upgrades(engine: Engine, service: str) -> None:
    _old_chain(engine, service)
    proj = DirectoryProjection()
    with engine.begin() as conn:
        conn.execute(proj.people.insert().values(person_id="p1", name="局长（演示）"))
    layout = _layout(engine)
    assert migrations.upgrade(engine, service) == ("0004", migrations.head(service))
    migrations.check(engine, service)
    # Nothing made again: the services' first revisions find their tables and record themselves.
    assert _layout(engine) == layout
    with engine.connect() as conn:
        mc = MigrationContext.configure(conn, opts={"version_table": migrations.VERSION_TABLE})
        assert compare_metadata(mc, _service(service).schema()) == []
        assert conn.execute(select(proj.people.c.name)).scalar() == "局长（演示）"


def test_a_schema_version_bump_empties_the_tables_and_keeps_their_shape(engine: Engine) -> None:
    migrations.upgrade(engine, "freshness")
    store = ProjectionStore(engine, manage_schema=False)
    proj = DirectoryProjection()
    assert store.prepare(proj) == 0
    with engine.begin() as conn:
        conn.execute(proj.people.insert().values(person_id="p1", name="n"))
        conn.execute(checkpoints.update().values(last_seq=42))
    assert store.prepare(proj) == 42
    layout = _layout(engine)

    bumped = DirectoryProjection.schema_version + 1

    class DirectoryNext(DirectoryProjection):
        schema_version = bumped

    assert store.prepare(DirectoryNext()) == 0
    with engine.connect() as conn:
        assert conn.execute(select(proj.people)).all() == []
        row = conn.execute(select(checkpoints)).one()
    assert (row.last_seq, row.schema_version) == (0, bumped)
    assert _layout(engine) == layout


def test_every_projection_schema_is_recorded_with_the_migrations() -> None:
    # A column change without a migration, or without a schema_version bump, fails here.
    found = {}
    for name in SERVICES:
        for p in _service(name).projections:
            found[p.name] = (p.schema_version, migrations.shape(p.metadata))
    recorded = dict(migrations.PROJECTION_SCHEMAS)
    for declared in migrations.installed().values():
        recorded.update(declared.projection_schemas)
    assert found == recorded, (
        "a projection's columns or schema_version changed: write a migration, bump the "
        "projection's schema_version, and record both with the migrations that own it "
        "(ServiceMigrations.projection_schemas, or gongkai.migrations.PROJECTION_SCHEMAS)"
    )


def test_db_command_upgrades_then_checks(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    one = ["--service", "intake", "--url", db_url]
    assert cli.main(["db", "check", *one]) == 1
    assert "no migrations applied" in capsys.readouterr().err
    assert cli.main(["db", "upgrade", *one]) == 0
    assert f"empty -> {migrations.head('intake')}" in capsys.readouterr().out
    assert cli.main(["db", "upgrade", *one]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert cli.main(["db", "check", *one]) == 0
    assert cli.main(["db", "upgrade", "--url", db_url]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--service" in err


def test_a_service_refuses_an_un_migrated_database_in_deploy_mode(
    db_url: str, nats_server: NatsServer, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "GONGKAI_NATS_URL": nats_server.url,
        "GONGKAI_DATA_DIR": str(tmp_path / "var"),
        "GONGKAI_DB_URL_REVIEW": db_url,
        # PostgreSQL verifies by default; SQLite only when told (deploy mode)
        "GONGKAI_DB_MIGRATE": "verify",
        "GONGKAI_HTTP_PORT": "0",
    }
    out = subprocess.run(
        [GONGKAI, "service", "review"], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 1
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("gongkai: review: database ")
    assert "no migrations applied" in lines[0] and "gongkai db upgrade" in lines[0]


def test_a_service_not_installed_here_is_not_migrated(tmp_path: Path) -> None:
    # An image carries one service's migrations: another's database is refused, not given
    # the shared tables alone and recorded as if it were at head.
    engine = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    with pytest.raises(migrations.DatabaseNotReady, match="are installed here"):
        migrations.upgrade(engine, "no-such-service")
    assert inspect(engine).get_table_names() == []


def test_messages_never_show_a_database_password() -> None:
    shown = migrations.display_url("postgresql+psycopg://intake:s3cret@postgres:5432/gongkai_intake")
    assert "s3cret" not in shown and "intake:***@postgres" in shown


async def test_the_service_starts_once_migrated_and_sqlite_upgrades_itself(
    pg_server: str, nats_server: NatsServer, evlog: object, tmp_path: Path
) -> None:
    pg = fresh_database(pg_server, "svc")
    ctx = ServiceContext(
        settings=Settings(data_dir=tmp_path, db_urls={"intake": pg}), nats_url=nats_server.url
    )
    build = discover()
    intake, freshness = build["intake"](ctx), build["freshness"](ctx)
    # PostgreSQL: verify by default, refused before the init step ran
    with pytest.raises(migrations.DatabaseNotReady, match="no migrations applied"):
        await intake.start()
    migrations.upgrade(intake.engine, "intake")
    await intake.start()
    # SQLite (freshness's default file under data_dir): upgraded at start
    await freshness.start()
    try:
        for svc in (intake, freshness):
            with svc.engine.connect() as conn:
                assert migrations.current(conn) == migrations.head(svc.name)
    finally:
        await freshness.stop()
        await intake.stop()
