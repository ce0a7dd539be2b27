"""What the inspectors' command line answers, over HTTP: ``GET /as-of``, ``GET /report``,
``GET /trail/{post}`` and ``GET /verify``.

The same folds as ``gongkai audit as-of`` and ``gongkai audit report --format json``, asked
of the demo county's three weeks; a unit's people get their unit, an unknown unit is a 404 (a
typo must not read as a clean record), the report is the office's.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from gongkai_accountability.adapters.log import fold_log
from gongkai_accountability.adapters.trail import Links, post_rows, read_trail
from gongkai_accountability.domain.report import as_of_view, unit_reports
from gongkai_accountability.domain.rows import Rows
from gongkai_accountability.domain.tables import POST
from gongkai_accountability.service import AccountabilityService
from gongkai_demo.county import DEMO
from tests.conftest import Platform
from tests.consolekit import FIRST_DAY, LATER_DAY

OFFICE = DEMO.headers("office-reader")
FINANCE = DEMO.headers("finance-maker")


@pytest.fixture
def platform(county: Platform) -> Platform:
    """The demo county, played once for the file: every test here only asks about its
    history (the verify test's checkpoint changes no answer the others check)."""
    return county


def _auth(headers: dict[str, str]) -> dict[str, str]:
    return {"Authorization": headers["Authorization"]}


async def test_as_of_and_report_answer_what_the_cli_folds(platform: Platform) -> None:
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


async def _cli(*args: str, data_dir: Path) -> tuple[int, str, str]:
    """``gongkai`` as an inspector runs it, on the platform's log (its read model at hand)."""
    exe = Path(sys.executable).with_name("gongkai")
    proc = await asyncio.create_subprocess_exec(
        str(exe), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "GONGKAI_DATA_DIR": str(data_dir)},
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


def _posts(rows: Rows) -> list[str]:
    return [k for k, _ in rows.scan(POST)]


async def test_trail_answers_what_the_cli_prints_and_reads_by_subject(
    platform: Platform, tmp_path: Path
) -> None:
    client = platform.client
    svc = platform.services["accountability"]
    assert isinstance(svc, AccountabilityService)
    whole = (await fold_log(platform.evlog)).rows
    posts = _posts(whole)
    # Every kind of step the demo makes: the per-subject read must meet them all.
    steps = {s.what for _, p in whole.scan(POST) for s in p.trail}
    assert {"submitted", "signed:leader", "published", "violation"} <= steps, steps
    for day in (FIRST_DAY, LATER_DAY):
        then = (await fold_log(platform.evlog, until=day)).rows
        for post_id in posts:
            live = svc.model.get(POST, post_id)
            row = (await post_rows(platform.evlog, post_id, Links.of(live, 0), until=day))
            assert row.get(POST, post_id) == then.get(POST, post_id), (post_id, day)

    post = next(p for _, p in whole.scan(POST) if any(s.what == "violation" for s in p.trail))
    post_id, unit = post.post_id, post.unit
    owner = DEMO.headers(f"{unit}-maker") if unit in ("finance", "market") else OFFICE
    r = await client.get(f"/trail/{post_id}", headers=_auth(owner))
    assert r.status_code == 200, r.text
    code, out, err = await _cli("audit", "trail", post_id, "--json",
                                "--nats-url", platform.ctx.nats_url, data_dir=tmp_path)
    assert code == 0, err
    assert r.json() == json.loads(out) == POST.encode_row(post)
    assert out == json.dumps(POST.encode_row(post), ensure_ascii=False, indent=2) + "\n"
    # The same read the command line makes, indexed by the service's read model.
    read = await read_trail(platform.evlog, post_id, svc.ctx.settings.db_url("accountability"))
    assert read.how == "subjects" and read.rows.get(POST, post_id) == post
    r = await client.get(f"/trail/{post_id}", params={"date": "2026-03-01"}, headers=_auth(OFFICE))
    assert r.status_code == 404
    r = await client.get(f"/trail/{post_id}", params={"date": FIRST_DAY.isoformat()},
                         headers=_auth(OFFICE))
    first = (await fold_log(platform.evlog, until=FIRST_DAY)).rows.get(POST, post_id)
    assert r.status_code == (200 if first else 404)
    if first:
        assert r.json() == POST.encode_row(first)
    other = "market" if unit != "market" else "finance"
    r = await client.get(f"/trail/{post_id}", headers=_auth(DEMO.headers(f"{other}-maker")))
    assert r.status_code == 403
    assert (await client.get("/trail/nosuchpost", headers=_auth(OFFICE))).status_code == 404
    paths = (await client.get("/openapi.json")).json()["paths"]
    schema = paths["/trail/{post_id}"]["get"]["responses"]["200"]["content"]
    assert schema["application/json"]["schema"]["$ref"].endswith("/PostTrail")


async def test_verify_answers_what_the_cli_reports(platform: Platform, tmp_path: Path) -> None:
    svc = platform.services["accountability"]
    assert isinstance(svc, AccountabilityService)
    await svc.checkpoint(force=True)
    r = await platform.client.get("/verify", headers=_auth(OFFICE))
    assert r.status_code == 200, r.text
    got = r.json()
    code, out, err = await _cli("audit", "verify", "--nats-url", platform.ctx.nats_url,
                                data_dir=tmp_path)
    assert code == 0, out + err
    assert got["verified"] and got["problems"] == [] and got["checkpoints"] >= 1
    assert f"root {got['root']} (size {got['events']})" in out
    assert f"{got['checkpoints']} signed checkpoints" in out
    assert f"events 1..{got['covered']} checked against them" in out
    # Asked again of a log that has not grown: the same run's answer.
    assert (await platform.client.get("/verify", headers=_auth(OFFICE))).json() == got
    assert (await platform.client.get("/verify", headers=_auth(FINANCE))).status_code == 403
