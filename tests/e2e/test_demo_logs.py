"""No secret and no screened personal data in the logs, nor a token in any store.

``gongkai up --demo`` runs as a user runs it (its own process, the embedded nats-server, JSON
logs at debug level, the most it ever says), ``gongkai demo`` plays the scripted day into it,
and the test adds the requests that carry personal data: a post with a resident ID number and a
mobile number (accepted, flagged for secrecy review), the same data in a withdrawal reason and
a leadership-change summary (refused: free text is never reviewed), in a classified post
(refused), in URLs, and requests with wrong tokens. Then every line the platform wrote, stdout
and stderr, is searched:

* the demo tokens appear only in the banner ``--demo`` prints on stdout for the person at the
  terminal (they are public: derived from the person ids), never in a log line;
* the resident ID and the mobile number appear nowhere, in any spelling the screener knows;
* no file under the data directory (every service's SQLite database, the JetStream store)
  holds a token.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gongkai.natsserver import free_port
from gongkai_demo.county import DEMO
from tests.e2e.test_up import run_cli, stop_up, up_command, wait_ready

pytestmark = pytest.mark.timeout(180)

BANNER = "demo directory loaded; bearer tokens (demo only, public):"


def resident_id(first17: str) -> str:
    """A valid 18-character resident ID (ISO 7064 MOD 11-2 check character)."""
    partial = sum(int(c) * 2 ** (17 - j) for j, c in enumerate(first17))
    value = next(v for v in range(11) if (partial + v) % 11 == 1)
    return first17 + ("X" if value == 10 else str(value))


RESIDENT_ID = resident_id("11010519880229123")
MOBILE = "19912345678"
#: Every spelling the screener accepts, so that a log cannot carry one in another form.
SPELLINGS = (
    RESIDENT_ID,
    f"{RESIDENT_ID[:6]} {RESIDENT_ID[6:14]} {RESIDENT_ID[14:]}",
    MOBILE,
    f"{MOBILE[:3]}-{MOBILE[3:7]}-{MOBILE[7:]}",
    f"{MOBILE[:3]} {MOBILE[3:7]} {MOBILE[7:]}",
)


@pytest.fixture
def demo_up(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    http, nport = free_port(), free_port()
    with (tmp_path / "up.out").open("wb") as out, (tmp_path / "up.err").open("wb") as err:
        proc = subprocess.Popen(
            up_command(tmp_path / "var", http, nport, "--demo", "--no-sync"),
            stdout=out,
            stderr=err,
            env={**os.environ, "GONGKAI_LOG_LEVEL": "debug"},
        )
        try:
            wait_ready(http)
            yield f"http://127.0.0.1:{http}", tmp_path, proc
        finally:
            stop_up(proc)


def post(client: httpx.Client, path: str, who: str, body: dict[str, object]) -> httpx.Response:
    return client.post(path, json=body, headers=DEMO.headers(who, str(uuid.uuid4())))


def personal_data_requests(client: httpx.Client) -> dict[str, int]:
    """Requests carrying the resident ID and the mobile number, and what each got."""
    text = f"申请人张某（演示），身份证号\n{RESIDENT_ID}\n，联系电话 {MOBILE}。"
    submitted = post(
        client,
        "/posts",
        "finance-maker",
        {
            "unit": "finance",
            "column": "service_guides",
            "title": "关于低保申请结果的公示",
            "body": text,
            "information_date": "2026-01-05",
        },
    )
    assert submitted.status_code == 201, submitted.text
    answer = submitted.json()
    assert answer["needs_secrecy_review"], answer
    assert {s["kind"] for s in answer["personal_data"]} == {"resident_id", "mobile"}, answer
    assert RESIDENT_ID not in submitted.text and MOBILE not in submitted.text, "answer masks"
    pid = answer["post_id"]
    statuses = {"post with personal data": submitted.status_code}
    requests = {
        "withdrawal reason": (
            f"/posts/{pid}/withdrawal",
            "finance-maker",
            {"reason": f"申请人要求撤回，电话 {MOBILE[:3]}-{MOBILE[3:7]}-{MOBILE[7:]}"},
        ),
        "leadership summary": (
            "/units/finance/leadership-changes",
            "finance-leader",
            {"changed_on": "2026-01-05", "summary": f"新任副局长，身份证 {RESIDENT_ID}"},
        ),
        "classified post": (
            "/posts",
            "finance-maker",
            {
                "unit": "finance",
                "column": "service_guides",
                "title": "内部通知",
                "body": f"机密★10年\n{RESIDENT_ID}\n{MOBILE}",
                "information_date": "2026-01-05",
            },
        ),
        "revision with personal data": (
            f"/posts/{pid}/revisions",
            "finance-maker",
            {"title": f"公示（{MOBILE}）", "body": text + "补充", "information_date": "2026-01-05"},
        ),
    }
    for what, (path, who, body) in requests.items():
        statuses[what] = post(client, path, who, body).status_code
    statuses["id in a URL"] = client.get(
        f"/posts/{RESIDENT_ID}", headers=DEMO.headers("finance-maker")
    ).status_code
    statuses["mobile in a URL"] = client.get(
        f"/publications/{MOBILE}", headers=DEMO.headers("office-reader")
    ).status_code
    statuses["wrong token"] = client.get(
        "/me", headers={"Authorization": f"Bearer gk_demo_{'0' * 32}"}
    ).status_code
    return statuses


def banner_lines(stdout: list[str]) -> set[int]:
    """Indexes of the lines of the token banner: the header and the indented lines after it."""
    start = stdout.index(BANNER)
    out = {start}
    for i in range(start + 1, len(stdout)):
        if not stdout[i].startswith("  "):
            break
        out.add(i)
    return out


def test_demo_logs_carry_no_token_and_no_personal_data(
    demo_up: tuple[str, Path, subprocess.Popen[bytes]],
) -> None:
    url, tmp, proc = demo_up
    story = run_cli("demo", "--url", url, timeout=90)
    assert story.returncode == 0, story.stderr[-2000:]
    with httpx.Client(base_url=url, timeout=15) as client:
        statuses = personal_data_requests(client)
    assert statuses["withdrawal reason"] == 422, statuses
    assert statuses["leadership summary"] == 422, statuses
    assert statuses["classified post"] == 422, statuses
    assert statuses["wrong token"] == 401, statuses
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0

    stdout = (tmp / "up.out").read_text(encoding="utf-8", errors="replace").splitlines()
    stderr = (tmp / "up.err").read_text(encoding="utf-8", errors="replace").splitlines()
    tokens = list(DEMO.tokens.values())
    banner = banner_lines(stdout)
    shown = "\n".join(stdout[i] for i in sorted(banner))
    assert all(shown.count(t) == 1 for t in tokens), "the banner shows each token once"

    elsewhere = [ln for i, ln in enumerate(stdout) if i not in banner] + stderr
    elsewhere += (story.stdout + story.stderr).splitlines()  # the demo client too
    leaks = [ln for ln in elsewhere if "gk_demo_" in ln or any(t in ln for t in tokens)]
    assert not leaks, f"{len(leaks)} lines carry a token, e.g. {leaks[0][:300]}"
    pii = [ln for ln in stdout + stderr if any(s in ln for s in SPELLINGS)]
    assert not pii, f"{len(pii)} lines carry personal data, e.g. {pii[0][:300]}"

    json_lines = 0
    for ln in stderr:
        if ln.startswith("{"):
            json.loads(ln)
            json_lines += 1
    # Files under the data directory: SQLite databases (and their journals), JetStream's store.
    files = [f for f in (tmp / "var").rglob("*") if f.is_file()]
    holding = [str(f) for f in files if b"gk_demo_" in f.read_bytes()]
    assert not holding, f"tokens stored in {holding}"
    print(
        f"\n{len(stdout) + len(stderr)} lines searched ({json_lines} JSON log lines at debug "
        f"level, {len(banner)} banner lines), {len(tokens)} tokens, "
        f"{len(SPELLINGS)} spellings of 2 personal data items; {len(files)} stored files "
        f"scanned; requests: {statuses}"
    )
