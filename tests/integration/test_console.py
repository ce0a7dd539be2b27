"""The inspectors' console (accountability, ``/console``) in-process: what each page answers as
of a day, who may see what, sign-in and CSRF, languages, exports and the message catalogue."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from gongkai import subjects, vocabulary
from gongkai.events import Actor, new_event
from gongkai.events.contracts.review import ReviewSigned
from gongkai_accountability.adapters.log import fold_log
from gongkai_accountability.domain.report import as_of_view
from gongkai_accountability.domain.tables import POST
from gongkai_accountability.entrypoints import console
from gongkai_accountability.entrypoints.console.i18n import beijing, negotiate
from gongkai_demo.county import DEMO, demo_token
from tests.conftest import Platform
from tests.consolekit import (
    FIRST_DAY,
    LATER_DAY,
    csrf_of,
    demo_history,
    expected_stale,
    sign_in,
)
from tests.waiting import wait_until

CONSOLE_DIR = Path(console.__file__).parent
VOCABULARY = Path(vocabulary.__file__)
ROW = re.compile(
    r'<tr data-unit="([^"]+)".*?data-testid="stale">(\d+)<.*?data-testid="blank">(\d+)<', re.S
)


def unit_counts(html: str) -> dict[str, tuple[int, int]]:
    return {u: (int(s), int(b)) for u, s, b in ROW.findall(html)}


async def test_pages_answer_as_of_the_day_asked(county: Platform) -> None:
    client = county.client
    r = await sign_in(client, demo_token(DEMO.person("county-office", "office")))
    assert r.status_code == 303 and r.headers["location"] == "/console"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    assert "secure" not in cookie  # plain http here; https sets Secure
    assert demo_token("office-reader") not in r.headers["set-cookie"]

    # The overview, as of each day, gives the stale and blank counts `audit as-of` gives.
    answers = {}
    for day in (FIRST_DAY, LATER_DAY):
        page = await client.get("/console", params={"date": day.isoformat()})
        assert page.status_code == 200, page.text
        got = unit_counts(page.text)
        want = await expected_stale(county, day)
        assert got, page.text[:2000]
        for unit, counts in got.items():
            assert counts == want.get(unit, (0, 0)), (day, unit)
        assert set(want) <= set(got)
        answers[day] = got
        # Names, not codes; Chinese first; Beijing time named.
        assert "文河县财政局" in page.text and "空白栏目" in page.text
        assert "北京时间" in page.text
    assert answers[FIRST_DAY] != answers[LATER_DAY]  # three weeks on, more columns went stale

    # A unit's page: its stale columns as of the day, its open cases, its violations with names.
    res = await fold_log(county.evlog, until=LATER_DAY)
    view = as_of_view(res.rows, LATER_DAY, "market")
    page = await client.get("/console/units/market", params={"date": LATER_DAY.isoformat()})
    assert page.status_code == 200
    shown = int(re.search(r'data-testid="unit-stale-count">(\d+)<', page.text).group(1))  # type: ignore[union-attr]
    assert shown == len(view["stale_columns"])
    assert "逾期公开" in page.text  # the late penalty decision, recorded on 03-23
    assert "市场监管局承办人（演示）" in page.text
    early = await client.get("/console/units/market", params={"date": FIRST_DAY.isoformat()})
    assert "逾期公开" not in early.text  # not yet on record on 03-02

    # A post: its chain of custody, made to published, with names and Beijing times.
    [post] = [
        p for _, p in res.rows.scan(POST) if p.unit == "finance" and p.publications
    ][:1]
    page = await client.get(f"/console/posts/{post.post_id}")
    assert page.status_code == 200
    assert page.text.count('<tr data-what="') == len(post.trail)
    assert "制作提交" in page.text and "公开发布" in page.text
    assert beijing(post.trail[0].at, "北京时间") in page.text
    assert "+08:00" in page.text
    assert (await client.get("/console/posts/no-such-post")).status_code == 404

    # Violations: filtered, exported as CSV (BOM, Chinese heads) and JSON.
    page = await client.get("/console/violations", params={"kind": "late_publication"})
    assert page.status_code == 200
    assert page.text.count('data-kind="late_publication"') >= 1
    assert 'data-kind="wrong_information"' not in page.text
    data = await client.get("/console/violations.csv", params={"unit": "market"})
    assert data.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["违规编号", "发生时间", "单位"]
    assert rows[1:] and all(r[2] == "文河县市场监督管理局" for r in rows[1:])
    js = await client.get("/console/violations.json", params={"unit": "market", "lang": "en"})
    body = json.loads(js.content)
    assert body["filter"]["unit"] == "market"
    assert {v["unit"] for v in body["violations"]} == {"market"}
    assert body["violations"][0]["kind_name"] == "Late publication"

    # English from the catalogue: by ?lang= or by Accept-Language.
    en = await client.get("/console", params={"lang": "en"})
    assert "County overview" in en.text and "县域总览" not in en.text
    assert "Beijing time" in en.text or "UTC+08:00" in en.text
    by_header = await client.get("/console", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert "County overview" in by_header.text
    assert (await client.get("/console/units/nosuchunit")).status_code == 404
    assert (await client.get("/console", params={"date": "03/01/2026"})).status_code == 400


async def test_a_unit_sees_its_unit_and_forms_need_their_token(county: Platform) -> None:
    res = await fold_log(county.evlog)
    market_post = next(p for _, p in res.rows.scan(POST) if p.unit == "market")
    client = county.client

    # Not signed in: every page sends to the sign-in form, and says where it came from.
    r = await client.get("/console/units/finance")
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login?next=")

    # A bad token is refused at the form; a form without its CSRF token is refused 403.
    form = await client.get("/console/login")
    token = csrf_of(form.text)
    bad = await client.post("/console/login", data={"token": "gk_nope", "csrf": token})
    assert bad.status_code == 401 and "令牌无效" in bad.text
    assert (
        await client.post("/console/login", data={"token": demo_token("finance-maker")})
    ).status_code == 403
    assert (
        await client.post(
            "/console/login", data={"token": demo_token("finance-maker"), "csrf": "forged"}
        )
    ).status_code == 403

    r = await sign_in(client, demo_token(DEMO.person("finance", "maker")))
    assert r.status_code == 303
    overview = await client.get("/console")
    assert set(unit_counts(overview.text)) == {"finance"}
    assert (await client.get("/console/units/finance")).status_code == 200
    assert (await client.get("/console/units/market")).status_code == 403
    other = await client.get(f"/console/posts/{market_post.post_id}")
    assert other.status_code == 403 and market_post.title not in other.text
    assert (await client.get("/console/violations", params={"unit": "market"})).status_code == 403
    mine = await client.get("/console/violations.json")
    assert {v["unit"] for v in json.loads(mine.content)["violations"]} <= {"finance"}

    # Signing out is a form too: without the session's token it is refused.
    assert (await client.post("/console/logout", data={})).status_code == 403
    page = await client.get("/console")
    out = await client.post("/console/logout", data={"csrf": csrf_of(page.text)})
    assert out.status_code == 303
    assert (await client.get("/console")).status_code == 303


async def test_a_forged_session_cookie_opens_nothing(county: Platform) -> None:
    """A session cookie is encrypted and authenticated: one not made with the data
    directory's key sends back to the sign-in form."""
    client = county.client
    await sign_in(client, demo_token("office-reader"))
    assert (await client.get("/console")).status_code == 200
    stolen = httpx.AsyncClient(transport=client._transport, base_url="http://gongkai")
    stolen.cookies.set("gk_console", "gAAAAA" + "x" * 100, domain="gongkai", path="/console")
    try:
        assert (await stolen.get("/console")).status_code == 303
    finally:
        await stolen.aclose()


def csv_rows(data: httpx.Response) -> list[list[str]]:
    assert data.status_code == 200, data.text
    # The BOM tells Excel the file is UTF-8.
    assert data.content.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data.content.decode("utf-8-sig"))))


async def test_findings_and_supervision_cases_as_of_the_day(
    county: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = county.client
    await sign_in(client, demo_token(DEMO.person("county-office", "office")))
    res = await fold_log(county.evlog, until=LATER_DAY)
    findings = [f for _, f in res.rows.scan("finding")]
    cases = [c for _, c in res.rows.scan("case")]
    assert findings and cases  # the story reports a finding and supervises a column

    # 纠错: every finding of the day, by unit name, with the people its confirmation held
    # responsible (the wrong_information violation recorded for it).
    page = await client.get("/console/findings", params={"date": LATER_DAY.isoformat()})
    assert page.status_code == 200, page.text
    assert page.text.count("<tr data-finding=") == len(findings)
    assert "纠错记录" in page.text and "统计数据错误" in page.text
    confirmed = [f for f in findings if f.status == "confirmed"]
    assert confirmed
    held = next(
        v
        for _, v in res.rows.scan("violation")
        if v.finding_id == confirmed[0].finding_id
    )
    names = await client.get("/console/violations.json", params={"date": LATER_DAY.isoformat()})
    people = {
        r["name"]
        for v in json.loads(names.content)["violations"]
        if v["violation_id"] == held.violation_id
        for r in v["responsible"]
    }
    assert people and all(n in page.text for n in people)
    unit = confirmed[0].unit
    other = next(c for c in ("finance", "market") if c != unit)
    only = await client.get("/console/findings", params={"unit": other})
    assert f'data-unit="{unit}"' not in only.text
    none = await client.get("/console/findings", params={"status": "resolved", "to": "2026-03-01"})
    assert "<tr data-finding=" not in none.text
    assert (await client.get("/console/findings", params={"status": "bogus"})).status_code == 400
    # Before the story ran nothing was reported: the page answers from that day's fold.
    early = await client.get("/console/findings", params={"date": "2026-03-01"})
    assert "<tr data-finding=" not in early.text

    rows = csv_rows(await client.get("/console/findings.csv", params={"unit": unit}))
    assert rows[0][:4] == ["纠错编号", "报告日期", "单位", "错误类型"]
    assert rows[1:] and all("统计局" in r[2] and r[2] != unit for r in rows[1:])  # a name
    js = json.loads((await client.get("/console/findings.json", params={"lang": "en"})).content)
    assert js["filter"]["unit"] is None
    assert {f["finding_id"] for f in js["findings"]} == {f.finding_id for f in findings}
    assert {f["status_name"] for f in js["findings"]} <= {"Reported", "Confirmed", "Resolved"}

    # 督办: every case with its notice and deadline; filtered by state.
    page = await client.get("/console/supervisions", params={"date": LATER_DAY.isoformat()})
    assert page.status_code == 200, page.text
    assert page.text.count("<tr data-case=") == len(cases)
    issued = [c for c in cases if c.notice]
    assert issued and issued[0].notice.deadline in page.text
    for state in ("open", "issued", "closed"):
        only = await client.get(
            "/console/supervisions", params={"date": LATER_DAY.isoformat(), "state": state}
        )
        assert only.text.count("<tr data-case=") == sum(c.status == state for c in cases)
    rows = csv_rows(
        await client.get("/console/supervisions.csv", params={"date": LATER_DAY.isoformat()})
    )
    assert rows[0][:4] == ["案件编号", "单位", "栏目", "立案日期"]
    assert len(rows) == len(cases) + 1
    assert all("--" not in r[1] and r[1] for r in rows[1:])  # names, not codes
    finance = await client.get("/console/supervisions.json", params={"unit": "finance"})
    js = json.loads(finance.content)
    assert js["filter"] == {"unit": "finance", "state": None}
    assert {c["unit"] for c in js["cases"]} <= {"finance"}

    # English from the catalogue, and the header links to every list.
    en = await client.get("/console/supervisions", params={"lang": "en"})
    assert "Supervision cases" in en.text and "督办案件" not in en.text
    assert "Findings (corrections)" in en.text and "Log integrity" in en.text
    en = await client.get("/console/findings", params={"lang": "en"})
    assert "Reported on" in en.text and "报告日期" not in en.text

    # A list shows a page of rows at a time (PAGE_ROWS; one here), its count and its exports
    # every row the filter keeps.
    monkeypatch.setattr(console.routes, "PAGE_ROWS", 1)
    day = {"date": LATER_DAY.isoformat()}
    first = await client.get("/console/supervisions", params=day)
    assert first.text.count("<tr data-case=") == 1
    assert f"共{len(cases)}件" in first.text and f"第1页，共{len(cases)}页" in first.text
    last = await client.get("/console/supervisions", params={**day, "page": str(len(cases))})
    assert last.text.count("<tr data-case=") == 1 and 'data-testid="next"' not in last.text
    assert 'data-testid="prev"' in last.text
    for bad in ("0", str(len(cases) + 1), "x"):
        page = await client.get("/console/supervisions", params={**day, "page": bad})
        assert page.status_code == 400, bad
    assert len(csv_rows(await client.get("/console/supervisions.csv", params=day))) == (
        len(cases) + 1
    )


async def test_a_unit_sees_its_own_findings_and_cases_only(county: Platform) -> None:
    client = county.client
    await sign_in(client, demo_token(DEMO.person("finance", "maker")))
    for path in ("/console/findings", "/console/supervisions"):
        page = await client.get(path)
        assert page.status_code == 200, page.text
        assert re.findall(r'<tr data-(?:finding|case)="[^"]+" data-\w+="\w+" data-unit="(\w+)"',
                          page.text) == ["finance"] * page.text.count('data-unit="finance"')
        assert 'data-unit="market"' not in page.text
        assert (await client.get(path, params={"unit": "market"})).status_code == 403
        assert (await client.get(path + ".csv", params={"unit": "market"})).status_code == 403
        assert (await client.get(path + ".json", params={"unit": "market"})).status_code == 403
    mine = json.loads((await client.get("/console/supervisions.json")).content)
    assert {c["unit"] for c in mine["cases"]} <= {"finance"}
    # The log's integrity is the office's: a unit's people neither see it nor its link.
    assert (await client.get("/console/integrity")).status_code == 403
    assert "nav-integrity" not in (await client.get("/console")).text


async def test_integrity_shows_the_checkpoints_and_alerts_as_of_the_day(
    platform: Platform,
) -> None:
    await demo_history(platform)
    client = platform.client
    await sign_in(client, demo_token(DEMO.person("county-office", "office")))
    acc: Any = platform.services["accountability"]
    assert await acc.checkpoint(force=True) >= 1
    # An unsigned review signature straight on the bus: accountability records an alert.
    res = await fold_log(platform.evlog)
    post = next(p for _, p in res.rows.scan(POST) if p.unit == "finance")
    env = new_event(
        ReviewSigned(
            post_id=post.post_id, chain=1, stage="leader", decision="agree",
            signer=Actor(person="mallory", role="leader", unit="finance"),
            content_digest=post.digest,
        ),
        aggregate_id=post.post_id,
        actor=Actor(person="mallory", role="leader", unit="finance"),
        command_id="console-forged",
        recorded_at=platform.clock.now(),
    )
    subject = subjects.event_subject(env.aggregate_type, env.aggregate_id, env.type)
    ack = await platform.evlog.js.publish(subject, env.to_json(), stream=subjects.STREAM)

    async def alerted() -> bool:
        r = await client.get("/console/integrity")
        return f"<td class=\"num\">{ack.seq}</td>" in r.text

    await wait_until(alerted, 10, "the forged event's integrity alert")
    page = await client.get("/console/integrity")
    assert page.status_code == 200
    assert "签名检查点" in page.text and "未签名" in page.text and "北京时间" in page.text
    assert int(re.search(r'data-testid="checkpoint-count">(\d+)<', page.text).group(1)) >= 1  # type: ignore[union-attr]
    assert int(re.search(r'data-testid="alert-count">(\d+)<', page.text).group(1)) >= 1  # type: ignore[union-attr]
    # Before the county joined there was neither a checkpoint nor an alert.
    early = await client.get("/console/integrity", params={"date": "2026-03-01"})
    assert 'data-testid="checkpoint-count">0<' in early.text
    assert 'data-testid="alert-count">0<' in early.text
    en = await client.get("/console/integrity", params={"lang": "en"})
    assert "Signed checkpoints" in en.text and "Unsigned" in en.text
    # The page reads on from the checkpoints it read before: a newer one shows up too.
    count = int(re.search(r'data-testid="checkpoint-count">(\d+)<', page.text).group(1))  # type: ignore[union-attr]
    assert await acc.checkpoint(force=True) >= 1
    again = await client.get("/console/integrity")
    assert f'data-testid="checkpoint-count">{count + 1}<' in again.text


def test_every_message_has_an_english_translation() -> None:
    """The templates and labels' messages are all in the English catalogue, and the committed
    .mo is the .po compiled."""
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    found = {
        msg
        for _file, _line, msg, _comments, _ctx in (
            (f, ln, m, c, x)
            for f, ln, m, c, x in extract_from_dir(
                str(CONSOLE_DIR), method_map, keywords={"_": None, "N_": None}
            )
        )
    }
    # The words every command and page share (gongkai.vocabulary) are the console's too.
    found |= {
        m
        for _f, _ln, m, _c, _x in extract_from_dir(
            str(VOCABULARY.parent),
            [("vocabulary.py", "python")],
            keywords={"N_": None},
        )
    }
    assert len(found) > 50
    po_path = CONSOLE_DIR / "locale/en/LC_MESSAGES/messages.po"
    with po_path.open("rb") as f:
        po = read_po(f)
    with po_path.with_suffix(".mo").open("rb") as f:
        mo = read_mo(f)
    translated = {m.id: m.string for m in po if m.id}
    missing = sorted(m for m in found if not translated.get(m))  # type: ignore[call-overload]
    assert not missing, f"untranslated: {missing}"
    assert {m.id: m.string for m in mo if m.id} == translated


@pytest.mark.parametrize(
    ("query", "header", "lang"),
    [
        (None, None, "zh"),
        ("en", "zh-CN", "en"),
        (None, "en-US,en;q=0.8", "en"),
        (None, "fr, en;q=0.5, zh;q=0.9", "zh"),
        ("xx", "de", "zh"),
    ],
)
def test_language_is_the_query_then_accept_language_then_chinese(
    query: str | None, header: str | None, lang: str
) -> None:
    assert negotiate(query, header) == lang


def test_times_are_beijing_time_with_the_zone() -> None:
    assert beijing("2026-03-02T05:05:00+00:00", "北京时间") == "2026-03-02 13:05 北京时间 (+08:00)"
