"""freshness on a real nats-server with every service in-process.

The unit directory, posts and publications are recorded here as the facts intake records; what
freshness does goes through its own loop, clock tick and routes, and is read back from the log.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest

from gongkai import subjects
from gongkai.calendar import SHANGHAI, WorkingCalendar
from gongkai.eventlog import EventLog
from gongkai.events import Actor, EventPayload, new_event
from gongkai.events.contracts.intake import (
    PersonRegistered,
    PostPublished,
    RoleGranted,
    TokenIssued,
    UnitRegistered,
)
from gongkai.rules import load_rule_sets
from gongkai.runtime.host import StartupError
from gongkai.runtime.service import ServiceContext
from gongkai.runtime.settings import Settings
from gongkai.tokens import new_token, token_hash
from gongkai_freshness.adapters.config import FreshnessConfig
from gongkai_freshness.adapters.log import fold_log
from gongkai_freshness.adapters.register import ColumnRegister
from gongkai_freshness.bootstrap import build
from gongkai_freshness.service import FreshnessService
from tests.builders import post_submitted
from tests.conftest import Platform

D = date.fromisoformat
INTAKE = Actor(person="intake", role="system", unit="system")
DIGEST = "c" * 64


def shanghai(d: date, hour: int = 9) -> datetime:
    return datetime.combine(d, time(hour), SHANGHAI).astimezone(UTC)


@dataclass
class County:
    platform: Platform
    tokens: dict[str, str] = field(default_factory=dict)
    n: int = 0

    @property
    def evlog(self) -> EventLog:
        return self.platform.evlog

    @property
    def freshness(self) -> FreshnessService:
        svc = self.platform.services["freshness"]
        assert isinstance(svc, FreshnessService)
        return svc

    async def record(self, payload: EventPayload, aggregate: str, index: int = 0) -> None:
        self.n += 1
        env = new_event(
            payload,
            aggregate_id=aggregate,
            actor=INTAKE,
            command_id=f"test-{aggregate}-{self.n}",
            recorded_at=self.platform.clock.now(),
        )
        await self.evlog.append([env])

    async def unit(self, code: str, kind: str = "department") -> None:
        await self.record(
            UnitRegistered(
                code=code,
                name=code,
                kind=kind,
                contact_name="联系人",
                contact_mobile="19900000000",  # type: ignore[arg-type]
            ),
            code,
        )

    async def person(self, pid: str, roles: list[tuple[str, str]]) -> None:
        token = self.tokens[pid] = new_token()
        await self.record(PersonRegistered(person_id=pid, name=pid), pid)
        for u, r in roles:
            await self.record(RoleGranted(person_id=pid, unit=u, role=r), pid)  # type: ignore[arg-type]
        await self.record(
            TokenIssued(person_id=pid, token_sha256=token_hash(token), token_hint=token[:8]), pid
        )

    def auth(self, pid: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[pid]}"}

    async def submit(self, post: str, unit: str, column: str, info: date) -> None:
        await self.record(
            post_submitted(unit=unit, column=column, information_date=info, content_digest=DIGEST),
            post,
        )

    async def publish(
        self, pub: str, unit: str, column: str, on: date, post: str | None = None
    ) -> None:
        await self.record(
            PostPublished(
                publication_id=pub,
                post_id=post,
                unit=unit,
                column=column,
                url=f"https://example.gov.cn/{pub}",
                online_at=shanghai(on),
                content_digest=DIGEST,
            ),
            pub,
        )

    async def at(self, d: date) -> int:
        """Move the clock to 09:00 on ``d`` and let the tick run; returns events recorded."""
        self.platform.clock.set(shanghai(d))
        return await self.freshness.tick()

    async def recorded(self) -> int:
        """How many events freshness has recorded (other services react and append too)."""
        return len([r async for r in self.evlog.replay(filter_subject="gk.ev.column.>")])

    async def events(self, event_type: str) -> list[Any]:
        return [
            r.envelope
            async for r in self.evlog.replay(filter_subject=subjects.type_filter(event_type))
        ]


@pytest.fixture
async def county(platform: Platform) -> County:
    c = County(platform)
    catalog = load_rule_sets()[0].catalog
    # Every column has an item on the day the platform starts, except statistics (blank).
    # The items are known before the unit: registering it then finds only statistics blank.
    for i, code in enumerate(catalog.columns):
        if code not in ("statistics", "housing_security"):
            await c.publish(f"seed{i}", "finance", code, D("2026-03-02"))
    await c.unit("finance")
    await platform.settle()
    return c


async def test_each_transition_is_recorded_once_across_ticks_and_restarts(
    county: County, platform: Platform, tmp_path: Path
) -> None:
    # Catching up evaluated once: the blank column is stale under both rule sets.
    stale = await county.events("ColumnStale")
    assert sorted((e.payload.column, e.payload.rule_set, e.payload.rule) for e in stale) == [
        ("statistics", "national-2019", "blank"),
        ("statistics", "wenan-2018", "blank"),
    ]
    await county.submit("P1", "finance", "normative_documents", D("2026-02-10"))
    await platform.settle()
    assert await county.at(D("2026-03-11")) > 0  # due soon: fortnightly news, the document
    soon = await county.events("ColumnDueSoon")
    assert {(e.payload.column, e.payload.due_date) for e in soon} >= {
        ("normative_documents", D("2026-03-16")),
        ("leaders_activities", D("2026-03-16")),
    }
    await county.at(D("2026-03-17"))
    missed = [
        e.payload
        for e in await county.events("ColumnStale")
        if e.payload.column == "normative_documents"
    ]
    assert [(p.rule, p.post_id, p.due_date, p.overdue_days) for p in missed] == [
        ("within-20wd", "P1", D("2026-03-16"), 1)
    ]
    mine = await county.recorded()
    assert await county.freshness.tick(force=True) == 0
    assert await county.recorded() == mine

    # The document goes online late: the event itself closes the episode, no tick needed.
    platform.clock.set(shanghai(D("2026-03-18")))
    await county.publish("p1", "finance", "normative_documents", D("2026-03-18"), post="P1")
    await platform.settle()
    refreshed = [
        e
        for e in await county.events("ColumnRefreshed")
        if e.payload.column == "normative_documents"
    ]
    assert len(refreshed) == 1
    p = refreshed[0].payload
    assert (p.resolution, p.met_on, p.late_days, p.post_id) == (
        "published",
        D("2026-03-18"),
        2,
        "P1",
    )
    assert p.stale_event_id == next(
        e.event_id for e in await county.events("ColumnStale") if e.payload.post_id == "P1"
    )
    assert refreshed[0].causation_id is not None  # caused by the publication

    # A restarted service replays the log and records nothing new.
    table_before = county.freshness.status_table(D("2026-03-18"))
    mine = await county.recorded()
    await county.freshness.stop()
    ctx = ServiceContext(
        settings=Settings(data_dir=tmp_path), clock=platform.clock, nats_url=platform.ctx.nats_url
    )
    again = build(ctx)
    assert isinstance(again, FreshnessService)
    await again.start()
    try:
        await again.wait_caught_up()
        assert await again.tick(force=True) == 0
        assert await county.recorded() == mine
        assert again.status_table(D("2026-03-18")) == table_before
    finally:
        await again.stop()

    # The log alone, as of a date, gives the same table (what `gongkai freshness status` does).
    replayed = ColumnRegister(load_rule_sets(), WorkingCalendar.default())
    await fold_log(county.evlog, replayed, until=D("2026-03-18"))
    assert replayed.status_table(D("2026-03-18")) == table_before
    # As of an earlier date, the late publication has not happened yet.
    earlier = ColumnRegister(load_rule_sets(), WorkingCalendar.default())
    await fold_log(county.evlog, earlier, until=D("2026-03-17"))
    row = next(
        r
        for r in earlier.status_table(D("2026-03-17"), unit="finance", rule_set="wenan-2018")
        if r.column == "normative_documents"
    )
    assert (row.state, row.rule, row.due_date) == ("stale", "within-20wd", D("2026-03-16"))


async def test_cli_status_reads_the_log_alone(county: County, platform: Platform) -> None:
    await county.submit("P1", "finance", "normative_documents", D("2026-02-10"))
    await platform.settle()
    exe = Path(sys.executable).with_name("gongkai")
    proc = await asyncio.create_subprocess_exec(
        str(exe), "freshness", "status", "--unit", "finance", "--as-of", "2026-03-17",
        "--nats-url", platform.ctx.nats_url, "--state", "stale", "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    rows = json.loads(out)["columns"]
    assert {(r["column"], r["rule_set"], r["rule"]) for r in rows} == {
        ("normative_documents", "wenan-2018", "within-20wd"),
        ("leaders_activities", "national-2019", "news-2w"),
        ("work_arrangements", "national-2019", "news-2w"),
        ("leaders_activities", "wenan-2018", "fortnightly"),
        ("work_arrangements", "wenan-2018", "fortnightly"),
    }
    proc = await asyncio.create_subprocess_exec(
        str(exe), "freshness", "status", "--unit", "finance", "--as-of", "2026-03-17",
        "--nats-url", platform.ctx.nats_url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert text.startswith("截至 2026-03-17 日终（北京时间）, as of 2026-03-17 (Asia/Shanghai)")
    # Names beside codes, in the notice's words: one token each, so a line splits on spaces.
    line = next(
        x
        for x in text.splitlines()
        if x.split()[1:3] == ["规范性文件(normative_documents)", "wenan-2018"]
    )
    assert line.split()[0] == "finance"  # this county names its units by their codes
    assert line.split()[3:6] == ["未按时更新(stale)", "2026-03-16", "2026-03-02"]
    assert line.rstrip().endswith("within-20wd, 逾期 1 天 (1 day overdue)")
    assert "housing_security" in text and "hidden by default" in text
    assert "空白栏目(blank)" in text.splitlines()[-1]
    proc = await asyncio.create_subprocess_exec(
        str(exe), "freshness", "status", "--as-of", "2026-02-30",
        "--nats-url", platform.ctx.nats_url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 2
    assert b"invalid date '2026-02-30'" in err


async def test_keep_and_hide_through_http(county: County, platform: Platform) -> None:
    await county.unit("donghe", "township")
    await county.person("leader", [("finance", "leader")])
    await county.person("maker", [("finance", "maker")])
    await county.person("office", [("county-office", "office")])
    await platform.settle()
    client = platform.client
    url = "/units/finance/columns/statistics/visibility"
    body = {
        "visibility": "hidden",
        "reason": "统计由统计局发布 / published by the statistics bureau",
    }

    before = await county.evlog.last_sequence()
    r = await client.put(url, json=body)
    assert r.status_code == 401 and r.json()["field"] == "Authorization"
    r = await client.put(url, json=body, headers=county.auth("maker"))
    assert r.status_code == 403
    r = await client.put(
        url, json={"visibility": "gone", "reason": "x"}, headers=county.auth("leader")
    )
    assert r.status_code == 422 and r.json()["field"] == "visibility"
    r = await client.put(
        "/units/finance/columns/nope/visibility", json=body, headers=county.auth("leader")
    )
    assert r.status_code == 404 and r.json()["field"] == "column"
    r = await client.put(
        "/units/donghe/columns/public_resources/visibility",
        json={"visibility": "kept", "reason": "x"},
        headers=county.auth("office"),
    )
    assert r.status_code == 422 and r.json()["field"] == "column"
    assert await county.evlog.last_sequence() == before  # refusals record nothing

    r = await client.put(url, json=body, headers=county.auth("leader"))
    assert r.status_code == 200, r.text
    assert (r.json()["changed"], r.json()["visibility"]) == (True, "hidden")
    hidden = await county.events("ColumnHidden")
    assert len(hidden) == 1
    assert (hidden[0].actor.person, hidden[0].actor.role, hidden[0].payload.reason) == (
        "leader",
        "leader",
        body["reason"],
    )
    # Hiding the blank column closed its stale episodes.
    closed = [e.payload for e in await county.events("ColumnRefreshed")]
    assert sorted((p.rule_set, p.resolution) for p in closed if p.column == "statistics") == [
        ("national-2019", "hidden"),
        ("wenan-2018", "hidden"),
    ]
    r = await client.put(url, json=body, headers=county.auth("leader"))
    assert (r.status_code, r.json()["changed"]) == (200, False)
    assert len(await county.events("ColumnHidden")) == 1

    # The county office may tick for any unit; the housing bureau's column is kept by hand.
    r = await client.put(
        "/units/finance/columns/housing_security/visibility",
        json={"visibility": "kept", "reason": "本局负责住房保障"},
        headers=county.auth("office"),
    )
    assert r.status_code == 200
    kept = await county.events("ColumnKept")
    assert (kept[0].actor.role, kept[0].actor.unit) == ("office", "county-office")

    a2 = (await client.get("/units/finance/attachment-2")).json()
    rows = {row["column"]: row for row in a2["rows"]}
    assert (rows["statistics"]["keep"], rows["statistics"]["decided_by"]) == (False, "leader")
    assert (rows["housing_security"]["keep"], rows["housing_security"]["source"]) == (True, "unit")
    html = await client.get("/units/finance/attachment-2", params={"format": "html"})
    assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    assert "政府信息公开平台专版体裁栏目信息更新时限表" in html.text and "×" in html.text

    cols = (await client.get("/units/finance/columns", params={"rule_set": "wenan-2018"})).json()
    states = {c["column"]: c["state"] for c in cols["columns"]}
    assert states["statistics"] == "hidden"
    assert states["housing_security"] == "blank"


async def test_status_and_site_risk_routes(county: County, platform: Platform) -> None:
    client = platform.client
    await county.at(D("2026-03-20"))
    r = await client.get("/units/finance/columns", params={"state": "stale"})
    assert r.status_code == 200
    stale = {(c["column"], c["rule_set"]) for c in r.json()["columns"]}
    assert ("leaders_activities", "wenan-2018") in stale
    r = await client.get("/columns", params={"state": "blank", "rule_set": "national-2019"})
    assert [c["column"] for c in r.json()["columns"]] == ["statistics"]
    r = await client.get("/site/risk")
    risk = r.json()
    assert risk["level"] == "veto"  # the homepage news has been idle for 18 days
    lines = {line["id"]: line for line in risk["rule_sets"][0]["lines"]}
    assert (lines["homepage-idle"]["value"], lines["homepage-idle"]["level"]) == (18, "veto")
    assert (lines["blank-columns"]["value"], lines["blank-columns"]["level"]) == (1, "ok")
    assert (lines["stale-columns"]["value"], lines["stale-columns"]["level"]) == (2, "ok")
    assert lines["stale-columns"]["counted"][0] == {
        "unit": "finance",
        "column": "leaders_activities",
    }
    # The same figures for Prometheus, per unit, after the day's evaluation.
    prom = (await client.get("/metrics")).text
    assert (
        'gongkai_freshness_unit_columns{rule_set="national-2019",state="blank",unit="finance"} 1.0'
        in prom
    )
    assert (
        'gongkai_freshness_units_past_veto_line{line="homepage-idle",rule_set="national-2019"} 1.0'
        in prom
    )
    assert (
        'gongkai_freshness_units_past_veto_line{line="blank-columns",rule_set="national-2019"} 0.0'
        in prom
    )
    rule_sets = (await client.get("/rule-sets")).json()
    assert [rs["id"] for rs in rule_sets["rule_sets"]] == ["wenan-2018", "national-2019"]
    assert len([c for g in rule_sets["catalog"]["groups"] for c in g["columns"]]) == 30
    for path, params, status, fld in [
        ("/units/nobody/columns", {}, 404, "code"),
        ("/units/finance/columns", {"rule_set": "provincial"}, 422, "rule_set"),
        ("/units/finance/columns", {"state": "rotten"}, 422, "state"),
        ("/site/risk", {"unit": "nobody"}, 404, "unit"),
        ("/units/nobody/attachment-2", {}, 404, "code"),
    ]:
        r = await client.get(path, params=params)
        assert (r.status_code, r.json()["field"]) == (status, fld), path


def test_a_bad_rule_set_stops_start_up_with_its_place(tmp_path: Path) -> None:
    bad = tmp_path / "county.yaml"
    bad.write_text(
        "id: county\ntitle: {zh: 县, en: County}\nsource: x\ncatalog_from: wenan-2018\n"
        "rules:\n  - {id: r, kind: periodic, every: fortnightly, columns: all}\n",
        encoding="utf-8",
    )
    ctx = ServiceContext(settings=Settings(data_dir=tmp_path), nats_url="nats://127.0.0.1:1")
    with pytest.raises(StartupError) as err:
        build(ctx, FreshnessConfig(rule_sets=("wenan-2018", str(bad))))
    assert f"{bad}: rules[0].every: expected e.g. '2 weeks'" in str(err.value)
