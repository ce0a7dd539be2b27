"""PostgreSQL for tests: one throw-away server per session (deploy/scripts/pg-test-server.sh).

``pg_server`` yields the admin URL; ``fresh_database(url)`` creates an empty database and
returns its URL. Tests that use PostgreSQL import these fixtures explicitly.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "deploy" / "scripts" / "pg-test-server.sh"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    base = tempfile.mkdtemp(prefix="gongkai-pg-")
    os.chmod(base, 0o755)  # the postgres system user must reach its data directory
    d = str(Path(base) / "pg")
    out = subprocess.run(
        ["sh", str(SCRIPT), "start", d], capture_output=True, text=True, timeout=600
    )
    if out.returncode != 0:
        pytest.fail(f"PostgreSQL did not start: {out.stderr.strip()[-1000:]}")
    url = out.stdout.strip().splitlines()[-1]
    try:
        yield url
    finally:
        subprocess.run(["sh", str(SCRIPT), "stop", d], capture_output=True, timeout=120)
        subprocess.run(["rm", "-rf", base], check=False)


def fresh_database(admin_url: str, prefix: str = "t") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name
