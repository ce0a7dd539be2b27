"""``gongkai import`` on a real platform: the demo county's year imported twice records it
once, and an as-of day in that year answers the same on the console, over HTTP and from the
command line — non-empty, and with no violation for what nobody reviewed."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from gongkai import subjects
from gongkai.calendar import local_date
from gongkai.natsserver import NatsServer
from gongkai_accountability.adapters.log import fold_log
from gongkai_accountability.domain.report import as_of_view
from gongkai_accountability.domain.tables import PUBLICATION
from gongkai_demo.county import DEMO, demo_token, seed_demo
from gongkai_demo.history import history_items, import_demo_history, write_history
from tests.conftest import Platform
from tests.consolekit import sign_in
from tests.integration.test_console import unit_counts

UNITS = ("finance", "market")
GONGKAI = str(Path(sys.executable).with_name("gongkai"))


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


# A year imported twice (once through the CLI), then the as-of answers of three readers, two of
# them CLI processes that fold the whole log: about 12 s alone, several times that with the
# suite's other worker busy.
pytestmark = pytest.mark.timeout(300)


async def gongkai(*args: str, url: str) -> Done:
    """The command line in a process of its own; the platform's services run on meanwhile."""
    proc = await asyncio.create_subprocess_exec(
        GONGKAI,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "GONGKAI_NATS_URL": url},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 90)
    except TimeoutError:
        # Seen once in a clean-clone run (the second import, through the CLI, outlived
        # pytest-timeout): say which command hung and what it printed, not only "Timeout".
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(
            f"gongkai {' '.join(args)} did not end within 90 s; stderr: {err.decode()[-2000:]}"
        ) from None
    return Done(proc.returncode or 0, out.decode(), err.decode())


async def imported_events(platform: Platform) -> int:
    n = 0
    async for _ in platform.evlog.replay(
        filter_subject=subjects.type_filter("PublicationImported")
    ):
        n += 1
    return n


async def test_the_demo_year_imported_twice_is_recorded_once_and_read_alike(
    platform: Platform, nats_server: NatsServer, tmp_path: Path
) -> None:
    await seed_demo(platform.evlog, platform.clock.now(), units=UNITS)
    await platform.settle()
    today = local_date(platform.clock.now())
    items = history_items(today, UNITS)
    path = tmp_path / "history.jsonl"
    write_history(items, path)

    first = await import_demo_history(platform.evlog, platform.clock.now(), UNITS)
    assert (first.imported, first.present, first.refused) == (len(items), 0, [])
    # The same year again, through the command line and a CSV export: nothing new.
    csv_path = tmp_path / "history.csv"
    write_history(items, csv_path)
    again = await gongkai("import", str(csv_path), "--quiet", url=nats_server.url)
    assert again.returncode == 0, again.stderr
    assert f"{len(items)} rows: 0 imported, {len(items)} already present, 0 refused" in (
        again.stdout
    )
    assert await imported_events(platform) == len(items)

    # The day's evaluation decides the history's episodes and today's state.
    await platform.settle()
    await platform.services["freshness"].tick(force=True)  # type: ignore[attr-defined]
    await platform.settle()
    await platform.services["accountability"].tick()  # type: ignore[attr-defined]
    await platform.settle()

    # Nobody reviewed the history in gongkai: it is no violation.
    everything = (await fold_log(platform.evlog)).rows
    assert [v for _, v in everything.scan("violation")] == []

    # A day in the imported year with stale columns (the lapsing units' first half-year).
    # The first such day, oldest first: each try folds the log up to that day.
    want: dict[str, Any] = {}
    for day in (today - timedelta(days=n) for n in range(300, 30, -7)):
        want = as_of_view((await fold_log(platform.evlog, until=day)).rows, day)
        if want["stale_columns"]:
            break
    assert want["stale_columns"], "no day of the imported year has a stale column"
    assert {c["unit"] for c in want["stale_columns"]} == {"market"}  # the lapsing unit
    assert want["open_cases"] == [] and want["violations"] == []

    # HTTP
    office = {"Authorization": DEMO.headers("office-reader")["Authorization"]}
    r = await platform.client.get("/as-of", params={"date": day.isoformat()}, headers=office)
    assert r.status_code == 200, r.text
    http = r.json()
    http["as_of"] = http.pop("date")
    assert http == want
    r = await platform.client.get(
        "/as-of", params={"date": day.isoformat(), "unit": "market"}, headers=office
    )
    assert r.status_code == 200, r.text  # known by its history on that day

    # CLI
    done = await gongkai("audit", "as-of", day.isoformat(), "--json", url=nats_server.url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == want
    market = await gongkai(
        "audit", "as-of", day.isoformat(), "--unit", "market", "--json", url=nats_server.url
    )
    assert market.returncode == 0, market.stderr

    # Console: the overview's stale and blank counts of that day.
    client = platform.client
    assert (await sign_in(client, demo_token("office-reader"))).status_code == 303
    page = await client.get("/console", params={"date": day.isoformat()})
    assert page.status_code == 200, page.text
    got = unit_counts(page.text)
    # History's columns had items: stale (未按时更新), never blank.
    expected: dict[str, tuple[int, int]] = {u: (0, 0) for u in UNITS}
    for c in want["stale_columns"]:
        expected[c["unit"]] = (expected[c["unit"]][0] + 1, 0)
    assert got == expected


async def test_import_refuses_bad_rows_by_line_and_records_the_rest(
    platform: Platform, nats_server: NatsServer, tmp_path: Path
) -> None:
    await seed_demo(platform.evlog, platform.clock.now(), units=("finance",))
    await platform.settle()
    path = tmp_path / "export.csv"
    path.write_text(
        "unit,column,title,url,online_at\n"
        "finance,work_arrangements,部署一,http://www.wenhe.gov.cn/a/1.html,2026-01-05 09:30\n"
        "nosuch,work_arrangements,部署二,http://www.wenhe.gov.cn/a/2.html,2026-01-06 09:30\n"
        "文河县财政局,工作部署,部署三,http://www.wenhe.gov.cn/a/3.html,2026-01-07 09:30\n"
        "finance,gossip,部署四,http://www.wenhe.gov.cn/a/4.html,2026-01-08 09:30\n"
        "finance,plans,规划,www.wenhe.gov.cn/a/5.html,2026-01-09 09:30\n",
        encoding="utf-8",
    )
    done = await gongkai("import", str(path), url=nats_server.url)
    assert done.returncode == 1
    assert "5 rows: 2 imported, 0 already present, 3 refused" in done.stdout
    assert f"{path}:3: refused: unit: no unit 'nosuch'" in done.stderr
    assert f"{path}:5: refused: column:" in done.stderr
    assert f"{path}:6: refused: url:" in done.stderr
    assert "2/5" not in done.stderr or "5/5" in done.stderr  # a counter, not a traceback
    assert "Traceback" not in done.stderr
    assert await imported_events(platform) == 2
    # By name: the unit's directory name and the column's Chinese name resolve to codes.
    rows = (await fold_log(platform.evlog)).rows
    assert {p.column for _, p in rows.scan(PUBLICATION)} == {"work_arrangements"}
    missing = await gongkai("import", str(tmp_path / "nope.csv"), url=nats_server.url)
    assert missing.returncode == 2 and "nope.csv" in missing.stderr
    assert date.today()  # the CLI checks times against the real clock, the platform's is fixed
