"""The unit directory: HTTP administration by the county office, the loader, tokens, the demo."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gongkai.eventlog import EventLog
from gongkai.events.contracts.intake import (
    LeadershipDutiesChanged,
    PersonRegistered,
    RoleGranted,
    RoleRevoked,
    TokenIssued,
    UnitRegistered,
)
from gongkai.natsserver import NatsServer
from gongkai.runtime.clock import FixedClock
from gongkai.runtime.host import Host
from gongkai.runtime.service import ServiceContext
from gongkai.runtime.settings import Settings
from gongkai.tokens import token_hash
from gongkai_demo.county import DEMO_ACTOR, UNITS
from gongkai_demo.testing import DEMO, intake_events_after, seed_demo
from gongkai_intake import bootstrap
from gongkai_intake.adapters.directory_log import (
    apply_directory,
    issue_token_change,
    parse_directory,
)
from tests.conftest import PLATFORM_T0, Platform

OFFICE = "office-reader"
GONGKAI = str(Path(sys.executable).parent / "gongkai")


@pytest.fixture
async def intake(platform: Platform) -> Platform:
    await seed_demo(platform.evlog, platform.clock.now(), units=("finance",))
    await platform.settle()
    return platform


@pytest.fixture(scope="module")
async def refusing(module_platform: Platform) -> Platform:
    """One seeded intake for the refusals: each judges "nothing recorded" against the sequence
    it read before its request, and none changes the directory the others are refused by."""
    await seed_demo(module_platform.evlog, module_platform.clock.now(), units=("finance",))
    await module_platform.settle()
    return module_platform


async def call(p: Platform, path: str, body: dict[str, Any], person: str = OFFICE) -> Any:
    return await p.client.post(path, json=body, headers=DEMO.headers(person))


UNIT = {
    "code": "audit",
    "name": "文河县审计局",
    "kind": "department",
    "contact_name": "审计局联络员（演示）",
    "contact_mobile": "19900009999",
}


async def test_office_keeps_the_directory(intake: Platform) -> None:
    before = await intake.evlog.last_sequence()
    r = await call(intake, "/units", UNIT)
    assert (r.status_code, r.json()["changed"]) == (201, True), r.text
    r = await call(intake, "/units", UNIT)  # same details, new key: nothing to record
    assert (r.status_code, r.json()["changed"]) == (200, False)
    r = await call(intake, "/units", {**UNIT, "name": "文河县审计局（更名）"})
    assert (r.status_code, r.json()["changed"]) == (200, True)
    r = await call(intake, "/people", {"person_id": "audit-maker", "name": "审计局承办人（演示）"})
    assert r.status_code == 201, r.text
    r = await call(intake, "/people/audit-maker/roles", {"unit": "audit", "role": "maker"})
    assert (r.status_code, r.json()["changed"]) == (200, True), r.text
    r = await call(intake, "/people/audit-maker/roles", {"unit": "audit", "role": "maker"})
    assert r.json()["changed"] is False
    recorded = await intake_events_after(intake.evlog, before)
    assert [type(e.payload) for e in recorded] == [
        UnitRegistered,
        UnitRegistered,
        PersonRegistered,
        RoleGranted,
    ]
    assert all((e.actor.person, e.actor.role) == (OFFICE, "office") for e in recorded)

    # A token from the operator's command, then the new maker can submit for the new unit.
    await issue_token_change(
        intake.evlog,
        "audit-maker",
        token_hash("gk_test-audit-maker"),
        "aker",
        actor=DEMO_ACTOR,
        now=intake.clock.now(),
        today=PLATFORM_T0.date(),
        command_id="test-token-audit",
    )
    await intake.settle()
    me = await intake.client.get("/me", headers={"Authorization": "Bearer gk_test-audit-maker"})
    assert me.json()["roles"] == [{"unit": "audit", "role": "maker"}]
    r = await intake.client.post(
        "/posts",
        json={
            "unit": "audit",
            "column": "other_documents",
            "title": "审计公告",
            "body": "正文",
            "information_date": "2026-03-01",
        },
        headers={"Authorization": "Bearer gk_test-audit-maker", "Idempotency-Key": "a1"},
    )
    assert r.status_code == 201, r.text

    r = await call(
        intake, "/people/audit-maker/roles/revocation", {"unit": "audit", "role": "maker"}
    )
    assert r.status_code == 200
    *_, last = await intake_events_after(intake.evlog, before)
    assert isinstance(last.payload, RoleRevoked)
    await intake.settle()
    r = await intake.client.post(
        "/posts",
        json={
            "unit": "audit",
            "column": "other_documents",
            "title": "审计公告二",
            "body": "正文",
            "information_date": "2026-03-01",
        },
        headers={"Authorization": "Bearer gk_test-audit-maker", "Idempotency-Key": "a2"},
    )
    assert r.status_code == 403
    units = await intake.client.get("/units", headers=DEMO.headers("finance-maker"))
    assert "audit" in [u["code"] for u in units.json()]


INVALID = [
    pytest.param("/units", UNIT, "finance-leader", 403, None, id="not-office"),
    pytest.param(
        "/units",
        {**UNIT, "contact_mobile": "0311-1234567"},
        OFFICE,
        422,
        "contact_mobile",
        id="landline-contact",
    ),
    pytest.param("/units", {**UNIT, "kind": "ministry"}, OFFICE, 422, "kind", id="unknown-kind"),
    pytest.param("/units", {**UNIT, "code": "au dit"}, OFFICE, 422, "code", id="code-not-a-token"),
    pytest.param("/units", {**UNIT, "name": " "}, OFFICE, 422, "name", id="blank-name"),
    pytest.param(
        "/people",
        {"person_id": "x", "name": "某人"},
        "finance-maker",
        403,
        None,
        id="person-not-office",
    ),
    pytest.param(
        "/people/finance-maker/roles",
        {"unit": "nowhere", "role": "staff"},
        OFFICE,
        422,
        "unit",
        id="role-in-unknown-unit",
    ),
    pytest.param(
        "/people/nobody/roles",
        {"unit": "finance", "role": "staff"},
        OFFICE,
        404,
        "person_id",
        id="role-for-unknown-person",
    ),
    pytest.param(
        "/people/finance-maker/roles",
        {"unit": "finance", "role": "boss"},
        OFFICE,
        422,
        "role",
        id="unknown-role",
    ),
    pytest.param(
        "/people/finance-maker/roles/revocation",
        {"unit": "finance", "role": "leader"},
        OFFICE,
        409,
        "role",
        id="revoke-role-not-held",
    ),
    pytest.param(
        "/units/finance/leadership-changes",
        {"changed_on": "2026-03-09", "summary": "x"},
        "finance-leader",
        422,
        "changed_on",
        id="leadership-change-in-future",
    ),
    pytest.param(
        "/units/finance/leadership-changes",
        {"changed_on": "2026-02-20", "summary": "新任局长，身份证11010519491231002X"},
        "finance-leader",
        422,
        "summary",
        id="personal-data-in-summary",
    ),
    pytest.param(
        "/units/finance/leadership-changes",
        {"changed_on": "2026-02-20", "summary": "调整"},
        "finance-secrecy",
        403,
        "unit",
        id="leadership-change-by-secrecy-officer",
    ),
    pytest.param(
        "/units/nowhere/leadership-changes",
        {"changed_on": "2026-02-20", "summary": "调整"},
        OFFICE,
        404,
        "unit",
        id="leadership-change-unknown-unit",
    ),
]


@pytest.mark.parametrize(("path", "body", "person", "status", "field"), INVALID)
async def test_invalid_directory_commands_record_nothing(
    refusing: Platform,
    path: str,
    body: dict[str, Any],
    person: str,
    status: int,
    field: str | None,
) -> None:
    before = await refusing.evlog.last_sequence()
    r = await call(refusing, path, body, person)
    assert r.status_code == status, r.text
    assert r.json().get("field") == field
    assert await intake_events_after(refusing.evlog, before) == []


async def test_leadership_change_is_recorded(intake: Platform) -> None:
    r = await call(
        intake,
        "/units/finance/leadership-changes",
        {"changed_on": "2026-02-26", "summary": "副局长分工调整：分管预算股、国库股"},
        "finance-leader",
    )
    assert r.status_code == 200, r.text
    history, _ = await intake.evlog.load("unit", "finance")
    p = history[-1].envelope.payload
    assert isinstance(p, LeadershipDutiesChanged)
    assert (p.unit, str(p.changed_on)) == ("finance", "2026-02-26")
    assert history[-1].envelope.actor.role == "leader"


# ---- the loader, the demo and the operator's commands --------------------------------------


async def test_demo_directory_loads_once(evlog: EventLog) -> None:
    first = await seed_demo(evlog, PLATFORM_T0)
    assert len(UNITS) >= 20
    units = [u for u in DEMO.spec.units]
    assert {u.kind for u in units} == {"county_office", "department", "township", "committee"}
    assert first.events == len(units) + sum(2 + len(p.roles) for p in DEMO.spec.people)
    last = await evlog.last_sequence()
    again = await seed_demo(evlog, PLATFORM_T0)
    assert again.events == 0
    assert await evlog.last_sequence() == last
    tokens = [
        rec.envelope.payload
        async for rec in evlog.replay()
        if isinstance(rec.envelope.payload, TokenIssued)
    ]
    # Only hashes are recorded, never the tokens.
    assert {t.token_sha256 for t in tokens} == {token_hash(t) for t in DEMO.tokens.values()}
    raw = b"".join([msg.data async for msg in evlog.raw_replay()])
    assert not any(t.encode() in raw for t in DEMO.tokens.values())


async def test_loader_records_only_what_changed(evlog: EventLog) -> None:
    roles = [{"unit": "audit", "role": "maker"}]
    doc = {
        "units": [dict(UNIT)],
        "people": [{"id": "audit-maker", "name": "审计局承办人（演示）", "roles": roles}],
    }
    at = datetime(2026, 3, 2, tzinfo=UTC)
    assert (
        await apply_directory(
            evlog, parse_directory(doc), actor=DEMO_ACTOR, now=at, today=at.date()
        )
    ).events == 3
    roles.append({"unit": "audit", "role": "staff"})
    report = await apply_directory(
        evlog, parse_directory(doc), actor=DEMO_ACTOR, now=at, today=at.date()
    )
    assert (report.events, report.aggregates) == (1, ("person/audit-maker",))


async def test_the_demo_loads_before_intake_starts_when_asked(
    nats_server: NatsServer, evlog: EventLog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(data_dir=tmp_path, demo=True)
    ctx = ServiceContext(settings=settings, clock=FixedClock(PLATFORM_T0), nats_url=nats_server.url)
    host = Host(settings, clock=ctx.clock)
    for _ in range(2):  # a restart loads nothing new
        svc = bootstrap.build(ctx)
        # What `gongkai up --demo` does with its services built, before it starts them: the
        # gongkai.demo entry points.
        host.services = [svc]
        await host.load_demo()
        await svc.start()
        await svc.wait_caught_up()
        await svc.stop()
    out, err = capsys.readouterr()
    assert out.count(DEMO.tokens["finance-maker"]) == 2
    assert DEMO.tokens["finance-maker"] not in err  # the log goes to stderr; tokens never do
    assert "demo_directory_loaded" in out + err
    registered = [
        rec async for rec in evlog.replay() if isinstance(rec.envelope.payload, UnitRegistered)
    ]
    assert len(registered) == len(UNITS)


def gongkai(*args: str, url: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GONGKAI_NATS_URL": url}
    return subprocess.run(
        [GONGKAI, *args], capture_output=True, text=True, timeout=60, env=env, input=stdin
    )


async def test_people_token_command(nats_server: NatsServer, evlog: EventLog) -> None:
    await seed_demo(evlog, PLATFORM_T0, units=("finance",))
    done = gongkai("people", "token", "finance-staff", url=nats_server.url)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert token.startswith("gk_") and token not in done.stderr
    history, _ = await evlog.load("person", "finance-staff")
    issued = history[-1].envelope.payload
    assert isinstance(issued, TokenIssued)
    assert issued.token_sha256 == token_hash(token)
    assert issued.token_hint == token[-4:]
    assert history[-1].envelope.actor.role == "operator"

    before = await evlog.last_sequence()
    unknown = gongkai("people", "token", "nobody", url=nats_server.url)
    assert unknown.returncode == 1
    assert "Unknown person" in unknown.stderr and unknown.stdout == ""
    bad_url = gongkai("people", "token", "finance-staff", url="nats://127.0.0.1:9")
    assert bad_url.returncode == 1 and "cannot connect to NATS" in bad_url.stderr
    assert await evlog.last_sequence() == before


async def test_directory_load_command(
    nats_server: NatsServer, evlog: EventLog, tmp_path: Path
) -> None:
    path = tmp_path / "directory.yaml"
    path.write_text(
        "units:\n"
        "  - {code: audit, name: 文河县审计局, kind: department,\n"
        "     contact_name: 联络员, contact_mobile: '19900009999'}\n"
        "people:\n"
        "  - id: audit-leader\n"
        "    name: 审计局主要负责人（演示）\n"
        "    roles: [{unit: audit, role: leader}]\n",
        encoding="utf-8",
    )
    first = gongkai("directory", "load", str(path), url=nats_server.url)
    assert first.returncode == 0, first.stderr
    assert "3 events recorded" in first.stdout
    again = gongkai("directory", "load", str(path), url=nats_server.url)
    assert "0 events recorded (up to date)" in again.stdout

    before = await evlog.last_sequence()
    path.write_text("units:\n  - {code: audit, name: x, kind: ministry}\n", encoding="utf-8")
    bad = gongkai("directory", "load", str(path), url=nats_server.url)
    assert bad.returncode == 2 and "units[0].contact_name" in bad.stderr
    path.write_text(
        "units:\n  - {code: audit, name: x, kind: ministry, contact_name: y,"
        " contact_mobile: '19900009999'}\n",
        encoding="utf-8",
    )
    bad = gongkai("directory", "load", str(path), url=nats_server.url)
    assert bad.returncode == 1 and "Unknown unit kind (kind)" in bad.stderr
    assert await evlog.last_sequence() == before


# Only intake: the other services would react to every seeded unit and slow each test.
pytestmark = pytest.mark.services("intake")
