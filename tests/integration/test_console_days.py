"""The service's kept days (``adapters.days``) answer every view as ``fold_log(until=day)`` does.

The console and ``GET /as-of`` ask ``AccountabilityService.as_of``, which answers from one pass
over the log kept per day instead of folding the whole log per request. Here, on the demo
county's three weeks and on its imported year, each day's kept rows are held against the fold
of the log up to that day: the tables the views read, the latest publications, and every view
the console draws from them.
"""

from __future__ import annotations

from datetime import date, timedelta

from gongkai.calendar import local_date
from gongkai_accountability.adapters.days import KEPT, DayRows
from gongkai_accountability.adapters.log import fold_log
from gongkai_accountability.domain.report import as_of_view, latest_publications, unit_reports
from gongkai_accountability.domain.rows import Rows
from gongkai_accountability.entrypoints.console import forms, views
from gongkai_accountability.service import AccountabilityService
from gongkai_demo.county import seed_demo
from gongkai_demo.history import import_demo_history
from tests.conftest import Platform
from tests.consolekit import FIRST_DAY, LATER_DAY, demo_history


def _service(platform: Platform) -> AccountabilityService:
    svc = platform.services["accountability"]
    assert isinstance(svc, AccountabilityService)
    return svc


async def _same_views(svc: AccountabilityService, platform: Platform, day: date) -> Rows:
    kept = await svc.as_of(day)
    assert isinstance(kept, DayRows), f"{day}: not answered from the kept days"
    want = (await fold_log(platform.evlog, until=day)).rows
    for table in KEPT:
        assert dict(kept.scan(table)) == dict(want.scan(table)), (day, table)
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


async def test_kept_days_answer_as_the_fold_of_each_day(platform: Platform) -> None:
    await demo_history(platform)
    svc = _service(platform)
    seen = []
    for day in (FIRST_DAY - timedelta(days=1), FIRST_DAY, date(2026, 3, 10), LATER_DAY):
        rows = await _same_views(svc, platform, day)
        seen.append(len(dict(rows.scan("violation"))))
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
