"""`gongkai up` as a user runs it: a real process, the embedded nats-server, HTTP, signals."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from gongkai.eventlog import EventLog
from gongkai.events import Actor, new_event
from gongkai.natsserver import free_port
from tests.builders import post_submitted
from tests.waiting import wait_until_sync

GONGKAI = str(Path(sys.executable).parent / "gongkai")


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GONGKAI, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def up_command(data_dir: Path, http: int, nport: int, *more: str) -> list[str]:
    """``gongkai up`` on the given ports, logging JSON (what the tests read), with ``more``."""
    return [
        GONGKAI, "up", "--data-dir", str(data_dir), "--port", str(http),
        "--nats-port", str(nport), "--log-format", "json", *more,
    ]


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    http, nport = free_port(), free_port()
    proc = subprocess.Popen(
        up_command(tmp_path / "var", http, nport, "--nats-monitor-port", str(free_port())),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "GONGKAI_LOG_LEVEL": "info"},
    )
    try:
        yield proc, http, nport
    finally:
        stop_up(proc)


def stop_up(proc: subprocess.Popen[Any]) -> None:
    """Stop ``gongkai up`` as an operator would (SIGTERM), killing it only if it hangs.

    A SIGKILL first would leave its nats-server running after a failed test.
    """
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_ready(port: int, within: float = 90) -> float:
    # A bound, not a speed claim (bench_cli times what up imports): under the whole suite's load on
    # two cores, `up --demo` with debug logging once needed more than 30 s to load the county.
    def answers() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    return wait_until_sync(answers, within, "gongkai up becomes ready", every=0.1)


async def append_some(url: str, n: int, seed: Path) -> None:
    """Append as intake: the embedded server knows no anonymous client."""
    evlog = await EventLog.connect(url, nkeys_seed=str(seed))
    for i in range(n):
        env = new_event(
            post_submitted(column="work_news", title=f"t{i}"),
            aggregate_id=f"T{i}",
            actor=Actor(person="p", role="maker", unit="finance"),
            command_id=f"tail-{i}",
            recorded_at=datetime(2026, 3, 2, tzinfo=UTC),
        )
        await evlog.append([env], expected=0)
    await evlog.close()


def test_up_ready_tail_and_graceful_stop(running: tuple[subprocess.Popen[str], int, int]) -> None:
    proc, http, nport = running
    data = Path(proc.args[proc.args.index("--data-dir") + 1])  # type: ignore[union-attr, index]
    wait_ready(http)
    assert httpx.get(f"http://127.0.0.1:{http}/healthz").json() == {"status": "ok"}
    # A second platform on the same directory would start a second nats-server on the same
    # JetStream store: refused in one line naming the holder.
    second = run_cli(
        "up", "--data-dir", str(data), "--port", str(free_port()),
        "--nats-port", str(free_port()),
    )
    assert second.returncode != 0
    assert second.stderr.strip().count("\n") == 0, second.stderr
    assert f"in use by another gongkai (pid {proc.pid})" in second.stderr
    metrics = httpx.get(f"http://127.0.0.1:{http}/metrics").text
    assert "gongkai_consumer_lag" in metrics
    # The embedded server's monitoring port, on loopback, for the NATS Prometheus exporter.
    mport = int(proc.args[proc.args.index("--nats-monitor-port") + 1])  # type: ignore[union-attr, index]
    jsz = httpx.get(f"http://127.0.0.1:{mport}/jsz?streams=true").json()
    assert jsz["streams"] >= 2, jsz
    url = f"nats://127.0.0.1:{nport}"
    with pytest.raises(Exception, match=r"(?i)authorization"):
        asyncio.run(nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0))
    asyncio.run(append_some(url, 3, data / "credentials" / "intake.nk"))
    # the tool finds the inspector's credentials in the data directory by itself
    out = run_cli("events", "tail", "--nats-url", url, "--no-follow", "--data-dir", str(data))
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("PostSubmitted") >= 3
    only = run_cli(
        "events",
        "tail",
        "--nats-url",
        url,
        "--creds",
        str(data / "credentials" / "inspector.nk"),
        "--no-follow",
        "--type",
        "PostSubmitted",
        "--from-seq",
        "2",
        "--json",
    )
    assert only.returncode == 0, only.stderr
    assert '"type": "PostSubmitted"' in only.stdout
    # A backup as an operator takes it: the inspector's credentials, a file, progress on stderr.
    dump = data.parent / "backup.jsonl"
    exported = run_cli(
        "events", "export", "--nats-url", url, "--data-dir", str(data), "--out", str(dump)
    )
    assert exported.returncode == 0, exported.stderr
    assert "events written to" in exported.stderr
    assert len(dump.read_text().splitlines()) == 1 + out.stdout.count("\n")
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr[-2000:]
    assert "gongkai is running" in stdout
    assert "anonymous connections are refused" in stdout
    assert f"monitoring   http://127.0.0.1:{mport}" in stdout
    assert str((data / "credentials" / "subscriber.nk").resolve()) in stdout
    assert '"event": "stopped"' in stderr


def nats_servers_of(data_dir: Path) -> list[int]:
    """The nats-server processes running on ``data_dir``'s store (read from /proc)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        if argv[0].endswith(b"nats-server") and any(str(data_dir).encode() in a for a in argv):
            found.append(int(proc.name))
    return found


def test_a_stop_while_starting_stops_the_embedded_nats_server(tmp_path: Path) -> None:
    """SIGTERM while the services start (behind a long log, minutes of catching up): up
    stops what it started, nats-server included, and exits 0; it used to die by the signal
    and leave its server running on the data directory."""
    data = tmp_path / "var"
    with (tmp_path / "up.err").open("wb") as err:
        proc = subprocess.Popen(
            up_command(data, free_port(), free_port(), "--demo"),
            stdout=subprocess.DEVNULL, stderr=err,
        )
        try:
            # up starts nats-server after its signal handlers are in place; the demo county
            # is loaded after that, so the stop comes during the start
            wait_until_sync(lambda: nats_servers_of(data), 60, "up starts its nats-server")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0, (tmp_path / "up.err").read_text()[-2000:]
        finally:
            stop_up(proc)
    assert nats_servers_of(data) == []


def test_wrong_nats_url_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # nothing listens here once closed
    out = run_cli(
        "up",
        "--nats-url",
        f"nats://127.0.0.1:{dead}",
        "--data-dir",
        str(tmp_path),
        "--port",
        str(free_port()),
    )
    assert out.returncode != 0
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert lines == [lines[0]] and "cannot connect to NATS" in lines[0], out.stderr


def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        out = run_cli("up", "--data-dir", str(tmp_path), "--port", str(busy))
    assert out.returncode != 0
    assert "already in use" in out.stderr and "Traceback" not in out.stderr


def test_unwritable_data_dir_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    out = run_cli("up", "--data-dir", str(blocker / "var"), "--port", str(free_port()))
    assert out.returncode != 0
    assert "data directory" in out.stderr and "Traceback" not in out.stderr


def test_tail_rejects_bad_arguments() -> None:
    out = run_cli("events", "tail", "--type", "NoSuchEvent")
    assert out.returncode == 2 and "unknown event type" in out.stderr
    out = run_cli("events", "tail", "--from-seq", "0")
    assert out.returncode == 2
    out = run_cli("events", "tail", "--nats-url", "nats://127.0.0.1:1", "--no-follow")
    assert out.returncode == 1 and "cannot connect to NATS" in out.stderr
    assert "Traceback" not in out.stderr


def test_events_schema_writes_one_schema_per_event(tmp_path: Path) -> None:
    out = run_cli("events", "schema", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    # One file per event type and version (PostSubmitted.v1.json, PostSubmitted.v2.json, ...).
    names = {p.stem.rpartition(".v")[0] for p in tmp_path.glob("*.v*.json")}
    assert {"PostSubmitted", "ReviewSigned", "ColumnStale", "ViolationRecorded"} <= names
    assert {"PostSubmitted.v1.json", "PostSubmitted.v2.json"} <= {
        p.name for p in tmp_path.glob("*.json")
    }
