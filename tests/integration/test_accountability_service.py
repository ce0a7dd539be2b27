"""accountability alone on a real nats-server: upstream facts appended as intake, review and
freshness record them; what accountability records is read back from the log and its routes."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gongkai import subjects
from gongkai.calendar import SHANGHAI
from gongkai.eventlog import EventLog
from gongkai.events import Actor, EventPayload, new_event
from gongkai.events.contracts.freshness import ColumnStale
from gongkai.events.contracts.intake import PostPublished
from gongkai.natsserver import NatsServer
from gongkai.runtime.clock import FixedClock
from gongkai.runtime.host import make_app
from gongkai.runtime.service import ServiceContext
from gongkai.runtime.settings import Settings
from gongkai_accountability import service as service_module
from gongkai_accountability.bootstrap import build
from gongkai_accountability.domain.decide import Policy, decide
from gongkai_accountability.domain.rows import MemoryRows
from gongkai_accountability.domain.tables import BY_NAME, CASE, TODO, UNIT, VIOLATION
from gongkai_accountability.service import AccountabilityService
from gongkai_demo.county import DEMO, seed_demo
from tests.builders import post_submitted
from tests.waiting import wait_until

D = date.fromisoformat
A = "a" * 64
MAKER = Actor(person="finance-maker", role="maker", unit="finance")
CMS = Actor(person="cms", role="office", unit="county-office")
FRESH = Actor(person="freshness", role="system", unit="system")


def at(d: date) -> datetime:
    return datetime.combine(d, time(9), SHANGHAI).astimezone(UTC)


@dataclass
class Rig:
    evlog: EventLog
    svc: AccountabilityService
    client: httpx.AsyncClient
    clock: FixedClock
    ctx: ServiceContext
    n: int = 0

    async def fact(self, payload: EventPayload, agg: str, actor: Actor = FRESH) -> str:
        self.n += 1
        env = new_event(
            payload,
            aggregate_id=agg,
            actor=actor,
            command_id=f"t-{agg}-{self.n}",
            recorded_at=self.clock.now(),
        )
        await self.evlog.append([env])
        return env.event_id

    async def events(self, etype: str) -> list[Any]:
        return [
            r.envelope async for r in self.evlog.replay(filter_subject=subjects.type_filter(etype))
        ]


@pytest.fixture
async def rig(nats_server: NatsServer, evlog: EventLog, tmp_path: Path) -> AsyncIterator[Rig]:
    clock = FixedClock(at(D("2026-03-02")))
    ctx = ServiceContext(
        settings=Settings(data_dir=tmp_path), clock=clock, nats_url=nats_server.url
    )
    await seed_demo(evlog, clock.now(), units=["finance"])
    svc = build(ctx, Policy(notice_after_days=None, deadline_days=5))
    assert isinstance(svc, AccountabilityService)
    await svc.start()
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=make_app([svc])), base_url="http://gongkai"
    )
    try:
        yield Rig(evlog, svc, client, clock, ctx)
    finally:
        await client.aclose()
        await svc.stop()


async def submit_and_publish(rig: Rig, post: str, pub: str) -> None:
    await rig.fact(
        post_submitted(
            title="规范性文件",
            body="正文",
            important_kind="normative_document",
            information_date=D("2026-03-02"),
            content_digest=A,
        ),
        post,
        MAKER,
    )
    await rig.fact(
        PostPublished(
            publication_id=pub,
            post_id=post,
            unit="finance",
            column="normative_documents",
            url="https://x/" + pub,
            online_at=rig.clock.now(),
            content_digest=A,
        ),
        pub,
        CMS,
    )


async def test_violation_recorded_once_across_restart_and_served(rig: Rig, tmp_path: Path) -> None:
    await submit_and_publish(rig, "P1", "pub1")
    await rig.svc.settle()
    [v] = await rig.events("ViolationRecorded")
    assert v.payload.kind == "published_without_review"
    assert {r.person for r in v.payload.responsible} == {"finance-maker", "finance-leader"}

    office = DEMO.headers("office-reader")
    r = await rig.client.get("/violations", params={"unit": "finance"}, headers=office)
    assert r.status_code == 200
    assert [x["violation_id"] for x in r.json()] == [v.aggregate_id]
    r = await rig.client.get("/posts/P1/trail", headers=office)
    assert [s["what"] for s in r.json()["trail"]] == ["submitted", "published", "violation"]
    assert (await rig.client.get("/posts/nope/trail", headers=office)).status_code == 404
    assert (await rig.client.get("/violations")).status_code == 401

    # A restarted service on a fresh database replays everything and records nothing new.
    live = rig.svc.store.digest(rig.svc.projection)
    await rig.svc.stop()
    again = build(
        ServiceContext(
            settings=Settings(data_dir=tmp_path / "fresh"),
            clock=rig.clock,
            nats_url=rig.ctx.nats_url,
        ),
        Policy(None, 5),
    )
    assert isinstance(again, AccountabilityService)
    (tmp_path / "fresh").mkdir()
    await again.start()
    try:
        await again.settle()
        assert len(await rig.events("ViolationRecorded")) == 1
        assert again.store.digest(again.projection) == live
    finally:
        await again.stop()


async def test_a_tick_records_what_is_owed_in_bounded_batches(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a catch-up the read model may owe tens of thousands of events: a tick makes,
    signs and appends them a bounded batch at a time, and every one is recorded once."""
    monkeypatch.setattr(service_module, "RECORD_BATCH", 2)
    batches: list[int] = []
    record = rig.svc.record

    async def counted(decisions: Any) -> int:
        batches.append(len(decisions))
        return await record(decisions)

    monkeypatch.setattr(rig.svc, "record", counted)
    for i in range(5):
        await submit_and_publish(rig, f"P{i}", f"pub{i}")
    await rig.svc.settle()  # its own ticks, woken by what the projection applies, and more
    assert len(await rig.events("ViolationRecorded")) == 5
    assert max(batches) == 2 and sum(batches) >= 5, batches


async def test_the_snapshot_decides_as_its_rows_decoded(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tick's snapshot keeps obligations and cases as stored until decide reads them; it
    answers, and decide decides, as the same rows decoded at once."""

    async def no_tick() -> int:
        return 0

    monkeypatch.setattr(rig.svc, "tick", no_tick)  # what is owed stays owed
    for i in range(3):
        await submit_and_publish(rig, f"P{i}", f"pub{i}")
    for col in ("leaders_activities", "statistics"):
        stale = ColumnStale(
            unit="finance", column=col, rule_set="wenan-2018", rule="fortnightly",
            rule_kind="periodic", due_date=D("2026-03-01"), overdue_days=1, episode=f"e-{col}",
        )
        await rig.fact(stale, f"finance--{col}")
    await rig.svc.wait_caught_up(await rig.evlog.last_sequence())
    snap = await asyncio.to_thread(rig.svc.model.snapshot)
    decoded = MemoryRows()
    with rig.svc.engine.connect() as conn:
        for table in (TODO, CASE, VIOLATION, UNIT):
            t = rig.svc.projection.tables_by_name[table]
            for row_key, data in conn.execute(select(t.c.key, t.c.data)):
                decoded.tables[table][row_key] = BY_NAME[table].load_row(json.loads(data))
    todos, cases = list(snap.scan(TODO)), list(snap.scan(CASE))
    assert todos and todos == list(decoded.scan(TODO))
    assert cases and cases == [(k, c) for k, c in decoded.scan(CASE) if c.status != "closed"]
    assert all(snap.get(TODO, k) == r for k, r in todos)
    assert all(snap.get(CASE, k) == r for k, r in cases)
    assert snap.get(TODO, "nope") is None and snap.get(CASE, "nope") is None
    today, now = D("2026-03-20"), rig.clock.now()
    policy = Policy(notice_after_days=2, deadline_days=5)
    mine = decide(snap, today, now, rig.ctx.calendar, policy)
    want = decide(decoded, today, now, rig.ctx.calendar, policy)
    assert [(d.event.event_id, d.expected) for d in mine] == [
        (d.event.event_id, d.expected) for d in want
    ]
    assert len(mine) == 5  # three violations owed, two notices due


async def test_a_batch_that_changes_no_decision_is_not_decided_on(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop decides after a batch only if it wrote a table ``decide`` reads (or a record
    failed, or the day changed); otherwise it only checkpoints. A post's submission changes no
    decision; its publication without review owes a violation, decided at that batch's wake."""
    await rig.svc.settle()
    snapshots: list[int] = []
    looked_at: list[int] = []  # the projection's position at each wake the loop handled
    model = rig.svc.model
    take, checkpoint = model.snapshot, rig.svc.checkpoint
    sub = next(s for s in rig.svc.subscriptions if s.projection is rig.svc.projection)

    def counted_snapshot() -> Any:
        snapshots.append(sub.position)
        return take()

    async def counted_checkpoint(*, force: bool = False) -> int:
        looked_at.append(sub.position)
        return await checkpoint(force=force)

    monkeypatch.setattr(model, "snapshot", counted_snapshot)
    monkeypatch.setattr(rig.svc, "checkpoint", counted_checkpoint)

    async def looked_at_end() -> bool:
        end = await rig.evlog.last_sequence()
        return any(p >= end for p in looked_at)

    # Anything settle's own events still wake: handled before counting starts.
    rig.svc._wake.set()
    await wait_until(looked_at_end, 10, "the loop handled the log's end")
    snapshots.clear()
    await rig.fact(
        post_submitted(
            title="规范性文件", body="正文", important_kind="normative_document",
            information_date=D("2026-03-02"), content_digest=A,
        ),
        "P-quiet",
        MAKER,
    )
    await wait_until(looked_at_end, 10, "the loop handled the submission's batch")
    assert snapshots == []
    await rig.fact(
        PostPublished(
            publication_id="pub-quiet", post_id="P-quiet", unit="finance",
            column="normative_documents", url="https://x/pub-quiet",
            online_at=rig.clock.now(), content_digest=A,
        ),
        "pub-quiet",
        CMS,
    )

    async def violation_recorded() -> bool:
        return any(
            e.payload.post_id == "P-quiet" for e in await rig.events("ViolationRecorded")
        )

    await wait_until(violation_recorded, 10, "the violation decided at the publication's wake")
    assert snapshots


async def test_supervision_by_hand_and_finding_confirmed(rig: Rig) -> None:
    office = DEMO.headers("office-supervisor")
    await rig.fact(
        ColumnStale(
            unit="finance",
            column="leaders_activities",
            rule_set="wenan-2018",
            rule="fortnightly",
            rule_kind="periodic",
            due_date=D("2026-03-01"),
            overdue_days=1,
            episode="e1",
        ),
        "finance--leaders_activities",
    )
    await rig.svc.settle()
    bad = await rig.client.post(
        "/supervisions", headers=office, json={"unit": "finance", "column": "statistics"}
    )
    assert bad.status_code == 409
    maker = DEMO.headers("finance-maker")
    forbidden = await rig.client.post(
        "/supervisions", headers=maker, json={"unit": "finance", "column": "leaders_activities"}
    )
    assert forbidden.status_code == 403
    r = await rig.client.post(
        "/supervisions",
        headers=office,
        json={"unit": "finance", "column": "leaders_activities", "working_days": 3},
    )
    assert r.status_code == 201, r.text
    assert r.json()["deadline"] == "2026-03-05"
    await rig.svc.settle()
    again = await rig.client.post(
        "/supervisions", headers=office, json={"unit": "finance", "column": "leaders_activities"}
    )
    assert again.status_code == 409

    rig.clock.set(at(D("2026-03-06")))
    await rig.svc.settle()
    [breach] = await rig.events("ViolationRecorded")
    assert breach.payload.kind == "stale_after_supervision"

    await submit_and_publish(rig, "P2", "pub2")
    await rig.svc.settle()
    bad_finding = await rig.client.post(
        "/findings", headers=office, json={"kind": "typo", "description": "x"}
    )
    assert bad_finding.status_code == 422
    f = await rig.client.post(
        "/findings",
        headers=office,
        json={
            "publication_id": "pub2",
            "kind": "wrong_statistics",
            "description": "数字与统计局不符",
            "evidence": ["https://x/pub2#table1"],
        },
    )
    assert f.status_code == 201, f.text
    fid = f.json()["finding_id"]
    await rig.svc.settle()
    c = await rig.client.post(f"/findings/{fid}/confirmation", headers=office, json={})
    assert c.status_code == 200, c.text
    await rig.svc.settle()
    kinds = sorted(e.payload.kind for e in await rig.events("ViolationRecorded"))
    assert kinds == ["published_without_review", "stale_after_supervision", "wrong_information"]
    r = await rig.client.get("/violations", params={"kind": "wrong_information"}, headers=office)
    assert [x["finding_id"] for x in r.json()] == [fid]


async def gongkai(*args: str) -> tuple[int, str, str]:
    exe = Path(sys.executable).with_name("gongkai")
    proc = await asyncio.create_subprocess_exec(
        str(exe), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_cli_rebuild_equals_live_and_verify_signed_checkpoints(
    rig: Rig, tmp_path: Path
) -> None:
    await submit_and_publish(rig, "P1", "pub1")
    await rig.svc.settle()
    url = rig.ctx.nats_url
    code, out, err = await gongkai(
        "audit",
        "rebuild",
        "--nats-url",
        url,
        "--json",
        "--quiet",
        "--db-url",
        f"sqlite:///{tmp_path / 'rebuilt.db'}",
    )
    assert code == 0, err
    assert json.loads(out)["digest"] == rig.svc.store.digest(rig.svc.projection)

    await rig.svc.checkpoint(force=True)  # a signed checkpoint of the log so far
    code, out, err = await gongkai("audit", "verify", "--nats-url", url)
    assert code == 0, out + err
    assert "1 signed checkpoints" in out and "log verified" in out
    await rig.fact(
        post_submitted(column="other", information_date=D("2026-03-02"), content_digest=A),
        "P9",
        MAKER,
    )
    # After the last checkpoint: each event's own signature.
    code, out, _ = await gongkai("audit", "verify", "--nats-url", url)
    assert code == 0 and "log verified" in out, out
    assert "after the last one checked by signature" in out

    code, out, err = await gongkai("audit", "trail", "P1", "--nats-url", url)
    assert code == 0 and "published" in out and "finance-maker" in out
    code, out, err = await gongkai("audit", "as-of", "2026-03-02", "--nats-url", url, "--json")
    assert code == 0, err
    assert [v["kind"] for v in json.loads(out)["violations"]] == ["published_without_review"]
    code, out, _ = await gongkai("audit", "as-of", "2026-03-01", "--nats-url", url, "--json")
    assert json.loads(out)["violations"] == []
    # A misspelt unit is an error, not an empty record.
    code, out, err = await gongkai(
        "audit", "as-of", "2026-03-02", "--unit", "nosuchunit", "--nats-url", url
    )
    assert code == 1 and "no unit 'nosuchunit'" in err and "violations" not in out
    for fmt in ("json", "csv", "table", "html"):
        code, out, err = await gongkai(
            "audit",
            "report",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-31",
            "--format",
            fmt,
            "--nats-url",
            url,
        )
        assert code == 0, err
        assert "finance" in out
    code, _, err = await gongkai(
        "audit", "report", "--from", "2026-04-01", "--to", "2026-03-01", "--nats-url", url
    )
    assert code == 2 and "--from is after --to" in err
