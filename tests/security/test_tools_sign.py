"""The operator's tools sign with the keys of the data directory they are pointed at.

`gongkai up --data-dir D` generates its keys under `D/keys`; `gongkai people token --data-dir
D` must record its events signed with intake's key from there, or every service refuses them
(found by hand: the tool read the keys of the default data directory and its token was
refused, an unsigned-event alert instead). Both run without GONGKAI_KEYS_DIR, as an operator
runs them. The person the token is for comes the same way: the demo directory recorded by
`gongkai directory demo --data-dir D` (not `up --demo`, whose year of imported site history
this test has no use for).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gongkai.natsserver import free_port
from tests.waiting import wait_until_sync

GONGKAI = str(Path(sys.executable).parent / "gongkai")
ENV = {k: v for k, v in os.environ.items() if k != "GONGKAI_KEYS_DIR"}
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[tuple[Path, int, int]]:
    data, http, nport = tmp_path / "var", free_port(), free_port()
    proc = subprocess.Popen(
        [GONGKAI, "up", "--no-sync", "--data-dir", str(data), "--port", str(http),
         "--nats-port", str(nport)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
    )

    def ready() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{http}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until_sync(ready, 90, "gongkai up ready")
        yield data, http, nport
    finally:
        proc.terminate()
        proc.wait(30)


def tool(*argv: str) -> str:
    out = subprocess.run([GONGKAI, *argv], capture_output=True, text=True, timeout=60,
                         check=False, env=ENV)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_a_token_from_the_people_tool_is_signed_and_accepted(up: tuple[Path, int, int]) -> None:
    data, http, nport = up
    assert (data / "keys" / "intake.key").exists()
    nats_url = f"nats://127.0.0.1:{nport}"
    tool("directory", "demo", "--data-dir", str(data), "--nats-url", nats_url)
    token = tool("people", "token", "office-supervisor", "--data-dir", str(data),
                 "--nats-url", nats_url).strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {token}"}

    def accepted() -> bool:
        r = httpx.get(f"http://127.0.0.1:{http}/integrity-alerts", headers=headers, timeout=5)
        return r.status_code == 200 and r.json() == []

    wait_until_sync(accepted, 20, "the new token accepted, no integrity alert")
    alerts = tool("audit", "alerts", "--json", "--data-dir", str(data), "--nats-url", nats_url)
    assert json.loads(alerts) == []
