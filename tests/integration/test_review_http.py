"""The review chain through HTTP on a real nats-server, with every service running in-process.

The directory and the posts are recorded here as the facts intake would record (intake's own
routes are tested with intake); everything the review service does goes through its routes.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
import pytest

from gongkai import subjects
from gongkai.events import Actor, digest, new_event
from gongkai.events.contracts.intake import (
    PersonRegistered,
    PostRevised,
    PostWithdrawn,
    RoleGranted,
    Screening,
    TokenIssued,
    UnitRegistered,
)
from gongkai.tokens import new_token, token_hash
from gongkai_review.service import ReviewConfig
from tests.builders import post_submitted
from tests.conftest import Platform
from tests.direct import post_both_ways
from tests.unit.test_review_form import read
from tests.waiting import consumers_idle, wait_until

FINANCE, WATER = "finance", "water"
#: The directory is set up as the operator's tools do (unit ``system``, intake's key).
SETUP = Actor(person="operator:test", role="operator", unit="system")

PEOPLE: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "maker": ("王承办", [(FINANCE, "maker")]),
    "staff": ("李审查", [(FINANCE, "staff")]),
    "secrecy": ("赵保密", [(FINANCE, "secrecy")]),
    "leader": ("张主任", [(FINANCE, "leader")]),
    "boss": ("陈局长", [(FINANCE, "maker"), (FINANCE, "leader")]),
    "outsider": ("周局长", [(WATER, "leader"), (WATER, "staff")]),
    "office": ("刘督办", [("county", "office")]),
}


@dataclass
class World:
    platform: Platform
    tokens: dict[str, str] = field(default_factory=dict)
    counter: int = 0

    @property
    def client(self) -> httpx.AsyncClient:
        return self.platform.client

    def auth(self, person: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[person]}"}

    async def person(self, pid: str, name: str, roles: list[tuple[str, str]]) -> None:
        token = new_token()
        self.tokens[pid] = token
        payloads: list[Any] = [PersonRegistered(person_id=pid, name=name)]
        payloads += [RoleGranted(person_id=pid, unit=u, role=r) for u, r in roles]  # type: ignore[arg-type]
        payloads.append(
            TokenIssued(person_id=pid, token_sha256=token_hash(token), token_hint=token[:8])
        )
        await self.record(payloads, pid, SETUP)

    async def record(self, payloads: list[Any], aggregate: str, actor: Actor) -> None:
        self.counter += 1
        events = [
            new_event(
                p,
                aggregate_id=aggregate,
                actor=actor,
                command_id=f"seed-{aggregate}-{self.counter}",
                index=i,
                recorded_at=self.platform.clock.now(),
            )
            for i, p in enumerate(payloads)
        ]
        await self.platform.evlog.append(events)

    async def submit(
        self,
        post_id: str,
        *,
        kind: str | None = None,
        flagged: bool = False,
        maker: str = "maker",
        title: str = "关于印发《县级财政专项资金管理办法》的通知",
    ) -> str:
        body = f"{title} 正文"
        content = digest({"title": title, "body": body, "attachments": []})
        payload = post_submitted(
            unit=FINANCE,
            title=title,
            body=body,
            important_kind=kind,
            content_digest=content,
            screening=Screening(needs_secrecy_review=flagged),
        )
        await self.record([payload], post_id, Actor(person=maker, role="maker", unit=FINANCE))
        return content

    async def revise(self, post_id: str, version: int, maker: str = "maker") -> str:
        title, body = f"修订稿第{version}版", f"第{version}版正文"
        content = digest({"title": title, "body": body, "attachments": []})
        payload = PostRevised(
            unit=FINANCE,
            title=title,
            body=body,
            information_date=date(2026, 3, 1),
            content_version=version,
            content_digest=content,
        )
        await self.record([payload], post_id, Actor(person=maker, role="maker", unit=FINANCE))
        return content

    async def sign(
        self,
        person: str,
        post_id: str,
        stage: str,
        content: str,
        decision: str = "agree",
        opinion: str | None = None,
        key: str | None = None,
    ) -> httpx.Response:
        headers = self.auth(person)
        if key:
            headers["Idempotency-Key"] = key
        body: dict[str, Any] = {"stage": stage, "decision": decision, "content_digest": content}
        if opinion is not None:
            body["opinion"] = opinion
        return await self.client.post(f"/posts/{post_id}/signatures", json=body, headers=headers)

    async def review(self, post_id: str, person: str = "maker") -> dict[str, Any]:
        r = await self.client.get(f"/posts/{post_id}/review", headers=self.auth(person))
        assert r.status_code == 200, r.text
        return r.json()

    async def review_events(self, post_id: str) -> list[Any]:
        history, _ = await self.platform.evlog.load("review", post_id)
        return [h.envelope for h in history]


async def make_world(platform: Platform) -> World:
    w = World(platform)
    actor = SETUP
    for code, name in ((FINANCE, "县财政局"), (WATER, "县水务局")):
        unit = UnitRegistered(
            code=code,
            name=name,
            kind="department",
            contact_name="联系人",
            contact_mobile="13800000000",
        )
        await w.record([unit], code, actor)
    for pid, (name, roles) in PEOPLE.items():
        await w.person(pid, name, roles)
    await platform.settle()
    return w


@pytest.fixture(scope="module")
async def world(module_platform: Platform) -> World:
    """One directory and platform for the file's tests that only add posts of their own ids
    and judge those posts (their events, their review, their form)."""
    return await make_world(module_platform)


@pytest.fixture
async def own_world(platform: Platform) -> World:
    """A world of the test's own, for a test that moves the clock, changes the unit's review
    policy or the service's configuration, or reads a queue that other tests' posts are in."""
    return await make_world(platform)


def problem(r: httpx.Response, status: int, field: str | None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body.get("field") == field, body
    return body


async def test_normative_document_approved_and_its_review_form(own_world: World) -> None:
    world = own_world
    content = await world.submit("P-norm", kind="normative_document")
    review = await world.review("P-norm")
    assert (review["status"], review["awaiting"]) == ("in_review", "staff")
    assert review["required_stages"] == ["staff", "leader"]

    early = await world.sign("leader", "P-norm", "leader", content)
    assert "waiting for the staff opinion" in problem(early, 409, "stage")["detail"]

    r = await world.sign("staff", "P-norm", "staff", content, opinion="数据已核对,同意公开")
    assert r.status_code == 201, r.text
    assert r.json()["concluded"] is None and r.json()["review"]["awaiting"] == "leader"
    world.platform.clock.advance(hours=26)
    r = await world.sign("leader", "P-norm", "leader", content, opinion="同意")
    assert r.status_code == 201, r.text
    assert r.json()["concluded"] == "approved"

    events = await world.review_events("P-norm")
    assert [e.type for e in events] == ["ReviewSigned", "ReviewSigned", "ReviewConcluded"]
    done = events[-1].payload
    assert done.outcome == "approved" and done.content_digest == content
    assert [(s.stage, s.signer.person) for s in done.signatures] == [
        ("staff", "staff"),
        ("leader", "leader"),
    ]
    review = await world.review("P-norm", person="office")
    assert review["status"] == "approved"
    assert review["approved"] == {"chain": 1, "content_digest": content, "content_version": 1}

    await world.platform.settle()
    r = await world.client.get("/posts/P-norm/review-form", headers=world.auth("office"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    cells = read(r.text)
    assert cells["unit"]["text"] == "县财政局"
    assert cells["staff-opinion"]["data-decision"] == "agree"
    assert "李审查" in cells["staff-opinion"]["text"]
    assert "数据已核对,同意公开" in cells["staff-opinion"]["text"]
    assert cells["leader-opinion"]["data-decision"] == "agree"
    assert "张主任" in cells["leader-opinion"]["text"]
    assert cells["handler"]["text"] == "王承办"
    assert cells["form-date"]["text"] == "2026年3月3日", "the day the chain concluded"
    _, last = await world.platform.evlog.load("review", "P-norm")
    assert cells["serial"]["text"] == f"{last:06d}", "serial = log sequence of the conclusion"
    for e in events:
        assert e.event_id in r.text, "the form lists the events it was rendered from"


async def test_rejection_then_resubmission_starts_a_new_chain(world: World) -> None:
    v1 = await world.submit("P-rej")
    missing = await world.sign("leader", "P-rej", "leader", v1, "disagree")
    problem(missing, 422, "opinion")
    assert await world.review_events("P-rej") == [], "a refusal records nothing"

    r = await world.sign("leader", "P-rej", "leader", v1, "disagree", "附件数据与正文不符")
    assert r.status_code == 201 and r.json()["concluded"] == "rejected"
    again = await world.sign("leader", "P-rej", "leader", v1)
    assert "revise" in problem(again, 409, "stage")["detail"]

    v2 = await world.revise("P-rej", 2)
    review = await world.review("P-rej")
    assert (review["status"], review["current_chain"], review["awaiting"]) == (
        "in_review",
        2,
        "leader",
    )
    stale = await world.sign("leader", "P-rej", "leader", v1)
    problem(stale, 409, "content_digest")
    r = await world.sign("leader", "P-rej", "leader", v2)
    assert r.status_code == 201 and r.json()["concluded"] == "approved"
    assert r.json()["chain"] == 2
    outcomes = [
        (e.payload.chain, e.payload.outcome)
        for e in await world.review_events("P-rej")
        if e.type == "ReviewConcluded"
    ]
    assert outcomes == [(1, "rejected"), (2, "approved")]


async def wait_for_void(world: World, post_id: str, chain: int) -> Any:
    found: list[Any] = []

    async def voided() -> bool:
        found[:] = [
            e
            for e in await world.review_events(post_id)
            if e.type == "ReviewConcluded" and e.payload.outcome == "voided"
        ]
        return bool(found)

    await wait_until(voided, 10, "the revision voids the chain")
    assert found[0].payload.chain == chain
    return found[0]


async def test_revision_after_approval_voids_the_chain(world: World) -> None:
    v1 = await world.submit("P-void")
    assert (await world.sign("leader", "P-void", "leader", v1)).status_code == 201
    v2 = await world.revise("P-void", 2)
    voided = await wait_for_void(world, "P-void", 1)
    assert voided.payload.content_digest == v1
    assert "version 2" in (voided.payload.reason or "")
    assert [s.stage for s in voided.payload.signatures] == ["leader"]
    review = await world.review("P-void")
    assert review["status"] == "in_review" and review["approved"] is None
    assert [c["outcome"] for c in review["chains"]] == ["voided"]
    assert review["current_chain"] == 2 and review["content_digest"] == v2
    # Redelivery or a restart of the reaction records nothing more: once every reaction has
    # handled and acknowledged everything, there are still two conclusions.
    await world.platform.settle()
    await wait_until(
        lambda: consumers_idle(world.platform.evlog.js, subjects.STREAM), 10, "reactions idle"
    )
    assert sum(e.type == "ReviewConcluded" for e in await world.review_events("P-void")) == 2


async def test_withdrawal_voids_an_open_chain(world: World) -> None:
    v1 = await world.submit("P-wd", kind="announcement")
    assert (await world.sign("staff", "P-wd", "staff", v1)).status_code == 201
    actor = Actor(person="maker", role="maker", unit=FINANCE)
    await world.record([PostWithdrawn(unit=FINANCE, reason="内容已过时")], "P-wd", actor)
    voided = await wait_for_void(world, "P-wd", 1)
    assert "withdrawn" in (voided.payload.reason or "")
    problem(await world.sign("leader", "P-wd", "leader", v1), 409, "id")
    assert (await world.review("P-wd"))["status"] == "withdrawn"


async def test_self_approval_is_refused(world: World) -> None:
    content = await world.submit("P-self", maker="boss")
    r = await world.sign("boss", "P-self", "leader", content)
    assert "self-approval" in problem(r, 403, "stage")["detail"]
    assert await world.review_events("P-self") == []
    assert (await world.sign("leader", "P-self", "leader", content)).status_code == 201


async def test_signer_from_another_unit_is_refused(world: World) -> None:
    content = await world.submit("P-other")
    r = await world.sign("outsider", "P-other", "leader", content)
    body = problem(r, 403, "id")
    assert "finance" not in r.text and content not in r.text, "a refusal names nothing of the post"
    wrong = await world.sign("outsider", "P-other", "leader", "f" * 64)
    assert wrong.json() == body, "the unit is checked before the digest: no 409 with the digest"
    r = await world.sign("maker", "P-other", "leader", content)
    problem(r, 403, "stage")
    assert await world.review_events("P-other") == []


async def test_twenty_concurrent_leader_signatures_record_exactly_one(world: World) -> None:
    leaders = [f"leader{i:02d}" for i in range(20)]
    for pid in leaders:
        await world.person(pid, f"副职{pid}", [(FINANCE, "leader")])
    await world.platform.settle()
    content = await world.submit("P-race")
    answers = await asyncio.gather(
        *(world.sign(pid, "P-race", "leader", content, opinion=f"{pid} 同意") for pid in leaders)
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [201] + [409] * 19, [a.text for a in answers if a.status_code != 409]
    for a in answers:
        if a.status_code == 409:
            assert a.headers["content-type"].startswith("application/problem+json")
    events = await world.review_events("P-race")
    assert [e.type for e in events] == ["ReviewSigned", "ReviewConcluded"]
    winner = next(a for a in answers if a.status_code == 201).json()
    assert events[0].payload.signer.person == winner["signature"]["signer"]["person"]


async def test_bad_input_names_the_field_and_records_nothing(world: World) -> None:
    content = await world.submit("P-bad")
    cases = [
        ({"stage": "approver", "decision": "agree", "content_digest": content}, 422, "stage"),
        ({"stage": "leader", "decision": "maybe", "content_digest": content}, 422, "decision"),
        ({"stage": "leader", "decision": "agree", "content_digest": "abc"}, 422, "content_digest"),
        ({"stage": "leader", "decision": "agree"}, 422, "content_digest"),
        ({"stage": "leader", "decision": "disagree", "content_digest": content}, 422, "opinion"),
        ({"stage": "secrecy", "decision": "agree", "content_digest": content}, 403, "stage"),
        (
            {"stage": "leader", "decision": "agree", "content_digest": "f" * 64},
            409,
            "content_digest",
        ),
    ]
    for body, status, fld in cases:
        r = await world.client.post(
            "/posts/P-bad/signatures", json=body, headers=world.auth("leader")
        )
        problem(r, status, fld)
    unknown = await world.client.post(
        "/posts/P-none/signatures",
        json={"stage": "leader", "decision": "agree", "content_digest": content},
        headers=world.auth("leader"),
    )
    problem(unknown, 404, "id")
    problem(await world.client.get("/posts/P-none/review", headers=world.auth("leader")), 404, "id")
    bad = await world.client.get("/posts/bad.id/review", headers=world.auth("leader"))
    problem(bad, 422, "post_id")  # not an id at all: refused before any lookup
    anonymous = await world.client.post(
        "/posts/P-bad/signatures", json={"stage": "leader", "decision": "agree"}
    )
    problem(anonymous, 401, "Authorization")
    assert await world.review_events("P-bad") == []


async def test_a_retried_signature_is_recorded_once(world: World) -> None:
    content = await world.submit("P-idem")
    first = await world.sign("leader", "P-idem", "leader", content, key="k-1")
    second = await world.sign("leader", "P-idem", "leader", content, key="k-1")
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert len(await world.review_events("P-idem")) == 2
    reused = await world.sign("leader", "P-idem", "leader", content, "disagree", "x", key="k-1")
    problem(reused, 422, "Idempotency-Key")


async def test_a_signature_is_one_whichever_handler_takes_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A JSON object sent as ``application/json`` takes the route's direct way (no FastAPI
    dependency solving); with a charset in its content type it goes through FastAPI's own
    handler. Both are the same command: the second is the first's replay, the same answer; a
    body the model refuses goes to FastAPI, whose problem names the field."""
    content = await world.submit("P-ways")
    headers = {**world.auth("leader"), "Idempotency-Key": "one-signature-two-handlers"}
    data = json.dumps({"stage": "leader", "decision": "agree", "content_digest": content})
    direct, _, solved = await post_both_ways(
        world.client, "/posts/P-ways/signatures", data, headers, monkeypatch
    )
    assert direct.headers["Location"] == "/posts/P-ways/review"
    assert len(await world.review_events("P-ways")) == 2  # the signature and the approval
    refused = await world.client.post(
        "/posts/P-ways/signatures",
        content=json.dumps({"stage": "nobody", "decision": "agree", "content_digest": content}),
        headers={**world.auth("leader"), "Content-Type": "application/json"},
    )
    problem(refused, 422, "stage")
    assert len(solved) == 2


async def test_work_queue_counts_working_days_and_marks_overdue(own_world: World) -> None:
    world = own_world
    review_svc = world.platform.services["review"]
    review_svc.config = ReviewConfig(overdue_after_working_days=2)  # type: ignore[attr-defined]
    norm = await world.submit("P-q1", kind="normative_document")  # Monday 2026-03-02
    await world.submit("P-q2", maker="boss")
    await world.platform.settle()

    async def queue(person: str, viewer: str | None = None) -> dict[str, Any]:
        r = await world.client.get(f"/people/{person}/queue", headers=world.auth(viewer or person))
        assert r.status_code == 200, r.text
        return r.json()

    staff = await queue("staff")
    assert [(i["post_id"], i["stage"]) for i in staff["items"]] == [("P-q1", "staff")]
    assert staff["items"][0]["working_days_waited"] == 0
    assert staff["overdue_after_working_days"] == 2
    leader = await queue("leader")
    assert [i["post_id"] for i in leader["items"]] == ["P-q2"], "P-q1 waits for staff first"
    assert [i["post_id"] for i in (await queue("boss"))["items"]] == [], "not one's own post"

    world.platform.clock.advance(days=4)  # Friday 2026-03-06: four working days later
    staff = await queue("staff", viewer="office")
    item = staff["items"][0]
    assert (item["working_days_waited"], item["overdue"], item["provisional"]) == (4, True, False)
    problem(await world.client.get("/people/staff/queue", headers=world.auth("leader")), 403, "id")
    problem(await world.client.get("/people/ghost/queue", headers=world.auth("office")), 404, "id")

    assert (await world.sign("staff", "P-q1", "staff", norm)).status_code == 201
    await world.platform.settle()
    assert (await queue("staff"))["items"] == []
    items = (await queue("leader"))["items"]
    assert [(i["post_id"], i["working_days_waited"], i["overdue"]) for i in items] == [
        ("P-q2", 4, True),
        ("P-q1", 0, False),
    ]
    world.platform.clock.advance(days=3)  # Monday 2026-03-09: the weekend does not count
    items = (await queue("leader"))["items"]
    assert [(i["post_id"], i["working_days_waited"]) for i in items] == [("P-q2", 5), ("P-q1", 1)]


async def test_unit_policy_requires_the_staff_opinion_for_every_post(own_world: World) -> None:
    world = own_world
    r = await world.client.put(
        f"/units/{FINANCE}/review-policy",
        json={"staff_stage": "always"},
        headers=world.auth("staff"),
    )
    problem(r, 403, "unit")
    r = await world.client.put(
        f"/units/{FINANCE}/review-policy",
        json={"staff_stage": "sometimes"},
        headers=world.auth("leader"),
    )
    problem(r, 422, "staff_stage")
    r = await world.client.put(
        f"/units/{FINANCE}/review-policy",
        json={"staff_stage": "always"},
        headers=world.auth("leader"),
    )
    assert r.status_code == 200 and r.json()["changed"] is True
    same = await world.client.put(
        f"/units/{FINANCE}/review-policy",
        json={"staff_stage": "always"},
        headers=world.auth("leader"),
    )
    assert same.json()["changed"] is False
    got = await world.client.get(f"/units/{FINANCE}/review-policy", headers=world.auth("maker"))
    assert got.json() == {"unit": FINANCE, "staff_stage": "always"}

    content = await world.submit("P-pol")
    assert (await world.review("P-pol"))["required_stages"] == ["staff", "leader"]
    problem(await world.sign("leader", "P-pol", "leader", content), 409, "stage")
    assert (await world.sign("staff", "P-pol", "staff", content)).status_code == 201
    assert (await world.sign("leader", "P-pol", "leader", content)).status_code == 201


async def test_secrecy_review_when_screening_flags_the_content(world: World) -> None:
    content = await world.submit("P-sec", kind="announcement", flagged=True)
    assert (await world.review("P-sec"))["required_stages"] == ["staff", "secrecy", "leader"]
    assert (await world.sign("staff", "P-sec", "staff", content)).status_code == 201
    problem(await world.sign("leader", "P-sec", "leader", content), 409, "stage")
    assert (
        await world.sign("secrecy", "P-sec", "secrecy", content, opinion="可以公开")
    ).status_code == 201
    assert (await world.sign("leader", "P-sec", "leader", content)).status_code == 201
    form = await world.client.get("/posts/P-sec/review-form", headers=world.auth("maker"))
    cells = read(form.text)
    assert cells["secrecy-opinion"]["data-decision"] == "agree"
    assert "赵保密" in cells["secrecy-opinion"]["text"]
    problem(
        await world.client.get("/posts/P-sec/review-form?chain=5", headers=world.auth("maker")),
        404,
        "chain",
    )
