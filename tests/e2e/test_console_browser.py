"""The inspectors' console in a real browser: Debian's Chromium, headless, driven by Playwright.

The browser comes from the project's own set-up (deploy/scripts/chromium.sh installs the
``chromium`` package when it is missing); the test never skips for want of it. The platform is
the in-process one (tests/conftest.py), served over HTTP on a free loopback port by uvicorn on
the test's own event loop, with the demo county's three weeks of history (tests/consolekit.py).

Screenshots of each page go to the test's temporary directory; with GONGKAI_CONSOLE_SCREENSHOTS=1
they are written to docs/console/ instead (the README shows those).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Browser, Page, async_playwright

from gongkai.natsserver import free_port
from gongkai.runtime.host import make_app
from gongkai_accountability.adapters.log import fold_log
from gongkai_accountability.domain.tables import POST
from gongkai_demo.county import demo_token
from tests.conftest import Platform
from tests.consolekit import FIRST_DAY, LATER_DAY, demo_history, expected_stale
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, installed by the project's script if it is not there yet."""
    out = subprocess.run(
        ["sh", str(ROOT / "deploy/scripts/chromium.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    if os.environ.get("GONGKAI_CONSOLE_SCREENSHOTS") == "1":
        d = ROOT / "docs/console"
        d.mkdir(parents=True, exist_ok=True)
        return d
    return tmp_path


@pytest.fixture
async def served(platform: Platform) -> AsyncIterator[str]:
    """The platform's app on a free loopback port, on this event loop (the services' NATS
    clients belong to it)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            make_app(list(platform.services.values())),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    task = asyncio.create_task(server.serve())
    await wait_until(lambda: server.started or task.done(), 20, "uvicorn to start")
    assert not task.done(), "uvicorn stopped at start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def sign_in(browser: Browser, url: str, person: str) -> Page:
    context = await browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    page = await context.new_page()
    await page.goto(f"{url}/console")
    # Not signed in: the console sends to its sign-in form.
    assert "/console/login" in page.url
    await page.get_by_test_id("token").fill(demo_token(person))
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(f"{url}/console")
    return page


async def shown_counts(page: Page) -> dict[str, tuple[int, int]]:
    counts: dict[str, tuple[int, int]] = {}
    for row in await page.locator("tr[data-unit]").all():
        unit = await row.get_attribute("data-unit")
        assert unit is not None
        stale = int(await row.get_by_test_id("stale").inner_text())
        blank = int(await row.get_by_test_id("blank").inner_text())
        counts[unit] = (stale, blank)
    return counts


async def test_inspectors_console_in_chromium(
    platform: Platform, served: str, chromium: str, shots: Path
) -> None:
    await demo_history(platform)
    rows = (await fold_log(platform.evlog)).rows
    finance_post = next(
        p for _, p in rows.scan(POST) if p.unit == "finance" and p.publications
    )
    market_post = next(p for _, p in rows.scan(POST) if p.unit == "market")

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium, args=CHROMIUM_ARGS, headless=True
        )
        try:
            office = await sign_in(browser, served, "office-reader")
            assert await office.get_by_test_id("me").inner_text() == "县政府办读网员（演示）"

            # Pick a day: the counts on the page are `audit as-of`'s for that day.
            for day in (FIRST_DAY, LATER_DAY):
                await office.get_by_test_id("date").fill(day.isoformat())
                await office.get_by_test_id("asof-submit").click()
                await office.wait_for_url(f"**date={day.isoformat()}**")
                got = await shown_counts(office)
                want = await expected_stale(platform, day)
                assert got and all(got[u] == want.get(u, (0, 0)) for u in got), (day, got)
                assert set(want) <= set(got)
            # Each unit's score trend over the period: an inline SVG line, no script.
            assert await office.get_by_test_id("trend").count() == len(got)
            # Fits a 1280 px screen: nothing wider than the window.
            width = await office.evaluate("document.documentElement.scrollWidth")
            assert width <= 1280, width
            await office.screenshot(path=str(shots / "overview.png"), full_page=True)

            await office.get_by_role("link", name="文河县市场监督管理局").click()
            await office.wait_for_url("**/console/units/market**")
            assert "逾期公开" in await office.get_by_test_id("violations").inner_text()
            # Its Attachment 2: every column of the catalogue, kept (✓) or hidden (×).
            table2 = office.get_by_test_id("attachment2")
            assert await table2.locator("tbody tr[data-column]").count() >= 30
            text2 = await table2.inner_text()
            assert "✓" in text2 and "更新时限" in text2 and "北京时间" in text2
            await table2.screenshot(path=str(shots / "unit-attachment2.png"))
            await office.screenshot(path=str(shots / "unit.png"), full_page=True)

            # A post: its chain of custody, from making to publication, by name.
            await office.goto(f"{served}/console/posts/{finance_post.post_id}")
            trail = office.get_by_test_id("trail")
            assert await trail.locator("tbody tr").count() == len(finance_post.trail)
            text = await trail.inner_text()
            assert "制作提交" in text and "公开发布" in text and "北京时间" in text
            # Its Attachment 1 (the review form) as signed: the leader's opinion, by name.
            form = office.get_by_test_id("attachment1")
            leader = await form.locator("td[data-stage=leader]").inner_text()
            assert "√ 同意" in leader and "北京时间" in leader, leader
            assert "本机关、单位制发" in await form.inner_text()
            await form.screenshot(path=str(shots / "post-attachment1.png"))
            await office.screenshot(path=str(shots / "post.png"), full_page=True)

            await office.goto(f"{served}/console/violations?date={LATER_DAY.isoformat()}")
            every = await office.locator("tr[data-kind]").count()
            assert every >= 3
            # Filtered by severity: the serious ones only.
            await office.get_by_test_id("severity").select_option("serious")
            await office.get_by_test_id("filter-submit").click()
            await office.wait_for_url("**severity=serious**")
            assert 0 < await office.locator("tr[data-kind]").count() < every
            await office.screenshot(path=str(shots / "violations.png"), full_page=True)

            # A form without its CSRF token is refused: sign-out with the token taken out.
            await office.evaluate(
                "document.querySelector('form.inline input[name=csrf]').remove()"
            )
            async with office.expect_response("**/console/logout") as refused:
                await office.get_by_role("button", name="退出").click()
            assert (await refused.value).status == 403
            assert "表单已失效" in await office.get_by_test_id("error").inner_text()

            # A unit's person sees their unit, not another unit's posts.
            maker = await sign_in(browser, served, "finance-maker")
            assert set(await shown_counts(maker)) == {"finance"}
            response = await maker.goto(f"{served}/console/posts/{market_post.post_id}")
            assert response is not None and response.status == 403
            assert market_post.title not in await maker.content()

            # English from the catalogue.
            await maker.goto(f"{served}/console?lang=en")
            assert "County overview" in await maker.locator("h1").inner_text()
            login = await browser.new_page(viewport={"width": 1280, "height": 720})
            await login.goto(f"{served}/console/login")
            await login.screenshot(path=str(shots / "login.png"))
        finally:
            await browser.close()
