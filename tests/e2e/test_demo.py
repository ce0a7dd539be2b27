"""``gongkai demo`` against a running platform.

1. As a user runs it: ``gongkai up --demo`` in one process, ``gongkai demo`` in another, on the
   real clock. The violations it announces appear in accountability's API, nothing else is
   recorded against the story's units, and a second run on the same day records nothing new.
2. No secret and no screened personal data in that platform's logs, nor a token in any store
   (below, "the demo's logs").
3. Its promise about later days, in-process on a fixed clock: run on the day the county
   joined, then three weeks later — the penalty decision goes online late and the supervised
   column is breached.

1 and 2 share one ``gongkai up --demo`` (the file's ``demo_up``): starting it loads the
county and imports its year of site history, the most of either test's time, and the logs
test reads every line the platform wrote, the story's runs included.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import httpx
import pytest

from gongkai.calendar import SHANGHAI
from gongkai.natsserver import free_port
from gongkai_accountability.service import AccountabilityService
from gongkai_demo.county import DEMO, seed_demo
from gongkai_demo.story import STORY_COLUMNS, DemoStory
from tests.conftest import Platform
from tests.e2e.test_up import run_cli, stop_up, up_command, wait_ready

OFFICE = {"Authorization": DEMO.headers("office-reader")["Authorization"]}


@pytest.fixture(scope="module")
def demo_up(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    """``gongkai up --demo`` for the file: (its URL, the directory of its output, the process).

    JSON logs at debug level, the most it ever says, for the logs test; the logs test, last,
    stops it with SIGTERM."""
    tmp_path = tmp_path_factory.mktemp("demo-up")
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


def story_violations(url: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{url}/violations", headers=OFFICE, timeout=10)
    assert r.status_code == 200, r.text
    return [v for v in r.json() if v["unit"] in STORY_COLUMNS]


def test_demo_against_gongkai_up_demo(
    demo_up: tuple[str, Path, subprocess.Popen[bytes]],
) -> None:
    url = demo_up[0]
    out = run_cli("demo", "--url", url, timeout=60)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    for line in (
        "1. 财政局 publishes a post by the book",
        "→ violation published_without_review (minor) recorded against finance-maker",
        "→ violation wrong_information (minor) recorded against statistics-maker",
        "refresh the column by",
        "Freshness (rule set wenan-2018)",
        "Violations of the story's units (2;",
    ):
        assert line in text, text
    # The county joined today: the late disclosure cannot be shown on the real clock, and the
    # demo says so rather than fake it.
    assert "(skipped: a decision of" in text

    got = story_violations(url)
    by_kind = {v["kind"]: v for v in got}
    assert sorted(by_kind) == ["published_without_review", "wrong_information"]
    assert {
        (p["person"], p["role"]) for p in by_kind["published_without_review"]["responsible"]
    } == {
        ("finance-maker", "maker"),
        ("finance-leader", "leader"),
    }
    assert {(p["person"], p["role"]) for p in by_kind["wrong_information"]["responsible"]} == {
        ("statistics-maker", "maker"),
        ("statistics-leader", "leader"),
    }
    cases = httpx.get(
        f"{url}/supervisions", headers=OFFICE, params={"unit": "beipo-township"}, timeout=10
    ).json()
    [case] = [c for c in cases if c["column"] == "work_arrangements"]
    assert case["notice"]["by"]["person"] == "office-supervisor"

    # Again the same day: the same answers, nothing new.
    again = run_cli("demo", "--url", url, timeout=60)
    assert again.returncode == 0, again.stderr[-3000:]
    assert story_violations(url) == got


# ---- the demo's logs ----------------------------------------------------------------------

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
    """No secret and no screened personal data in the logs, nor a token in any store.

    ``gongkai up --demo`` runs as a user runs it (its own process, the embedded nats-server,
    JSON logs at debug level, the most it ever says), ``gongkai demo`` plays the scripted day
    into it (here once more, after the story test's two runs), and the test adds the requests
    that carry personal data: a post with a resident ID number and a mobile number (accepted,
    flagged for secrecy review), the same data in a withdrawal reason and a leadership-change
    summary (refused: free text is never reviewed), in a classified post (refused), in URLs,
    and requests with wrong tokens. Then, after SIGTERM, every line the platform wrote, stdout
    and stderr, is searched:

    * the demo tokens appear only in the banner ``--demo`` prints on stdout for the person at
      the terminal (they are public: derived from the person ids), never in a log line;
    * the resident ID and the mobile number appear nowhere, in any spelling the screener knows;
    * no file under the data directory (every service's SQLite database, the JetStream store)
      holds a token.
    """
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


def test_demo_without_the_county_or_platform_says_what_to_do(tmp_path: Path) -> None:
    out = run_cli("demo", "--url", f"http://127.0.0.1:{free_port()}", "--timeout", "2")
    assert out.returncode == 1
    assert "cannot reach the platform" in out.stderr and "Traceback" not in out.stderr


# ---- later days, in-process on a fixed clock ------------------------------------------------


def at(d: date) -> datetime:
    return datetime.combine(d, time(9), SHANGHAI).astimezone(UTC)


async def next_day(platform: Platform, d: date) -> None:
    """The clock moves to 09:00 on ``d``; freshness and accountability act on the new day."""
    platform.clock.set(at(d))
    acc = platform.services["accountability"]
    assert isinstance(acc, AccountabilityService)
    await platform.settle()
    await platform.services["freshness"].tick()  # type: ignore[attr-defined]
    for _ in range(5):
        await platform.settle()
        if await acc.tick() == 0:
            break
    await platform.settle()


async def test_demo_on_later_days_shows_late_disclosure_and_breach(platform: Platform) -> None:
    await seed_demo(platform.evlog, platform.clock.now(), units=list(STORY_COLUMNS))
    await platform.settle()
    first = await DemoStory(platform.client, now=platform.clock.now, out=io.StringIO()).run(
        directory_loaded=True
    )
    assert first.today == date(2026, 3, 2)
    assert [p.kind for p in first.promised] == ["published_without_review", "wrong_information"]
    assert first.late_disclosure.startswith("skipped")
    deadline = first.supervision["notice"]["deadline"]
    assert deadline == "2026-03-09"  # 5 working days after Monday 03-02

    await next_day(platform, date(2026, 3, 23))
    out = io.StringIO()
    later = await DemoStory(platform.client, now=platform.clock.now, out=out).run()
    assert later.late_disclosure == "recorded", out.getvalue()
    assert [p.kind for p in later.promised] == [
        "published_without_review",
        "wrong_information",
        "late_publication",
    ]
    breach = later.supervision["breach"]
    assert breach, out.getvalue()
    kinds = sorted((v["kind"], v["unit"]) for v in later.violations if v["unit"] != "finance")
    assert ("late_publication", "market") in kinds
    assert ("stale_after_supervision", "beipo-township") in kinds
    text = out.getvalue()
    assert "→ violation late_publication (minor) recorded against market-maker" in text
    assert "the deadline passed with the column still stale" in text
    assert "→ violation stale_after_supervision (serious)" in text
