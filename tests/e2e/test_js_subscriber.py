"""The JavaScript subscriber example (examples/js) against a running platform, as a downstream
team runs it: Node from the project's set-up (deploy/scripts/node.sh: Debian's nodejs and npm
when missing), its locked dependencies (``npm ci``), the official NATS client and Ajv.

A platform plays a demo day (the demo county, ``gongkai demo``); the example reads the whole log
through the subscriber's durable consumer with the subscriber's NKey and validates every event
against docs/schemas: every sequence from the first to the last the stream held when it started,
all valid. Then a malformed event (its ``event_id`` no UUID, its ``schema_version`` unknown)
makes it exit non-zero, naming the event.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.js.api import DeliverPolicy

from gongkai import subjects
from gongkai.events import REGISTRY, Envelope, EventDecodeError
from gongkai.natsserver import free_port
from gongkai.trust.credentials import seed_file
from gongkai_demo.county import DEMO
from tests.causality import check_log, is_reaction
from tests.e2e.test_up import run_cli, stop_up, up_command, wait_ready
from tests.waiting import wait_until_sync

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "js"
BOGUS = "gk.ev.post.BOGUS-1.PostSubmitted"
SUMMARY = re.compile(
    r"read (\d+) events, (\d+) valid, (\d+) invalid; last stream sequence (\d+)"
)


@pytest.fixture(scope="module")
def node() -> str:
    """Node with the example's locked dependencies installed (``npm ci``, once per lockfile)."""
    found = subprocess.run(
        ["sh", str(ROOT / "deploy/scripts/node.sh")], capture_output=True, text=True,
        check=False, timeout=600,
    )
    assert found.returncode == 0, found.stderr
    node = found.stdout.strip()
    lock = hashlib.sha256((EXAMPLE / "package-lock.json").read_bytes()).hexdigest()
    stamp = EXAMPLE / "node_modules" / ".gongkai-lock-sha256"
    # npm ci starts from an empty node_modules every time: only when the lockfile changed.
    if not stamp.exists() or stamp.read_text() != lock:
        npm = shutil.which("npm", path=str(Path(node).parent)) or shutil.which("npm")
        assert npm is not None, "deploy/scripts/node.sh installs npm with node"
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=EXAMPLE, capture_output=True,
            text=True, check=False, timeout=300,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        stamp.write_text(lock)
    return node


@pytest.fixture(scope="module")
def demo_day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """A platform with the demo county and a demo day played into it: (data dir, NATS port).

    ``gongkai up`` without ``--demo``, whose year of imported site history would make a
    bigger log than a day's (and a slower start); the county is recorded as
    ``gongkai demo --load-county`` does, then the day is played once the platform answers as
    the county's office.
    """
    tmp_path = tmp_path_factory.mktemp("js-demo-day")
    http, nport = free_port(), free_port()
    data = tmp_path / "var"
    with (tmp_path / "up.out").open("w") as out, (tmp_path / "up.err").open("w") as err:
        proc = subprocess.Popen(
            up_command(data, http, nport, "--no-sync"),
            stdout=out,
            stderr=err,
            env={**os.environ, "GONGKAI_LOG_LEVEL": "warning"},
        )
        try:
            wait_ready(http)
            url = f"http://127.0.0.1:{http}"
            loaded = run_cli(
                "directory", "demo", "--nats-url", f"nats://127.0.0.1:{nport}",
                "--data-dir", str(data),
            )
            assert loaded.returncode == 0, loaded.stdout[-2000:] + loaded.stderr[-2000:]

            def office_known() -> bool:
                # Every service applies the directory before it answers for its people.
                return all(
                    httpx.get(
                        f"{url}{path}", headers=DEMO.headers("office-reader"), timeout=5
                    ).status_code == 200
                    for path in ("/me", "/violations", "/supervisions")
                )

            wait_until_sync(office_known, 30, "the demo county's office is known")
            played = run_cli("demo", "--url", url, timeout=60)
            assert played.returncode == 0, played.stdout[-2000:] + played.stderr[-2000:]
            yield data, nport
        finally:
            stop_up(proc)


def subscribe(node: str, data: Path, nport: int, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [node, "subscribe.mjs"],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={
            **os.environ,
            "NATS_URL": f"nats://127.0.0.1:{nport}",
            "GONGKAI_NATS_NKEY": str(seed_file(data, "subscriber")),
            **env,
        },
    )


async def last_sequence(data: Path, nport: int) -> int:
    nc = await nats.connect(
        f"nats://127.0.0.1:{nport}", nkeys_seed=str(seed_file(data, "inspector"))
    )
    try:
        info = await nc.jetstream().stream_info(subjects.STREAM)
        return int(info.state.last_seq)
    finally:
        await nc.close()


async def read_log(data: Path, nport: int) -> list[Envelope[Any]]:
    """The whole log as the inspector reads it (decoded, not verified: the platform's trust
    anchors are its own, and signatures are not what is checked here)."""
    nc = await nats.connect(
        f"nats://127.0.0.1:{nport}", nkeys_seed=str(seed_file(data, "inspector"))
    )
    try:
        js = nc.jetstream()
        last = (await js.stream_info(subjects.STREAM)).state.last_seq
        sub = await js.subscribe(
            "gk.ev.>", ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
        )
        out: list[Envelope[Any]] = []
        for _ in range(last):
            msg = await sub.next_msg(timeout=10)
            try:
                out.append(REGISTRY.decode(msg.data, subject_type=msg.subject.rpartition(".")[2]))
            except EventDecodeError:
                # Only the other test's malformed message is not an event of gongkai's.
                assert msg.subject == BOGUS, msg.subject
        return out
    finally:
        await nc.close()


async def publish_as_intake(data: Path, nport: int, subject: str, body: bytes) -> None:
    nc = await nats.connect(
        f"nats://127.0.0.1:{nport}", nkeys_seed=str(seed_file(data, "intake"))
    )
    try:
        await nc.jetstream().publish(subject, body, stream=subjects.STREAM)
    finally:
        await nc.close()


def test_js_example_validates_every_event_of_a_demo_day(
    node: str, demo_day: tuple[Path, int]
) -> None:
    data, nport = demo_day
    before = asyncio.run(last_sequence(data, nport))
    assert before > 1000, "a demo day is a county's directory, posts, deadlines and verdicts"

    done = subscribe(node, data, nport, GONGKAI_DELETE="1")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    m = SUMMARY.search(done.stdout)
    assert m is not None, done.stdout
    read, valid, invalid, last = map(int, m.groups())
    # Every message of the log, from sequence 1 (nothing is ever deleted from it) to at least
    # the last one it held when the example started: 100 % read, 100 % valid.
    assert invalid == 0 and valid == read
    assert read == last >= before

    # A malformed event: the example says which and exits non-zero.
    body = (
        b'{"event_id":"x","type":"PostSubmitted","schema_version":99,"aggregate_type":"post",'
        b'"aggregate_id":"BOGUS-1","payload":{}}'
    )
    asyncio.run(publish_as_intake(data, nport, BOGUS, body))
    bad = subscribe(
        node, data, nport, GONGKAI_DURABLE="sub-subscriber-2",
        GONGKAI_FILTER="gk.ev.post.BOGUS-1.*", GONGKAI_DELETE="1",
    )
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "read 1 events, 0 valid, 1 invalid" in bad.stdout
    assert "INVALID" in bad.stderr and BOGUS in bad.stderr


def test_every_reaction_of_a_demo_day_names_its_cause(demo_day: tuple[Path, int]) -> None:
    """The property behind issue 19's "causality you can follow", over a whole demo day: every
    cause precedes its event in the same correlation, and no event lacks a cause but a
    command's (1,771 of 1,784 lacked one before)."""
    data, nport = demo_day
    log = asyncio.run(read_log(data, nport))
    check_log(log)
    reactions = [e for e in log if is_reaction(e)]
    assert len(reactions) > 100 and all(e.causation_id for e in reactions if
                                         e.type not in ("IntegrityAlert", "LogCheckpoint"))
    correlations = {e.correlation_id for e in log}
    assert all(len(c) == 36 and c.count("-") == 4 for c in correlations), "one shape: event ids"
