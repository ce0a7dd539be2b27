"""Every tool that reads or writes the log says a connection failure in one line: no traceback
(nats-py's own error callback logged one per attempt before the tools passed a quiet one)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gongkai.natsserver import NatsServer, free_port

GONGKAI = str(Path(sys.executable).with_name("gongkai"))
COMMANDS = [
    ["audit", "trail", "P1"],
    ["audit", "as-of", "2026-03-01"],
    ["audit", "report", "--from", "2026-03-01", "--to", "2026-03-31"],
    ["audit", "verify"],
    ["audit", "alerts"],
    ["freshness", "status"],
    ["events", "tail", "--no-follow"],
    ["events", "init-streams"],
    ["people", "tokens", "finance-maker"],
    ["directory", "demo"],
]


def failed_in_one_line(argv: list[str], url: str, home: Path) -> str:
    """Run a tool against ``url``; it must fail with one line on stderr, no traceback: that line."""
    proc = subprocess.run(
        [GONGKAI, *argv, "--nats-url", url],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "GONGKAI_DATA_DIR": str(home), "HOME": str(home)},
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(c[:2]) for c in COMMANDS])
def test_no_nats_is_one_line(argv: list[str], tmp_path: Path) -> None:
    url = f"nats://127.0.0.1:{free_port()}"  # nothing listens there
    assert url in failed_in_one_line(argv, url, tmp_path)


#: The tools that only read the log.
READERS = [c for c in COMMANDS if c[0] == "audit" or c[:2] in (["freshness", "status"],
                                                                ["events", "tail"])]


@pytest.mark.parametrize("argv", READERS, ids=[" ".join(c[:2]) for c in READERS])
def test_a_server_without_the_log_is_one_line(
    argv: list[str], nats_server: NatsServer, tmp_path: Path
) -> None:
    """A NATS server that holds no gongkai stream (another system's, or streams not made yet):
    the reading tools say so in one line, as for no server at all."""
    line = failed_in_one_line(argv, nats_server.url, tmp_path)
    # verify says first that it has no trust anchors to check against (none in tmp_path)
    assert ("trust anchors" if argv[1] == "verify" else "stream not found") in line
