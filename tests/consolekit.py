"""The console tests' common ground: a demo county with three weeks of history, and signing in.

The history is the demo's own promise about later days (tests/e2e/test_demo.py): the story run
on the day the county joined (2026-03-02), then again on 2026-03-23, when the penalty decision
goes online late and the supervised column is breached. Asked as of 03-02 and as of 03-23, the
console must give different answers, each the log's as of that day.
"""

from __future__ import annotations

import io
import re
from datetime import date
from typing import Any

import httpx

from gongkai_accountability.adapters.log import fold_log
from gongkai_accountability.domain.report import as_of_view
from gongkai_accountability.entrypoints.console.views import is_blank
from gongkai_demo.county import seed_demo
from gongkai_demo.story import STORY_COLUMNS, DemoStory
from tests.conftest import Platform
from tests.e2e.test_demo import next_day

FIRST_DAY = date(2026, 3, 2)
LATER_DAY = date(2026, 3, 23)
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def demo_history(platform: Platform) -> None:
    """Seed the demo county's story units and play the story on FIRST_DAY and LATER_DAY."""
    await seed_demo(platform.evlog, platform.clock.now(), units=list(STORY_COLUMNS))
    await platform.settle()
    await DemoStory(platform.client, now=platform.clock.now, out=io.StringIO()).run(
        directory_loaded=True
    )
    await next_day(platform, LATER_DAY)
    await DemoStory(platform.client, now=platform.clock.now, out=io.StringIO()).run()
    await platform.settle()


def csrf_of(html: str) -> str:
    m = CSRF.search(html)
    assert m, "no CSRF token in the form"
    return m.group(1)


async def sign_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    """Open the sign-in page (it sets the session cookie and its CSRF token) and sign in."""
    form = await client.get("/console/login")
    assert form.status_code == 200, form.text
    return await client.post(
        "/console/login",
        data={"token": token, "csrf": csrf_of(form.text), "next": "/console"},
    )


async def expected_stale(platform: Platform, day: date) -> dict[str, tuple[int, int]]:
    """Per unit, (stale but published once, blank) as ``gongkai audit as-of`` sees the day:
    ``as_of_view``'s stale columns, split by whether every open episode is of a blank rule."""
    res = await fold_log(platform.evlog, until=day)
    view: dict[str, Any] = as_of_view(res.rows, day)
    out: dict[str, tuple[int, int]] = {}
    for c in view["stale_columns"]:
        # A column stale only in imported history (ColumnWasStale) has no open episode: it is
        # 未按时更新, not blank — the console's own split (views.is_blank), asked directly.
        blank = is_blank(res.rows, c["unit"], c["column"])
        stale, blanks = out.get(c["unit"], (0, 0))
        out[c["unit"]] = (stale + (not blank), blanks + blank)
    return out
