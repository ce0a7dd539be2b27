"""The service's kept days (``adapters.days``) answer every view as ``fold_log(until=day)`` does.

The console and ``GET /as-of`` ask ``AccountabilityService.as_of``, which answers from one pass
over the log kept per day instead of folding the whole log per request. Here, on the demo
county's three weeks and on its imported year, each day's kept rows are held against the fold
of the log up to that day: the tables the views read, the latest publications, and every view
the console draws from them. The overview's score trend is sampled from the same days, and
the violations list filters by severity.
"""

from __future__ import annotations

import asyncio
import re
from datetime import date, timedelta
from typing import Any

import pytest

from gongkai.calendar import local_date
from gongkai_accountability import service as service_module
from gongkai_accountability.adapters.days import KEPT, DayRows, Days
from gongkai_accountability.adapters.log import fold_log
from gongkai_accountability.domain.report import as_of_view, latest_publications, unit_reports
from gongkai_accountability.domain.rows import Rows
from gongkai_accountability.domain.tables import BY_NAME, VIOLATION
from gongkai_accountability.entrypoints.console import forms, views
from gongkai_accountability.service import AccountabilityService
from gongkai_demo.county import demo_token, seed_demo
from gongkai_demo.history import import_demo_history
from tests.conftest import Platform
from tests.consolekit import FIRST_DAY, LATER_DAY, demo_history, sign_in


def _service(platform: Platform) -> AccountabilityService:
    svc = platform.services["accountability"]
    assert isinstance(svc, AccountabilityService)
    return svc


async def _same_views(svc: AccountabilityService, platform: Platform, day: date) -> Rows:
    kept = await svc.as_of(day)
    assert isinstance(kept, DayRows), f"{day}: not answered from the kept days"
    want = (await fold_log(platform.evlog, until=day)).rows
    for table in KEPT:
        t = BY_NAME[table]
        assert dict(kept.scan(t)) == dict(want.scan(t)), (day, table)
    assert latest_publications(kept, day) == latest_publications(want, day), day
    assert as_of_view(kept, day) == as_of_view(want, day), day
    start = date(day.year, 1, 1)
    assert views.overview(kept, start, day) == views.overview(want, start, day), day
    for r in unit_reports(want, start, day):
        assert views.unit_view(kept, start, day, r.unit) == views.unit_view(
            want, start, day, r.unit
        ), (day, r.unit)
        assert forms.attachment2(kept, r.unit, day) == forms.attachment2(want, r.unit, day)
    f = views.Filter()
    assert views.VIOLATIONS.find(kept, f) == views.VIOLATIONS.find(want, f)
    assert views.findings(kept, f) == views.findings(want, f)
    assert views.CASES.find(kept, f) == views.CASES.find(want, f)
    return want


async def test_kept_days_answer_as_the_fold_of_each_day(county: Platform) -> None:
    svc = _service(county)
    seen = []
    for day in (FIRST_DAY - timedelta(days=1), FIRST_DAY, date(2026, 3, 10), LATER_DAY):
        rows = await _same_views(svc, county, day)
        seen.append(len(dict(rows.scan(VIOLATION))))
    # The days differ (the later one has the demo's late publication and breach).
    assert seen[0] == 0 and seen[-1] > seen[1], seen


async def test_kept_days_lay_imported_history_over_its_own_days(platform: Platform) -> None:
    units = ("finance", "market")
    await seed_demo(platform.evlog, platform.clock.now(), units=units)
    await platform.settle()
    await import_demo_history(platform.evlog, platform.clock.now(), units)
    await platform.settle()
    await platform.services["freshness"].tick(force=True)  # type: ignore[attr-defined]
    await platform.settle()
    svc = _service(platform)
    await svc.tick()
    await platform.settle()
    today = local_date(platform.clock.now())
    stale = 0
    for n in (400, 300, 200, 120, 60, 7, 0):
        day = today - timedelta(days=n)
        rows = await _same_views(svc, platform, day)
        stale += len(as_of_view(rows, day)["stale_columns"])
    assert stale > 0, "no kept day of the imported year has a stale column"


async def test_overview_trend_and_the_severity_filter(county: Platform) -> None:
    client = county.client
    assert (await sign_in(client, demo_token("office-reader"))).status_code == 303
    params = {"date": LATER_DAY.isoformat(), "from": "2026-03-01"}
    page = await client.get("/console", params=params)
    assert page.status_code == 200, page.text
    # A sparkline per unit known over the period: weekly points 03-01 .. 03-23.
    lines = re.findall(r'<polyline fill="none" stroke="currentColor" stroke-width="1.5" '
                       r'points="([^"]+)"', page.text)
    assert lines and all(len(x.split()) >= 2 for x in lines), lines
    want = (await fold_log(county.evlog, until=LATER_DAY)).rows
    _points, trend = await _service(county).score_trend(date(2026, 3, 1), LATER_DAY)
    assert {u: s[-1] for u, s in trend.items()} == {
        r.unit: r.score for r in unit_reports(want, date(2026, 3, 1), LATER_DAY)
    }

    violations = [v for _, v in want.scan(VIOLATION)]
    assert {v.severity for v in violations} == {"minor", "serious"}, violations
    for severity in ("minor", "serious"):
        r = await client.get("/console/violations.json",
                             params={"date": LATER_DAY.isoformat(), "severity": severity})
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["filter"]["severity"] == severity
        assert sorted(v["violation_id"] for v in got["violations"]) == sorted(
            v.violation_id for v in violations if v.severity == severity
        )
        html = await client.get("/console/violations",
                                params={"date": LATER_DAY.isoformat(), "severity": severity})
        assert f"共{len(got['violations'])}条" in html.text
        assert f'<option value="{severity}" selected>' in html.text
    bad = await client.get("/console/violations", params={"severity": "grave"})
    assert bad.status_code == 400 and "没有这种违规程度" in bad.text


async def test_the_pass_reads_on_to_what_the_projection_applied_meanwhile(
    platform: Platform,
) -> None:
    """The pass reads the log up to where the projection stood when the service started; what
    the projection applied while it read is not held (a restart behind hundreds of thousands
    of events applies them meanwhile) but read from the log after the pass, up to the last
    sequence applied."""
    await demo_history(platform)
    svc = _service(platform)
    last = await platform.evlog.last_sequence()
    half = last // 2
    svc.days = Days()
    svc._days_ready = asyncio.Event()
    svc._days_live = False
    svc._days_from = half  # the projection had applied half the log when the service began
    # What the projection applied while that pass read: the rest of the log.
    recorded = [rec async for rec in platform.evlog.replay(from_seq=half + 1)]
    await svc._applied(recorded)
    assert svc.days.position == 0, "nothing is fed before the pass has read the log"
    await svc._read_days()
    assert svc._days_ready.is_set() and svc._days_task is not None
    assert svc.days.position == last
    for day in (FIRST_DAY, LATER_DAY):
        await _same_views(svc, platform, day)


async def test_a_catch_up_from_nothing_feeds_the_pass_without_reading_the_log_again(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A projection that starts at sequence 0 hands the pass every event it applies: the log
    is read and decoded once (the pass read it a second time, a tenth of the catch-up)."""
    await demo_history(platform)
    svc = _service(platform)

    def no_second_read(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the pass read the log")

    monkeypatch.setattr(service_module, "verified_events", no_second_read)
    monkeypatch.setattr(svc, "_read_days_after", no_second_read)
    svc.days = Days()
    svc._days_ready = asyncio.Event()
    svc._days_live = False
    svc._days_from = svc._days_applied = 0
    await svc._read_days()
    assert svc._days_ready.is_set() and svc._days_task is not None
    # The projection's catch-up, batch by batch, as its subscription hands them over.
    recorded = [rec async for rec in platform.evlog.replay()]
    for i in range(0, len(recorded), 7):
        await svc._applied(recorded[i : i + 7])
    assert svc.days.position == recorded[-1].seq
    for day in (FIRST_DAY, LATER_DAY):
        await _same_views(svc, platform, day)


async def test_the_live_service_keeps_its_days_from_the_projections_fold(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While it runs, the service's kept days take what its projection's fold wrote
    (``Days.take``) and never fold an event again (``Days.feed``), imported history included;
    and they answer as the fold of each day."""

    def folded_again(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the kept days folded an event again")

    monkeypatch.setattr(Days, "feed", folded_again)
    await demo_history(platform)
    await import_demo_history(platform.evlog, platform.clock.now(), ("finance",))
    await platform.settle()
    await platform.services["freshness"].tick(force=True)  # type: ignore[attr-defined]
    await platform.settle()  # the history's past episodes (ColumnWasStale) too
    svc = _service(platform)
    await svc.settle()  # what accountability decides on them recorded
    await platform.settle()
    assert svc._days_task is not None, "the kept days were given up"
    assert svc.days.events > 0
    assert svc.days.version > 0, "no history was laid over the kept days"
    for day in (FIRST_DAY - timedelta(days=200), FIRST_DAY, LATER_DAY):
        await _same_views(svc, platform, day)
