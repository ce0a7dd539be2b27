"""The notice's story through the running platform (every service in-process, real NATS).

The finance bureau joins gongkai with its site already populated. Over March 2026:
a normative document goes online without the principal leader's approval; the leaders'
activities column goes stale, is supervised, and is still stale after the deadline; the office
confirms a finding of wrong statistics; a penalty decision goes online after its 10 working
days. Exactly those four violations are recorded, against the right people.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time
from typing import Any

from gongkai.calendar import SHANGHAI
from gongkai.events import Actor, new_event
from gongkai.events.contracts.intake import PostPublished
from gongkai.rules import load_rule_sets
from gongkai_accountability.service import AccountabilityService
from gongkai_demo.county import DEMO, seed_demo
from tests.causality import check_log, walk
from tests.conftest import Platform

D = date.fromisoformat
LEGACY = Actor(person="site-import", role="system", unit="system")


def at(d: date, hour: int = 9) -> datetime:
    return datetime.combine(d, time(hour), SHANGHAI).astimezone(UTC)


class Story:
    def __init__(self, platform: Platform) -> None:
        self.p = platform
        self.n = 0

    @property
    def acc(self) -> AccountabilityService:
        svc = self.p.services["accountability"]
        assert isinstance(svc, AccountabilityService)
        return svc

    async def day(self, d: date) -> None:
        """Move the clock to 09:00 on ``d``; freshness and accountability act on it."""
        self.p.clock.set(at(d))
        await self.settle()
        await self.p.services["freshness"].tick()  # type: ignore[attr-defined]
        await self.settle()

    async def settle(self) -> None:
        for _ in range(5):
            await self.p.settle()
            if await self.acc.tick() == 0:
                await self.p.settle()
                return

    async def submit(self, column: str, title: str, info: date, **extra: Any) -> dict[str, Any]:
        r = await self.p.client.post(
            "/posts",
            headers=DEMO.headers("finance-maker"),
            json={
                "unit": "finance",
                "column": column,
                "title": title,
                "body": title + "。",
                "information_date": info.isoformat(),
                **extra,
            },
        )
        assert r.status_code == 201, r.text
        await self.settle()
        return dict(r.json())

    async def sign(self, post: dict[str, Any], stage: str, person: str) -> None:
        r = await self.p.client.post(
            f"/posts/{post['post_id']}/signatures",
            headers=DEMO.headers(person),
            json={"stage": stage, "decision": "agree", "content_digest": post["content_digest"]},
        )
        assert r.status_code == 201, r.text
        await self.settle()

    async def publish(self, post: dict[str, Any], on: datetime) -> str:
        if self.p.clock.now() < on:
            self.p.clock.set(on)
        self.n += 1
        pub = f"pub-{self.n}"
        r = await self.p.client.post(
            "/publications",
            headers=DEMO.headers("cms"),
            json={
                "post_id": post["post_id"],
                "unit": "finance",
                "column": post["column"],
                "url": f"https://www.example.gov.cn/finance/{pub}",
                "online_at": on.isoformat(),
                "content_digest": post["content_digest"],
            },
        )
        assert r.status_code == 201, r.text
        await self.settle()
        return str(r.json()["publication_id"])

    async def violations(self) -> list[dict[str, Any]]:
        r = await self.p.client.get("/violations", headers=DEMO.headers("office-reader"))
        assert r.status_code == 200, r.text
        return list(r.json())

    async def reviewed(self, column: str, title: str, on: date) -> tuple[dict[str, Any], str]:
        post = await self.submit(column, title, on)
        await self.sign(post, "leader", "finance-leader")
        return post, await self.publish(post, at(on, 10))


async def test_the_notice_story(platform: Platform) -> None:
    s = Story(platform)
    # The site as it stood before gongkai: an item in every column, online on Sunday 03-01.
    for unit in ("finance", "county-office"):
        for code in load_rule_sets()[0].catalog.columns:
            if code == "housing_security":
                continue
            pub = f"legacy-{unit}-{code}".replace("_", "-")
            env = new_event(
                PostPublished(
                    publication_id=pub,
                    unit=unit,
                    column=code,
                    url=f"https://www.example.gov.cn/{unit}/{code}",
                    online_at=at(D("2026-03-01")),
                    content_digest=hashlib.sha256(pub.encode()).hexdigest(),
                ),
                aggregate_id=pub,
                actor=LEGACY,
                command_id=pub,
                recorded_at=platform.clock.now(),
            )
            await platform.evlog.append([env])
    await seed_demo(platform.evlog, platform.clock.now(), units=["finance"])
    await s.day(D("2026-03-02"))
    assert await s.violations() == []

    # 1. A normative document goes online with only the staff opinion signed.
    doc = await s.submit(
        "normative_documents",
        "关于规范财政资金管理的通知",
        D("2026-03-02"),
        important_kind="normative_document",
        origin="produced",
        channel="website",
    )
    await s.sign(doc, "staff", "finance-staff")
    await s.publish(doc, at(D("2026-03-03"), 10))

    await s.day(D("2026-03-04"))
    # 2. A statistics item, reviewed and published; the office finds its figures wrong.
    _stats, stats_pub = await s.reviewed("statistics", "2025年财政收支统计", D("2026-03-04"))
    office = DEMO.headers("office-reader")
    r = await platform.client.post(
        "/findings",
        headers=office,
        json={
            "publication_id": stats_pub,
            "kind": "wrong_statistics",
            "description": "一般公共预算收入与统计局公报不符",
            "evidence": ["截图 2026-03-05"],
        },
    )
    assert r.status_code == 201, r.text
    fid = r.json()["finding_id"]
    await s.settle()
    r = await platform.client.post(f"/findings/{fid}/confirmation", headers=office, json={})
    assert r.status_code == 200, r.text

    # 3. A penalty decision made on 03-02: due online within 10 working days (03-16).
    penalty = await s.submit(
        "administrative_penalties", "行政处罚决定书（文财罚〔2026〕1号）", D("2026-03-02")
    )
    await s.sign(penalty, "leader", "finance-leader")

    # Work arrangements stay fresh; leaders' activities (online 03-01) are not touched again.
    await s.day(D("2026-03-13"))
    await s.reviewed("work_arrangements", "三月工作部署", D("2026-03-13"))
    for d in ("2026-03-16", "2026-03-17"):
        await s.day(D(d))
    await s.publish(penalty, at(D("2026-03-17"), 15))
    for d in (
        "2026-03-18",
        "2026-03-19",
        "2026-03-20",
        "2026-03-23",
        "2026-03-24",
        "2026-03-25",
        "2026-03-26",
        "2026-03-27",
    ):
        await s.day(D(d))

    got = sorted(
        (
            v["kind"],
            v["severity"],
            v.get("post_id") == doc["post_id"],
            tuple(sorted((p["person"], p["role"]) for p in v["responsible"])),
        )
        for v in await s.violations()
        if v["unit"] == "finance"  # the county office's own columns are a story of their own
    )
    makers = ("finance-maker", "maker")
    leader = ("finance-leader", "leader")
    assert got == [
        ("late_publication", "minor", False, (leader, makers)),
        ("published_without_review", "minor", True, (leader, makers)),
        ("stale_after_supervision", "serious", False, (leader, makers)),
        ("wrong_information", "minor", False, (leader, makers)),
    ]
    cases = (
        await platform.client.get("/supervisions", headers=office, params={"unit": "finance"})
    ).json()
    breached = [c for c in cases if c.get("breach")]
    assert [c["column"] for c in breached] == ["leaders_activities"]
    # Causality: every event's cause precedes it in its correlation, no reaction lacks one, and
    # every violation walks back through its causes to the command that started it.
    log = [r.envelope async for r in platform.evlog.replay()]
    by_id = check_log(log)
    walks = {
        v.payload.kind: walk(v, by_id) for v in log
        if v.type == "ViolationRecorded" and v.payload.unit == "finance"
    }
    assert [[e.type for e in w] for _, w in sorted(walks.items())] == [
        # the late penalty decision: the refresh its publication made, the publication, which
        # continues the post's story (the post's last event), the submission
        ["ViolationRecorded", "ColumnRefreshed", "PostPublished", "PostSubmitted"],
        # online with the staff opinion only: the publication, the submission
        ["ViolationRecorded", "PostPublished", "PostSubmitted"],
        # the notice's deadline passed: the notice, the staleness, the column's last item
        ["ViolationRecorded", "SupervisionIssued", "ColumnStale", "PostPublished"],
        # the office's finding: its confirmation, its report
        ["ViolationRecorded", "FindingConfirmed", "FindingReported"],
    ]
    # The story, replayed, rebuilds to the same rows.
    live = s.acc.store.digest(s.acc.projection)
    svc = s.acc
    await svc.subscriptions[0].stop()
    svc.store.reset(svc.projection)
    from gongkai_accountability.adapters.log import fold_log

    res = await fold_log(platform.evlog)
    svc.projection.write_all(svc.store.engine, res.rows, res.last_seq)
    assert svc.store.digest(svc.projection) == live
