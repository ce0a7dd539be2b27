"""``gongkai demo`` against a running platform.

1. As a user runs it: ``gongkai up --demo`` in one process, ``gongkai demo`` in another, on the
   real clock. The violations it announces appear in accountability's API, nothing else is
   recorded against the story's units, and a second run on the same day records nothing new.
2. Its promise about later days, in-process on a fixed clock: run on the day the county
   joined, then three weeks later — the penalty decision goes online late and the supervised
   column is breached.
"""

from __future__ import annotations

import io
import os
import subprocess
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


@pytest.fixture
def demo_platform(tmp_path: Path) -> Iterator[str]:
    http, nport = free_port(), free_port()
    with (tmp_path / "up.out").open("w") as out, (tmp_path / "up.err").open("w") as err:
        proc = subprocess.Popen(
            up_command(tmp_path / "var", http, nport, "--demo", "--no-sync"),
            stdout=out,
            stderr=err,
            env={**os.environ, "GONGKAI_LOG_LEVEL": "warning"},
        )
        try:
            wait_ready(http)
            yield f"http://127.0.0.1:{http}"
        finally:
            stop_up(proc)


def story_violations(url: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{url}/violations", headers=OFFICE, timeout=10)
    assert r.status_code == 200, r.text
    return [v for v in r.json() if v["unit"] in STORY_COLUMNS]


def test_demo_against_gongkai_up_demo(demo_platform: str) -> None:
    url = demo_platform
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
