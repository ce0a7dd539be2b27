"""What the inspectors' command line answers, over HTTP: ``GET /as-of`` and ``GET /report``.

The same folds as ``gongkai audit as-of`` and ``gongkai audit report --format json``, asked
of the demo county's three weeks; a unit's people get their unit, an unknown unit is a 404 (a
typo must not read as a clean record), the report is the office's.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from gongkai_accountability.adapters.log import fold_log
from gongkai_accountability.domain.report import as_of_view, unit_reports
from gongkai_demo.county import DEMO
from tests.conftest import Platform
from tests.consolekit import FIRST_DAY, LATER_DAY, demo_history

OFFICE = DEMO.headers("office-reader")
FINANCE = DEMO.headers("finance-maker")


def _auth(headers: dict[str, str]) -> dict[str, str]:
    return {"Authorization": headers["Authorization"]}


async def test_as_of_and_report_answer_what_the_cli_folds(platform: Platform) -> None:
    await demo_history(platform)
    client = platform.client
    for day in (FIRST_DAY, LATER_DAY):
        r = await client.get("/as-of", params={"date": day.isoformat()}, headers=_auth(OFFICE))
        assert r.status_code == 200, r.text
        want: dict[str, Any] = as_of_view((await fold_log(platform.evlog, until=day)).rows, day)
        want["date"] = want.pop("as_of")
        assert r.json() == want
    first = (await client.get("/as-of", params={"date": "2026-03-02"},
                              headers=_auth(OFFICE))).json()
    later = (await client.get("/as-of", params={"date": "2026-03-23"},
                              headers=_auth(OFFICE))).json()
    assert len(later["violations"]) > len(first["violations"])

    r = await client.get("/report", params={"from": "2026-03-01", "to": "2026-03-23"},
                         headers=_auth(OFFICE))
    assert r.status_code == 200, r.text
    rows = (await fold_log(platform.evlog, until=LATER_DAY)).rows
    want_units = [u.as_dict() for u in unit_reports(rows, date(2026, 3, 1), LATER_DAY)]
    assert r.json() == {"from": "2026-03-01", "to": "2026-03-23", "units": want_units}


async def test_a_unit_gets_its_unit_and_a_typo_is_not_a_clean_record(platform: Platform) -> None:
    await demo_history(platform)
    client = platform.client
    r = await client.get("/as-of", params={"date": "2026-03-23"}, headers=_auth(FINANCE))
    assert r.status_code == 200, r.text
    assert {v["unit"] for v in r.json()["violations"]} <= {"finance"}
    r = await client.get("/as-of", params={"date": "2026-03-23", "unit": "market"},
                         headers=_auth(FINANCE))
    assert r.status_code == 403
    r = await client.get("/as-of", params={"date": "2026-03-23", "unit": "nosuchunit"},
                         headers=_auth(OFFICE))
    assert (r.status_code, r.json()["field"]) == (404, "unit")
    r = await client.get("/report", params={"from": "2026-03-01", "to": "2026-03-23"},
                         headers=_auth(FINANCE))
    assert r.status_code == 403
    r = await client.get("/report", params={"from": "2026-03-23", "to": "2026-03-01"},
                         headers=_auth(OFFICE))
    assert (r.status_code, r.json()["field"]) == (422, "from")
