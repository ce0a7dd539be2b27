"""A day of the demo county's imported year, asked in a real browser (issue #16: "pick
2026-03-01 on the demo county, and the stale/blank counts on the page equal `gongkai audit
as-of` for that day").

The county joins on 2026-03-02 (the test platform's clock) and `gongkai up --demo`'s year of
site history before that day is imported (``import_demo_history``: the same generator and the
same ``gongkai import`` path). On 2026-03-01 the lapsing units' two-weekly columns are behind:
the page shows them, and its counts are what ``as_of_view`` folds from the log for that day.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from gongkai_demo.county import seed_demo
from gongkai_demo.history import import_demo_history
from tests.conftest import Platform
from tests.consolekit import expected_stale
from tests.e2e.test_console_browser import (  # noqa: F401 - fixtures, used by name
    CHROMIUM_ARGS,
    chromium,
    served,
    shots,
    shown_counts,
    sign_in,
)

HISTORY_DAY = date(2026, 3, 1)

pytestmark = pytest.mark.timeout(300)


async def test_a_day_of_the_imported_year_in_chromium(
    platform: Platform,
    served: str,  # noqa: F811
    chromium: str,  # noqa: F811
    shots: Path,  # noqa: F811
) -> None:
    await seed_demo(platform.evlog, platform.clock.now())
    report = await import_demo_history(platform.evlog, platform.clock.now())
    assert report.imported > 1000 and not report.refused
    # The day's evaluation decides the history's episodes (ColumnWasStale), as the services'
    # ticks do (tests/integration/test_import_history.py).
    await platform.settle()
    await platform.services["freshness"].tick(force=True)  # type: ignore[attr-defined]
    await platform.settle()
    await platform.services["accountability"].tick()  # type: ignore[attr-defined]
    await platform.settle()
    want = await expected_stale(platform, HISTORY_DAY)
    # The year holds lapses: an as-of question about it has an answer.
    assert sum(stale for stale, _ in want.values()) > 0, want

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium, args=CHROMIUM_ARGS, headless=True
        )
        try:
            office = await sign_in(browser, served, "office-reader")
            await office.get_by_test_id("date").fill(HISTORY_DAY.isoformat())
            await office.get_by_test_id("asof-submit").click()
            await office.wait_for_url(f"**date={HISTORY_DAY.isoformat()}**")
            got = await shown_counts(office)
            assert got and all(got[u] == want.get(u, (0, 0)) for u in got), (got, want)
            assert set(want) <= set(got)
            await office.screenshot(path=str(shots / "overview-history.png"), full_page=True)
        finally:
            await browser.close()
