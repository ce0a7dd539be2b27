"""Reads scoped like writes (issue 13, part 4), on the platform with a real nats-server.

A finance post carries a resident ID number in its title. Intake screens it and records where
it is. Then:

* a person of another unit, and a person of the unit whose roles were all revoked, get 403 from
  every route that can carry the post's text (intake's post, review's state, form, queue and
  signature route, accountability's trail, findings and violations), and the refusal names
  neither the title, the ID, the post's unit nor its digest - a wrong digest sent to the
  signature route included, which used to answer 409 with the current digest;
* the unit's maker and the county office read the title with the ID masked;
* the secrecy reviewer, then the principal leader, read it unmasked while the chain awaits
  them, and masked before and after;
* no table of any service's database holds the ID number.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect

from gongkai_demo.county import DEMO, seed_demo
from tests.conftest import PLATFORM_T0, Platform

pytestmark = pytest.mark.services("intake", "review", "accountability")

RAW = "11010519491231002X"  # the textbook example: a valid check character, born 1949
MASKED = "110105********002X"
TITLE = f"关于张三（身份证号{RAW}）困难补助发放情况的公示"
MASKED_TITLE = TITLE.replace(RAW, MASKED)
#: Another unit's leader, and a finance person whose only role was revoked.
STRANGERS = ("education-leader", "finance-staff")


def as_(person: str) -> dict[str, str]:
    return DEMO.headers(person)


def refused(r: httpx.Response, *secrets: str) -> None:
    """403, a problem body, and nothing of the post in it."""
    assert r.status_code == 403, (r.request.method, r.request.url, r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json"), r.text
    for s in (RAW, MASKED, "张三", "困难补助", *secrets):
        assert s not in r.text, f"{r.request.url} revealed {s!r}: {r.text}"


async def get(platform: Platform, path: str, person: str, **params: str) -> httpx.Response:
    return await platform.client.get(path, headers=as_(person), params=params)


async def sign(
    platform: Platform, post_id: str, person: str, stage: str, digest: str
) -> httpx.Response:
    return await platform.client.post(
        f"/posts/{post_id}/signatures",
        json={"stage": stage, "decision": "agree", "content_digest": digest},
        headers=as_(person),
    )


async def title_in_review(platform: Platform, post_id: str, person: str) -> str:
    r = await get(platform, f"/posts/{post_id}/review", person)
    assert r.status_code == 200, r.text
    title: str = r.json()["title"]
    form = await get(platform, f"/posts/{post_id}/review-form", person)
    assert form.status_code == 200, form.text
    assert title in form.text, "the form shows the title the review shows"
    assert (RAW in form.text) == (title == TITLE)
    return title


@pytest.fixture
async def post(platform: Platform) -> dict[str, Any]:
    """The finance post with the ID in its title, submitted through intake; finance-staff's
    only role revoked."""
    joined = PLATFORM_T0 - timedelta(hours=3)
    await seed_demo(platform.evlog, joined, units=["finance", "education"])
    await platform.settle()
    r = await platform.client.post(
        "/people/finance-staff/roles/revocation",
        json={"unit": "finance", "role": "staff"},
        headers=as_("office-reader"),
    )
    assert r.status_code == 200, r.text
    r = await platform.client.post(
        "/posts",
        json={
            "unit": "finance",
            "column": "normative_documents",
            "title": TITLE,
            "body": "经审核，现将补助发放情况公示如下。",
            "origin": "produced",
            "channel": "website",
            "information_date": "2026-03-01",
        },
        headers=as_("finance-maker"),
    )
    assert r.status_code == 201, r.text
    answer = r.json()
    assert RAW not in r.text
    assert answer["needs_secrecy_review"] is True
    assert [(s["kind"], s["field"], s["masked"]) for s in answer["personal_data"]] == [
        ("resident_id", "title", MASKED)
    ]
    await platform.settle()
    return answer  # type: ignore[no-any-return]


async def test_strangers_read_nothing_of_the_post(platform: Platform, post: dict[str, Any]) -> None:
    pid, digest = post["post_id"], post["content_digest"]
    # Something for every read: a finding the office reported and confirmed, so a violation.
    r = await platform.client.post(
        "/findings",
        json={"post_id": pid, "kind": "privacy_leak", "description": "公示标题含个人身份信息"},
        headers=as_("office-reader"),
    )
    assert r.status_code == 201, r.text
    fid = r.json()["finding_id"]
    await platform.settle()
    r = await platform.client.post(
        f"/findings/{fid}/confirmation", json={}, headers=as_("office-supervisor")
    )
    assert r.status_code == 200, r.text
    await platform.settle()
    await platform.services["accountability"].settle()  # type: ignore[attr-defined]
    await platform.settle()
    [violation] = (await get(platform, "/violations", "office-reader", unit="finance")).json()
    vid = violation["violation_id"]

    # The unit's people read all of it.
    for path in (f"/posts/{pid}/trail", f"/findings/{fid}", f"/violations/{vid}"):
        assert (await get(platform, path, "finance-maker")).status_code == 200, path
    assert [f["finding_id"] for f in (await get(platform, "/findings", "finance-leader")).json()]
    mine = await get(platform, "/findings", "finance-maker", unit="finance")
    assert [f["finding_id"] for f in mine.json()] == [fid]

    for who in STRANGERS:
        post_routes = [
            f"/posts/{pid}",  # intake: it always answered 403; now every service does
            f"/posts/{pid}/review",
            f"/posts/{pid}/review-form",
            f"/posts/{pid}/review-form?chain=1",
            f"/posts/{pid}/trail",
            f"/findings/{fid}",
            f"/violations/{vid}",
        ]
        for path in post_routes:
            refused(await platform.client.get(path, headers=as_(who)), digest, "finance")
        refused(await get(platform, "/people/finance-secrecy/queue", who), digest)
        for path in ("/findings", "/violations"):
            refused(await get(platform, path, who, unit="finance"), digest)
        # A wrong digest used to be answered 409 with the current one, before the unit check.
        for stage in ("secrecy", "leader", "staff"):
            refused(await sign(platform, pid, who, stage, "f" * 64), digest, "finance")
            refused(await sign(platform, pid, who, stage, digest), digest, "finance")
    # Unfiltered lists: only one's own units' records; nothing at all without a role.
    other = await get(platform, "/findings", "education-leader")
    assert other.status_code == 200 and other.json() == []
    assert (await get(platform, "/violations", "education-leader")).json() == []
    for path in ("/findings", "/violations"):
        refused(await get(platform, path, "finance-staff"), digest)
    # Unknown ids stay 404, as intake's GET /posts/{id} answers them.
    for path in ("/posts/post-nope/review", "/posts/post-nope/trail", "/findings/F-nope"):
        assert (await get(platform, path, "education-leader")).status_code == 404, path
    # Nothing of theirs was recorded.
    history, _ = await platform.evlog.load("review", pid)
    assert history == []


async def test_the_id_is_masked_but_to_its_reviewers_while_they_review(
    platform: Platform, post: dict[str, Any]
) -> None:
    pid, digest = post["post_id"], post["content_digest"]
    intake_view = await get(platform, f"/posts/{pid}", "finance-maker")
    assert intake_view.status_code == 200 and intake_view.json()["title"] == MASKED_TITLE
    trail = (await get(platform, f"/posts/{pid}/trail", "finance-maker")).json()
    assert trail["title"] == MASKED_TITLE and trail["trail"][0]["title"] == MASKED_TITLE
    for who in ("finance-maker", "office-reader", "finance-leader"):  # the leader: not yet
        assert await title_in_review(platform, pid, who) == MASKED_TITLE, who
    assert await title_in_review(platform, pid, "finance-secrecy") == TITLE
    queue = await get(platform, "/people/finance-secrecy/queue", "finance-secrecy")
    assert [i["title"] for i in queue.json()["items"]] == [MASKED_TITLE], "a read model"

    signed = await sign(platform, pid, "finance-secrecy", "secrecy", digest)
    assert signed.status_code == 201, signed.text
    assert RAW not in signed.text, "signed: the chain no longer awaits the secrecy reviewer"
    assert await title_in_review(platform, pid, "finance-secrecy") == MASKED_TITLE
    assert await title_in_review(platform, pid, "finance-leader") == TITLE
    assert await title_in_review(platform, pid, "finance-maker") == MASKED_TITLE

    approved = await sign(platform, pid, "finance-leader", "leader", digest)
    assert approved.status_code == 201 and approved.json()["concluded"] == "approved"
    assert RAW not in approved.text
    for who in ("finance-leader", "finance-secrecy", "finance-maker", "office-reader"):
        assert await title_in_review(platform, pid, who) == MASKED_TITLE, who


async def test_no_read_model_keeps_the_id(platform: Platform, post: dict[str, Any]) -> None:
    pid = post["post_id"]
    signed = await sign(platform, pid, "finance-secrecy", "secrecy", post["content_digest"])
    assert signed.status_code == 201, signed.text
    await platform.settle()
    seen: dict[str, str] = {}
    for name, svc in platform.services.items():
        with svc.engine.connect() as conn:  # type: ignore[attr-defined]
            for table in inspect(conn).get_table_names():
                rows = conn.exec_driver_sql(f'SELECT * FROM "{table}"')  # our own table names
                text = " ".join(str(tuple(row)) for row in rows)
                assert RAW not in text, f"{name}.{table} holds the resident ID number"
                seen[f"{name}.{table}"] = text
    # ... and the two read models that keep the title keep it masked.
    assert MASKED in seen["review.review_posts"]
    assert MASKED in seen["accountability.acc_post"]
