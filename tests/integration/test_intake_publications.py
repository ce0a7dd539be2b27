"""Publication reports through HTTP: known posts, unreviewed items, re-dating, removal."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import httpx
import pytest

from gongkai.events.contracts.intake import PostPublished, PublicationRemoved
from gongkai_demo.testing import DEMO, intake_events_after, seed_demo
from tests.conftest import Platform

DIGEST = hashlib.sha256(b"published page").hexdigest()


@pytest.fixture(scope="module")
async def intake(module_platform: Platform) -> Platform:
    """One seeded intake for the file: every report and post here has ids of its own (from a
    fresh Idempotency-Key), each test judges what it recorded by those ids or after the
    sequence it read first, none changes the directory or moves the clock."""
    await seed_demo(
        module_platform.evlog, module_platform.clock.now(), units=("finance", "education")
    )
    await module_platform.settle()
    return module_platform


def report(p: Platform, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "unit": "finance",
        "column": "normative_documents",
        "url": "https://www.wenhe.gov.cn/zfxxgk/finance/2026/0302.html",
        "online_at": (p.clock.now() - timedelta(hours=1)).isoformat(),
        "content_digest": DIGEST,
    }
    body.update(over)
    return body


async def post_report(
    p: Platform, body: dict[str, Any], person: str = "cms", key: str | None = None
) -> httpx.Response:
    return await p.client.post("/publications", json=body, headers=DEMO.headers(person, key))


async def recorded(p: Platform, publication_id: str) -> list[Any]:
    history, _ = await p.evlog.load("publication", publication_id)
    return [h.envelope for h in history]


async def submitted_post(p: Platform) -> dict[str, Any]:
    r = await p.client.post(
        "/posts",
        json={
            "unit": "finance",
            "column": "normative_documents",
            "title": "关于X的通知",
            "body": "正文",
            "information_date": "2026-02-27",
            "important_kind": "normative_document",
            "origin": "produced",
            "channel": "website",
        },
        headers=DEMO.headers("finance-maker"),
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_publication_of_a_known_post_joins_its_chain(intake: Platform) -> None:
    post = await submitted_post(intake)
    r = await post_report(
        intake, report(intake, post_id=post["post_id"], content_digest=post["content_digest"])
    )
    assert r.status_code == 201, r.text
    answer = r.json()
    assert answer["known_post"] is True
    [env] = await recorded(intake, answer["publication_id"])
    p = env.payload
    assert isinstance(p, PostPublished)
    assert (p.post_id, p.reported_post_id, p.reported_by) == (post["post_id"], None, "cms")
    assert p.content_digest == post["content_digest"]
    assert (env.actor.person, env.actor.role) == ("cms", "office")
    history, _ = await intake.evlog.load("post", post["post_id"])
    assert env.correlation_id == history[0].envelope.correlation_id
    assert env.causation_id == history[-1].envelope.event_id


async def test_publication_gongkai_never_saw_is_recorded_as_unreviewed(intake: Platform) -> None:
    r = await post_report(intake, report(intake))
    assert r.status_code == 201, r.text
    [env] = await recorded(intake, r.json()["publication_id"])
    assert env.payload.post_id is None
    assert r.json()["known_post"] is False
    # An id gongkai does not know (or that is not even a valid id) is kept, not dropped.
    for claimed in ("post-doesnotexist", "CMS/item 4711"):
        r = await post_report(intake, report(intake, post_id=claimed))
        assert r.status_code == 201, r.text
        [env] = await recorded(intake, r.json()["publication_id"])
        assert (env.payload.post_id, env.payload.reported_post_id) == (None, claimed)


async def test_publication_in_a_hidden_column_is_still_recorded(intake: Platform) -> None:
    r = await post_report(intake, report(intake, column="housing_security"))
    assert r.status_code == 201, r.text


async def test_site_reader_and_unit_reporters(intake: Platform) -> None:
    r = await post_report(intake, report(intake, reported_by="site_reader"), person="office-reader")
    assert r.status_code == 201, r.text
    [env] = await recorded(intake, r.json()["publication_id"])
    assert env.payload.reported_by == "site_reader"
    assert (env.actor.role, env.actor.unit) == ("office", "county-office")
    r = await post_report(intake, report(intake), person="finance-leader")
    assert r.status_code == 201, r.text
    [env] = await recorded(intake, r.json()["publication_id"])
    assert (env.actor.role, env.actor.unit) == ("leader", "finance")


async def test_redating_a_non_time_bound_column(intake: Platform) -> None:
    r = await post_report(intake, report(intake, column="organisation_functions", redated=True))
    assert r.status_code == 201, r.text
    [env] = await recorded(intake, r.json()["publication_id"])
    assert env.payload.redated is True


INVALID = [
    pytest.param({"unit": "nowhere"}, "cms", 422, "unit", id="unknown-unit"),
    pytest.param({"column": "no_such_column"}, "cms", 422, "column", id="unknown-column"),
    pytest.param({"redated": True}, "cms", 422, "redated", id="redating-time-bound-column"),
    pytest.param({"url": "ftp://x/y"}, "cms", 422, "url", id="not-http"),
    pytest.param({"url": "/relative/path"}, "cms", 422, "url", id="relative-url"),
    pytest.param(
        {"online_at": "2026-03-02T12:00:00+08:00"},
        "cms",
        422,
        "online_at",
        id="online-in-the-future",
    ),
    pytest.param(
        {"online_at": "2026-03-02T08:00:00"}, "cms", 422, "online_at", id="online-without-timezone"
    ),
    pytest.param({"content_digest": "abc"}, "cms", 422, "content_digest", id="bad-digest"),
    pytest.param(
        {"reported_by": "site_reader"},
        "finance-maker",
        403,
        "reported_by",
        id="site-reader-is-the-office",
    ),
    pytest.param({}, "education-maker", 403, "unit", id="other-units-maker"),
    pytest.param({}, "finance-secrecy", 403, "unit", id="secrecy-officer-does-not-report"),
]


@pytest.mark.parametrize(("over", "person", "status", "field"), INVALID)
async def test_invalid_reports_record_nothing(
    intake: Platform, over: dict[str, Any], person: str, status: int, field: str
) -> None:
    before = await intake.evlog.last_sequence()
    r = await post_report(intake, report(intake, **over), person=person)
    assert (r.status_code, r.json()["field"]) == (status, field), r.text
    assert await intake_events_after(intake.evlog, before) == []


async def test_post_of_another_unit_is_refused(intake: Platform) -> None:
    post = await submitted_post(intake)
    before = await intake.evlog.last_sequence()
    r = await post_report(intake, report(intake, unit="education", post_id=post["post_id"]))
    assert (r.status_code, r.json()["field"]) == (422, "post_id")
    assert await intake_events_after(intake.evlog, before) == []


async def test_removal(intake: Platform) -> None:
    post = await submitted_post(intake)
    pub = (await post_report(intake, report(intake, post_id=post["post_id"]))).json()
    pid = pub["publication_id"]
    url = f"/publications/{pid}/removal"
    before = await intake.evlog.last_sequence()
    early = (intake.clock.now() - timedelta(hours=2)).isoformat()
    r = await intake.client.post(
        url, json={"removed_at": early, "reason": "发布错误"}, headers=DEMO.headers("cms")
    )
    assert (r.status_code, r.json()["field"]) == (422, "removed_at")
    r = await intake.client.post(
        url,
        json={"removed_at": intake.clock.now().isoformat(), "reason": "发布错误"},
        headers=DEMO.headers("education-maker"),
    )
    assert r.status_code == 403
    assert await intake_events_after(intake.evlog, before) == []

    r = await intake.client.post(
        url,
        json={"removed_at": intake.clock.now().isoformat(), "reason": "发布的版本有误，已撤下"},
        headers=DEMO.headers("finance-maker"),
    )
    assert r.status_code == 200, r.text
    *_, env = await recorded(intake, pid)
    assert isinstance(env.payload, PublicationRemoved)
    assert (env.payload.post_id, env.payload.unit, env.payload.column) == (
        post["post_id"],
        "finance",
        "normative_documents",
    )
    view = await intake.client.get(f"/publications/{pid}", headers=DEMO.headers("finance-maker"))
    assert view.json()["removed"] is True

    before = await intake.evlog.last_sequence()
    again = await intake.client.post(
        url,
        json={"removed_at": intake.clock.now().isoformat(), "reason": "再次撤下"},
        headers=DEMO.headers("cms"),
    )
    assert again.status_code == 409
    unknown = await intake.client.post(
        "/publications/pub-nope/removal",
        json={"removed_at": intake.clock.now().isoformat(), "reason": "x"},
        headers=DEMO.headers("cms"),
    )
    assert unknown.status_code == 404
    assert await intake_events_after(intake.evlog, before) == []


async def test_report_retry_records_once(intake: Platform) -> None:
    before = await intake.evlog.last_sequence()
    a = await post_report(intake, report(intake), key="pub-retry")
    b = await post_report(intake, report(intake), key="pub-retry")
    assert a.json() == b.json()
    assert len(await intake_events_after(intake.evlog, before)) == 1


# Only intake: the other services would react to every seeded unit and slow each test.
pytestmark = pytest.mark.services("intake")
