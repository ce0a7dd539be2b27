"""kill -9 accountability in the middle of a 10,000-event load; after a restart its read model
has the same digest as a rebuild from the log (issue 6)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx

from gongkai import subjects
from gongkai.eventlog import EventLog
from gongkai.events import Actor, new_event
from gongkai.events.contracts.intake import PostPublished
from gongkai.natsserver import NatsServer, free_port
from gongkai.projection import ProjectionStore, make_engine
from gongkai.runtime.service import ServiceContext
from gongkai.runtime.settings import Settings
from gongkai_accountability.bootstrap import build
from gongkai_accountability.service import AccountabilityService
from gongkai_demo.county import seed_demo
from tests.builders import post_submitted
from tests.chain import caught_up
from tests.waiting import wait_until

GONGKAI = str(Path(sys.executable).parent / "gongkai")
MAKER = Actor(person="finance-maker", role="maker", unit="finance")
CMS = Actor(person="cms", role="office", unit="county-office")
TOTAL = 10_000
UNREVIEWED = 100


def start(url: str, db: Path, data: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "GONGKAI_NATS_URL": url,
        "GONGKAI_DB_URL_ACCOUNTABILITY": f"sqlite:///{db}",
        "GONGKAI_DATA_DIR": str(data),
        "GONGKAI_HTTP_PORT": str(port),
        "GONGKAI_LOG_LEVEL": "warning",
    }
    proc = subprocess.Popen(
        [GONGKAI, "service", "accountability"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, port


async def ready(port: int, within: float = 60) -> None:
    async with httpx.AsyncClient() as client:

        async def answers() -> bool:
            try:
                return (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_until(answers, within, "accountability becomes ready", every=0.1)


def checkpoint(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            row = conn.execute("select max(last_seq) from gk_checkpoint").fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0] or 0)


def load(at: datetime) -> list[tuple[object, None]]:
    events: list[tuple[object, None]] = []
    for i in range(TOTAL - UNREVIEWED):
        events.append(
            (
                new_event(
                    post_submitted(column="work_arrangements", title=f"t{i}"),
                    aggregate_id=f"P{i}",
                    actor=MAKER,
                    command_id=f"load-{i}",
                    recorded_at=at,
                ),
                None,
            )
        )
    for i in range(UNREVIEWED):
        events.append(
            (
                new_event(
                    PostPublished(
                        publication_id=f"U{i}",
                        unit="finance",
                        column="work_arrangements",
                        url=f"https://example.invalid/u{i}",
                        online_at=at,
                        content_digest="b" * 64,
                    ),
                    aggregate_id=f"U{i}",
                    actor=CMS,
                    command_id=f"pub-{i}",
                    recorded_at=at,
                ),
                None,
            )
        )
    return events


async def violations(evlog: EventLog) -> int:
    return len(
        [e async for e in evlog.replay(filter_subject=subjects.type_filter("ViolationRecorded"))]
    )


async def test_kill_mid_load_then_restart_equals_rebuild(
    nats_server: NatsServer, evlog: EventLog, tmp_path: Path
) -> None:
    at = datetime.now(UTC)
    await seed_demo(evlog, at, units=["finance"])
    db = tmp_path / "accountability.db"
    proc, port = start(nats_server.url, db, tmp_path)
    try:
        await ready(port)
        # The load's first half, then the kill once 1,000 events are applied, then the second
        # half while it is dead: the kill lands mid-load by construction. (Killing during one
        # append and asserting it had not finished failed on a quiet machine once catch-up
        # applied 2,000 events a transaction: it was done before the kill.)
        events = load(at)
        half = len(events) // 2
        results = await evlog.append_pipelined(events[:half])  # type: ignore[arg-type]
        assert not [r for r in results if isinstance(r, Exception)]
        await wait_until(lambda: checkpoint(db) >= 1000, 60, "1000 events applied", every=0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at = checkpoint(db)
        results = await evlog.append_pipelined(events[half:])  # type: ignore[arg-type]
        assert not [r for r in results if isinstance(r, Exception)]
        total = await evlog.last_sequence()
        assert 1000 <= killed_at < total, "the kill lands mid-load"

        proc, port = start(nats_server.url, db, tmp_path)
        await ready(port)
        async def all_recorded() -> bool:
            return await violations(evlog) >= UNREVIEWED

        await wait_until(all_recorded, 60, "every violation recorded", every=0.2)
        assert await violations(evlog) == UNREVIEWED  # each recorded once, none lost
        async with httpx.AsyncClient() as client:  # caught up with its own violations too
            await wait_until(lambda: caught_up(client, port), 60, "caught up", every=0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    ctx = ServiceContext(settings=Settings(data_dir=tmp_path), nats_url=nats_server.url)
    svc = build(ctx)
    assert isinstance(svc, AccountabilityService)
    live = ProjectionStore(make_engine(f"sqlite:///{db}")).digest(svc.projection)
    out = subprocess.run(
        [
            GONGKAI,
            "audit",
            "rebuild",
            "--nats-url",
            nats_server.url,
            "--json",
            "--quiet",
            "--db-url",
            f"sqlite:///{tmp_path / 'rebuilt.db'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["digest"] == live
    print(f"killed at checkpoint {killed_at} of {total}; digest {live[:12]} equals the rebuild")
