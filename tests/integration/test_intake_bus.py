"""The same commands on NATS request subjects (core request/reply), against the platform."""

from __future__ import annotations

import json
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from gongkai import subjects
from gongkai.events.contracts.intake import PostRevised, PostSubmitted
from gongkai_demo.testing import DEMO, intake_events_after, seed_demo
from tests.conftest import Platform

BODY = {
    "unit": "finance",
    "column": "normative_documents",
    "title": "关于印发《文河县政府采购管理办法》的通知",
    "body": "各有关单位：现将办法印发给你们。联系电话13800138000。",
    "information_date": "2026-02-27",
    "important_kind": "normative_document",
    "origin": "produced",
    "channel": "website",
}


@pytest.fixture(scope="module")
async def seeded(module_platform: Platform) -> Platform:
    """One seeded intake for the file: each test judges what it recorded against the sequence
    it read before its requests, by its own post ids and keys, and none changes the directory
    the others submit and are refused by."""
    await seed_demo(
        module_platform.evlog, module_platform.clock.now(), units=("finance", "education")
    )
    await module_platform.settle()
    return module_platform


@pytest.fixture
async def bus(seeded: Platform) -> Any:
    nc = await nats.connect(seeded.ctx.nats_url)
    try:
        yield seeded, nc
    finally:
        await nc.close()


async def request(
    nc: Client, command: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    msg = await nc.request(
        subjects.command_subject("intake", command), data, headers=headers or {}, timeout=10
    )
    assert msg.headers is not None
    return int(msg.headers["Gk-Status"]), json.loads(msg.data)


async def test_submit_and_revise_on_the_bus(bus: Any) -> None:
    platform, nc = bus
    before = await platform.evlog.last_sequence()
    status, answer = await request(nc, "submit_post", BODY, DEMO.headers("finance-maker"))
    assert status == 201, answer
    assert answer["needs_secrecy_review"] is True
    assert answer["personal_data"][0]["masked"] == "138****8000"
    status, revised = await request(
        nc,
        "revise_post",
        {
            "post_id": answer["post_id"],
            "title": BODY["title"],
            "body": "新正文",
            "information_date": "2026-03-01",
        },
        DEMO.headers("finance-maker"),
    )
    assert status == 201, revised
    assert revised["content_version"] == 2
    recorded = await intake_events_after(platform.evlog, before)
    assert [type(e.payload) for e in recorded] == [PostSubmitted, PostRevised]
    assert recorded[0].event_id == answer["event_id"]
    # What the bus recorded, HTTP reads back.
    view = await platform.client.get(
        f"/posts/{answer['post_id']}", headers=DEMO.headers("finance-maker")
    )
    assert view.json()["content_version"] == 2


async def test_one_key_is_one_command_on_either_path(bus: Any) -> None:
    platform, nc = bus
    before = await platform.evlog.last_sequence()
    headers = DEMO.headers("finance-maker", key="both-paths")
    status, on_bus = await request(nc, "submit_post", BODY, headers)
    assert status == 201
    r = await platform.client.post("/posts", json=BODY, headers=headers)
    assert r.status_code == 201
    assert r.json() == on_bus
    assert r.headers["Idempotent-Replayed"] == "true"
    status, again = await request(nc, "submit_post", BODY, headers)
    assert (status, again) == (201, on_bus)
    assert len(await intake_events_after(platform.evlog, before)) == 1


REFUSED = [
    pytest.param(
        "submit_post", BODY, {"Idempotency-Key": "k"}, 401, "Authorization", id="anonymous"
    ),
    pytest.param(
        "submit_post",
        BODY,
        {"Authorization": "Bearer gk_nope", "Idempotency-Key": "k"},
        401,
        "Authorization",
        id="unknown-token",
    ),
    pytest.param("submit_post", b"{not json", None, 400, "body", id="not-json"),
    pytest.param("submit_post", [1, 2], None, 422, "body", id="not-an-object"),
    pytest.param("submit_post", {**BODY, "title": ""}, None, 422, "title", id="blank-title"),
    pytest.param(
        "submit_post", {**BODY, "column": "nope"}, None, 422, "column", id="unknown-column"
    ),
    pytest.param("submit_post", {**BODY, "body": "机密★10年"}, None, 422, "body", id="classified"),
    pytest.param(
        "submit_post",
        {**BODY, "attachments": [{"name": "a", "sha256": "x", "size": 1}]},
        None,
        422,
        "attachments.0.sha256",
        id="bad-attachment",
    ),
    pytest.param(
        "revise_post",
        {"title": "t", "body": "b", "information_date": "2026-03-01"},
        None,
        422,
        "post_id",
        id="revise-without-post-id",
    ),
    pytest.param(
        "revise_post",
        {"post_id": "post-nope", "title": "t", "body": "b", "information_date": "2026-03-01"},
        None,
        404,
        "post_id",
        id="revise-unknown-post",
    ),
    pytest.param(
        "submit_post",
        BODY,
        {"Authorization": f"Bearer {DEMO.tokens['finance-maker']}"},
        400,
        "Idempotency-Key",
        id="no-idempotency-key",
    ),
]


@pytest.mark.parametrize(("command", "body", "headers", "status", "field"), REFUSED)
async def test_refused_on_the_bus_with_a_problem_body(
    bus: Any, command: str, body: Any, headers: dict[str, str] | None, status: int, field: str
) -> None:
    platform, nc = bus
    before = await platform.evlog.last_sequence()
    got, problem = await request(nc, command, body, headers or DEMO.headers("finance-maker"))
    assert (got, problem["status"], problem["field"]) == (status, status, field), problem
    assert problem["instance"] == subjects.command_subject("intake", command)
    assert await intake_events_after(platform.evlog, before) == []


# Only intake: the other services would react to every seeded unit and slow each test.
pytestmark = pytest.mark.services("intake")
