"""Posts through HTTP against the running platform and a real nats-server.

Every validation rule and screening case is checked through the API; what was recorded is read
back from the stream, and every rejected request must leave the stream as it was.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import delete

from gongkai.events.contracts.intake import PostRevised, PostSubmitted, PostWithdrawn
from gongkai.runtime.idempotency import answers
from gongkai_demo.testing import DEMO, intake_events_after, seed_demo
from tests.conftest import Platform
from tests.direct import post_both_ways

ID_OK = "11010519491231002X"  # GB 11643's published example: valid date and check character
ID_BAD_CHECK = "110105194912310021"
CARD_OK = "6222021234567890128"  # passes Luhn
CARD_BAD = "6222021234567890123"  # fails Luhn
SHA = hashlib.sha256(b"attachment").hexdigest()
ABSENT = object()


def post(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "unit": "finance",
        "column": "normative_documents",
        "title": "关于印发《文河县财政专项资金管理办法》的通知",
        "body": "各乡镇人民政府、县直各部门：现将《办法》印发给你们，请认真贯彻执行。",
        "information_date": "2026-02-27",
        "important_kind": "normative_document",
        "origin": "produced",
        "channel": "website",
    }
    body.update(over)
    return {k: v for k, v in body.items() if v is not ABSENT}


UNITS = ("finance", "education", "health", "market", "donghe-town")


@pytest.fixture(scope="module")
async def intake(module_platform: Platform) -> Platform:
    """One platform and one seeded directory for the file: every test submits under fresh
    Idempotency-Keys (fresh post ids), reads back its own posts, and judges "nothing recorded"
    against the sequence it read before its request, so no test sees another's posts."""
    await seed_demo(module_platform.evlog, module_platform.clock.now(), units=UNITS)
    await module_platform.settle()
    return module_platform


async def submit(
    p: Platform, body: dict[str, Any], person: str = "finance-maker", key: str | None = None
) -> httpx.Response:
    return await p.client.post("/posts", json=body, headers=DEMO.headers(person, key))


async def events_of(p: Platform, post_id: str) -> list[Any]:
    history, _ = await p.evlog.load("post", post_id)
    return [h.envelope for h in history]


async def assert_refused(
    p: Platform, body: dict[str, Any], status: int, field: str, person: str = "finance-maker"
) -> dict[str, Any]:
    before = await p.evlog.last_sequence()
    r = await submit(p, body, person)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["status"] == status
    assert problem["field"] == field, problem
    assert await intake_events_after(p.evlog, before) == [], "a refused request recorded"
    return problem


async def test_submission_is_recorded_with_the_review_form(intake: Platform) -> None:
    attachments = [{"name": "办法全文.pdf", "sha256": SHA, "size": 120_000}]
    r = await submit(intake, post(attachments=attachments, maker_unsure=True))
    assert r.status_code == 201, r.text
    answer = r.json()
    [env] = await events_of(intake, answer["post_id"])
    p = env.payload
    assert isinstance(p, PostSubmitted)
    assert (p.unit, p.column, p.origin, p.channel) == (
        "finance",
        "normative_documents",
        "produced",
        "website",
    )
    assert p.important_kind == "normative_document"
    assert p.maker_unsure is True
    assert str(p.information_date) == "2026-02-27"
    assert p.attachments[0].sha256 == SHA
    assert p.content_version == 1
    # sha256 of the canonical content, reproducible by anyone holding the content.
    canonical = (
        '{"attachments":[{"name":"办法全文.pdf","sha256":"' + SHA + '","size":120000}],'
        '"body":"' + post()["body"] + '","title":"' + post()["title"] + '"}'
    )
    assert p.content_digest == hashlib.sha256(canonical.encode()).hexdigest()
    assert answer["content_digest"] == p.content_digest
    assert not p.screening.needs_secrecy_review
    assert (env.actor.person, env.actor.role, env.actor.unit) == (
        "finance-maker",
        "maker",
        "finance",
    )
    assert env.recorded_at == intake.clock.now()
    assert answer["event_id"] == env.event_id
    view = await intake.client.get(
        f"/posts/{answer['post_id']}", headers=DEMO.headers("finance-leader")
    )
    assert view.status_code == 200
    assert view.json()["content_digest"] == p.content_digest


async def test_ordinary_post_defaults_origin_and_channel(intake: Platform) -> None:
    r = await submit(
        intake,
        post(column="work_arrangements", important_kind=ABSENT, origin=ABSENT, channel=ABSENT),
        person="finance-staff",
    )
    assert r.status_code == 201, r.text
    [env] = await events_of(intake, r.json()["post_id"])
    assert (env.payload.origin, env.payload.channel) == ("produced", "website")
    assert env.actor.role == "staff"


async def test_reprint_names_its_source(intake: Platform) -> None:
    r = await submit(intake, post(origin="reprinted", source="河北省财政厅网站"))
    assert r.status_code == 201, r.text
    [env] = await events_of(intake, r.json()["post_id"])
    assert env.payload.source == "河北省财政厅网站"


# ---- validation: every rule, 4xx with the field named, nothing recorded -------------------

VALIDATION = [
    pytest.param(post(unit="no-such-unit"), 422, "unit", id="unknown-unit"),
    pytest.param(post(column="no_such_column"), 422, "column", id="column-not-in-catalog"),
    pytest.param(
        post(unit="donghe-town", column="public_resources"),
        422,
        "column",
        id="column-not-for-unit-kind",
    ),
    pytest.param(post(column="housing_security"), 422, "column", id="column-hidden-by-default"),
    pytest.param(post(origin=ABSENT), 422, "origin", id="important-needs-origin"),
    pytest.param(post(channel=ABSENT), 422, "channel", id="important-needs-channel"),
    pytest.param(
        post(important_kind="announcement", column="announcements", origin=ABSENT),
        422,
        "origin",
        id="announcement-needs-origin",
    ),
    pytest.param(
        post(important_kind="major_decision", channel=ABSENT),
        422,
        "channel",
        id="major-decision-needs-channel",
    ),
    pytest.param(post(origin="reprinted"), 422, "source", id="reprint-without-source"),
    pytest.param(post(source="某网站"), 422, "source", id="source-on-produced"),
    pytest.param(post(information_date="2026-03-03"), 422, "information_date", id="future-date"),
    pytest.param(post(information_date="2026-02-30"), 422, "information_date", id="bad-date"),
    pytest.param(post(title=ABSENT), 422, "title", id="title-missing"),
    pytest.param(post(title="   "), 422, "title", id="title-blank"),
    pytest.param(post(title="题" * 301), 422, "title", id="title-too-long"),
    pytest.param(post(body="字" * 200_001), 422, "body", id="body-too-long"),
    pytest.param(post(body=" "), 422, "body", id="no-body-no-attachment"),
    pytest.param(
        post(attachments=[{"name": f"{i}.pdf", "sha256": SHA, "size": 1} for i in range(51)]),
        422,
        "attachments",
        id="too-many-attachments",
    ),
    pytest.param(
        post(attachments=[{"name": "big.zip", "sha256": SHA, "size": 200 * 1024 * 1024 + 1}]),
        422,
        "attachments.0.size",
        id="attachment-too-large",
    ),
    pytest.param(
        post(attachments=[{"name": "a.pdf", "sha256": "not-a-digest", "size": 1}]),
        422,
        "attachments.0.sha256",
        id="attachment-bad-sha256",
    ),
    pytest.param(
        post(attachments=[{"name": "", "sha256": SHA, "size": 1}]),
        422,
        "attachments.0.name",
        id="attachment-no-name",
    ),
    pytest.param(post(channel="fax"), 422, "channel", id="unknown-channel"),
    pytest.param(post(important_kind="memo"), 422, "important_kind", id="unknown-kind"),
    pytest.param(post(unit="fin/ance"), 422, "unit", id="unit-not-a-token"),
    pytest.param(post(colour="red"), 422, "colour", id="unknown-field"),
    # 16,000 mobile numbers make masked spans bigger than one event may be.
    pytest.param(post(body="13800138000，" * 16_000), 413, "body", id="too-large-once-screened"),
]


@pytest.mark.parametrize(("body", "status", "field"), VALIDATION)
async def test_invalid_submission_is_refused(
    intake: Platform, body: dict[str, Any], status: int, field: str
) -> None:
    # A maker of the unit named, so only the rule under test can fail.
    unit = body.get("unit")
    person = f"{unit}-maker" if unit in UNITS else "finance-maker"
    await assert_refused(intake, body, status, field, person=person)


@pytest.mark.parametrize(
    "person",
    [
        "education-maker",  # maker, but of another unit
        "finance-leader",  # the leader signs in review; submitting would invite self-approval
        "finance-secrecy",
        "office-reader",
    ],
)
async def test_caller_without_a_submitting_role_in_the_unit_is_refused(
    intake: Platform, person: str
) -> None:
    problem = await assert_refused(intake, post(), 403, "unit", person=person)
    assert "maker" in problem["detail"]


async def test_anonymous_and_unknown_callers_record_nothing(intake: Platform) -> None:
    before = await intake.evlog.last_sequence()
    r = await intake.client.post("/posts", json=post(), headers={"Idempotency-Key": "k1"})
    assert r.status_code == 401
    assert r.json()["field"] == "Authorization"
    r = await intake.client.post(
        "/posts",
        json=post(),
        headers={"Idempotency-Key": "k2", "Authorization": "Bearer gk_not-a-real-token"},
    )
    assert r.status_code == 401
    # Anonymous with an invalid body: still 401, the body is not even judged.
    r = await intake.client.post("/posts", json={"x": 1}, headers={"Idempotency-Key": "k3"})
    assert r.status_code == 401
    assert await intake_events_after(intake.evlog, before) == []


async def test_idempotency_key_is_required_and_bounded(intake: Platform) -> None:
    before = await intake.evlog.last_sequence()
    headers = DEMO.headers("finance-maker")
    del headers["Idempotency-Key"]
    r = await intake.client.post("/posts", json=post(), headers=headers)
    assert (r.status_code, r.json()["field"]) == (400, "Idempotency-Key")
    r = await intake.client.post(
        "/posts", json=post(), headers={**headers, "Idempotency-Key": "k" * 201}
    )
    assert (r.status_code, r.json()["field"]) == (400, "Idempotency-Key")
    assert await intake_events_after(intake.evlog, before) == []


# ---- screening through HTTP, both directions -------------------------------------------------

REFUSED = [
    pytest.param({"body": "本文件密级：机密★10年"}, "body", id="mark-in-body"),
    pytest.param({"title": "绝密★长期 关于X的通知"}, "title", id="mark-in-title"),
    pytest.param({"body": "秘密 ★ 1年"}, "body", id="spaces-around-star"),
    pytest.param({"body": "机密\u3000★\u300010年"}, "body", id="ideographic-spaces"),
    pytest.param({"body": "机密★会议开始前"}, "body", id="condition"),
    pytest.param({"body": "机密*10年"}, "body", id="ascii-asterisk-with-period"),
    pytest.param(
        {"attachments": [{"name": "绝密★启用前-试题.pdf", "sha256": SHA, "size": 10}]},
        "attachments.0.name",
        id="mark-in-attachment-name",
    ),
    pytest.param(
        {"origin": "reprinted", "source": "某文件（秘密★6个月）"}, "source", id="mark-in-source"
    ),
]


@pytest.mark.parametrize(("over", "field"), REFUSED)
async def test_classified_content_is_refused_and_never_recorded(
    intake: Platform, over: dict[str, Any], field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    problem = await assert_refused(intake, post(**over), 422, field)
    assert problem["title"] == "Classified content refused"
    assert problem["marks"][0]["field"] == field
    # The refusal is logged, without the content.
    logged = capsys.readouterr()
    text = logged.out + logged.err
    assert "classified_content_refused" in text
    for value in over.values():
        if isinstance(value, str) and "★" in value:
            assert value not in text


FLAGGED = [
    pytest.param(
        {"body": f"申请人身份证号{ID_OK}。"},
        [("resident_id", "body", "110105********002X")],
        id="resident-id",
    ),
    pytest.param(
        {"body": "联系电话13800138000。"}, [("mobile", "body", "138****8000")], id="mobile"
    ),
    pytest.param(
        {"body": "电话：+86 139-1234-5678"},
        [("mobile", "body", "139****5678")],
        id="mobile-country-code",
    ),
    pytest.param(
        {"body": f"退款账号{CARD_OK}"},
        [("bank_card", "body", "622202*********0128")],
        id="bank-card",
    ),
    pytest.param(
        {"title": "关于张三（13700137000）的公示"},
        [("mobile", "title", "137****7000")],
        id="mobile-in-title",
    ),
    pytest.param(
        {"attachments": [{"name": f"身份证_{ID_OK}.jpg", "sha256": SHA, "size": 10}]},
        [("resident_id", "attachments.0.name", "110105********002X")],
        id="id-in-attachment-name",
    ),
]


@pytest.mark.parametrize(("over", "expected"), FLAGGED)
async def test_personal_data_is_recorded_flagged_for_secrecy_review(
    intake: Platform, over: dict[str, Any], expected: list[tuple[str, str, str]]
) -> None:
    r = await submit(intake, post(**over))
    assert r.status_code == 201, r.text
    assert r.json()["needs_secrecy_review"] is True
    [env] = await events_of(intake, r.json()["post_id"])
    s = env.payload.screening
    assert s.needs_secrecy_review
    assert [(x.kind, x.field, x.masked) for x in s.spans] == expected
    assert [(x["kind"], x["field"], x["masked"]) for x in r.json()["personal_data"]] == expected


CLEAN = [
    pytest.param({"body": f"证件号{ID_BAD_CHECK}（校验位不符）"}, id="id-wrong-check-character"),
    pytest.param({"body": "推荐阅读《秘密花园》一书。"}, id="secret-in-book-title"),
    pytest.param({"body": "全体干部要保守国家秘密和商业秘密。"}, id="bare-secret-words"),
    pytest.param({"body": "依据文政办〔2018〕13800138000号文件。"}, id="phone-like-in-doc-number"),
    pytest.param({"body": "编号：13912345678"}, id="phone-like-serial"),
    pytest.param({"body": f"流水号{CARD_BAD}"}, id="card-failing-luhn"),
    pytest.param({"body": "**保守秘密**是每个干部的责任"}, id="markdown-bold"),
]


@pytest.mark.parametrize("over", CLEAN)
async def test_near_misses_are_neither_refused_nor_flagged(
    intake: Platform, over: dict[str, Any]
) -> None:
    r = await submit(intake, post(**over))
    assert r.status_code == 201, r.text
    [env] = await events_of(intake, r.json()["post_id"])
    assert env.payload.screening.needs_secrecy_review is False
    assert env.payload.screening.spans == ()


# ---- idempotency and concurrency -------------------------------------------------------------


async def test_retry_with_the_same_key_records_once(intake: Platform) -> None:
    before = await intake.evlog.last_sequence()
    first = await submit(intake, post(), key="retry-1")
    second = await submit(intake, post(), key="retry-1")
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert len(await intake_events_after(intake.evlog, before)) == 1
    # The same key from another person is another command.
    other = await submit(intake, post(), person="finance-staff", key="retry-1")
    assert other.status_code == 201
    assert other.json()["post_id"] != first.json()["post_id"]


async def test_same_key_with_another_body_is_refused(intake: Platform) -> None:
    await submit(intake, post(), key="reuse-1")
    before = await intake.evlog.last_sequence()
    r = await submit(intake, post(title="另一个标题"), key="reuse-1")
    assert (r.status_code, r.json()["field"]) == (422, "Idempotency-Key")
    assert await intake_events_after(intake.evlog, before) == []


async def test_concurrent_retries_of_one_request_record_once(intake: Platform) -> None:
    before = await intake.evlog.last_sequence()
    rs = await asyncio.gather(*(submit(intake, post(), key="burst-1") for _ in range(10)))
    assert {r.status_code for r in rs} == {201}
    assert len({r.json()["post_id"] for r in rs}) == 1
    assert len(await intake_events_after(intake.evlog, before)) == 1


async def test_retry_after_the_answer_was_lost_records_nothing_new(intake: Platform) -> None:
    first = await submit(intake, post(), key="lost-1")
    # The answer store is a convenience; the log's own dedup is the guarantee underneath.
    engine = intake.services["intake"].engine
    with engine.begin() as conn:
        conn.execute(delete(answers))
    before = await intake.evlog.last_sequence()
    again = await submit(intake, post(), key="lost-1")
    assert again.status_code == 201
    assert again.json() == first.json()
    assert await intake_events_after(intake.evlog, before) == []


async def test_fifty_concurrent_submissions_all_record(intake: Platform) -> None:
    before = await intake.evlog.last_sequence()
    makers = [f"{u}-maker" for u in ("finance", "education", "health", "market", "donghe-town")]
    rs = await asyncio.gather(
        *(
            submit(
                intake,
                post(unit=m.removesuffix("-maker"), title=f"通知第{i}号", column="other_documents"),
                person=m,
            )
            for i in range(50)
            for m in [makers[i % len(makers)]]
        )
    )
    assert [r.status_code for r in rs] == [201] * 50, [r.text for r in rs if r.status_code != 201]
    ids = {r.json()["post_id"] for r in rs}
    assert len(ids) == 50
    assert len(await intake_events_after(intake.evlog, before)) == 50
    recorded = {
        rec.envelope.aggregate_id
        async for rec in intake.evlog.replay(from_seq=before + 1)
        if isinstance(rec.envelope.payload, PostSubmitted)
    }
    assert recorded == ids


# ---- revisions and withdrawal ---------------------------------------------------------------


async def test_revision_records_a_new_content_version_in_the_posts_chain(
    intake: Platform,
) -> None:
    first = (await submit(intake, post())).json()
    r = await intake.client.post(
        f"/posts/{first['post_id']}/revisions",
        json={
            "title": post()["title"],
            "body": "修订后的正文，联系电话13800138000。",
            "information_date": "2026-03-01",
        },
        headers=DEMO.headers("finance-staff"),
    )
    assert r.status_code == 201, r.text
    assert r.json()["content_version"] == 2
    assert r.json()["needs_secrecy_review"] is True
    submitted, revised = await events_of(intake, first["post_id"])
    assert isinstance(revised.payload, PostRevised)
    assert revised.payload.content_version == 2
    assert revised.payload.content_digest != submitted.payload.content_digest
    assert revised.correlation_id == submitted.correlation_id
    assert revised.causation_id == submitted.event_id


async def test_revision_rules(intake: Platform) -> None:
    pid = (await submit(intake, post())).json()["post_id"]
    same = {"title": post()["title"], "body": post()["body"], "information_date": "2026-02-27"}
    changed = {**same, "body": "新正文"}
    before = await intake.evlog.last_sequence()
    cases = [
        (pid, same, "finance-maker", 422, "body"),  # nothing changed
        (pid, changed, "education-maker", 403, "unit"),
        (pid, changed, "finance-leader", 403, "unit"),
        ("post-unknown", changed, "finance-maker", 404, "post_id"),
        (
            pid,
            {**changed, "information_date": "2026-03-09"},
            "finance-maker",
            422,
            "information_date",
        ),
        (pid, {**changed, "body": "机密★1年"}, "finance-maker", 422, "body"),
    ]
    for post_id, body, person, status, field in cases:
        r = await intake.client.post(
            f"/posts/{post_id}/revisions", json=body, headers=DEMO.headers(person)
        )
        assert (r.status_code, r.json().get("field")) == (status, field), (body, r.text)
    assert await intake_events_after(intake.evlog, before) == []


async def test_withdrawal(intake: Platform) -> None:
    pid = (await submit(intake, post())).json()["post_id"]
    r = await intake.client.post(
        f"/posts/{pid}/withdrawal",
        json={"reason": "内容需重新起草"},
        headers=DEMO.headers("finance-leader"),
    )
    assert r.status_code == 200, r.text
    *_, last = await events_of(intake, pid)
    assert isinstance(last.payload, PostWithdrawn)
    assert last.payload.reason == "内容需重新起草"
    assert last.actor.role == "leader"
    before = await intake.evlog.last_sequence()
    again = await intake.client.post(
        f"/posts/{pid}/withdrawal",
        json={"reason": "再次撤回"},
        headers=DEMO.headers("finance-maker"),
    )
    assert again.status_code == 409
    revise = await intake.client.post(
        f"/posts/{pid}/revisions",
        json={"title": "t", "body": "b", "information_date": "2026-03-01"},
        headers=DEMO.headers("finance-maker"),
    )
    assert revise.status_code == 409
    assert await intake_events_after(intake.evlog, before) == []


async def test_withdrawal_reason_is_screened(intake: Platform) -> None:
    pid = (await submit(intake, post())).json()["post_id"]
    before = await intake.evlog.last_sequence()
    for reason, status in (("含机密★10年内容", 422), (f"申请人身份证{ID_OK}", 422), ("", 422)):
        r = await intake.client.post(
            f"/posts/{pid}/withdrawal",
            json={"reason": reason},
            headers=DEMO.headers("finance-maker"),
        )
        assert (r.status_code, r.json()["field"]) == (status, "reason"), r.text
    assert await intake_events_after(intake.evlog, before) == []


async def test_reading_a_post_needs_a_role_in_its_unit(intake: Platform) -> None:
    pid = (await submit(intake, post())).json()["post_id"]
    assert (
        await intake.client.get(f"/posts/{pid}", headers=DEMO.headers("office-reader"))
    ).status_code == 200
    assert (
        await intake.client.get(f"/posts/{pid}", headers=DEMO.headers("education-maker"))
    ).status_code == 403
    assert (
        await intake.client.get("/posts/post-nope", headers=DEMO.headers("finance-maker"))
    ).status_code == 404


# Only intake: the other services would react to every seeded unit and slow each test.
pytestmark = pytest.mark.services("intake")


async def test_a_command_is_one_whichever_handler_takes_it(
    intake: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A JSON object sent as ``application/json`` takes the route's direct way (no FastAPI
    dependency solving); with a charset in its content type it goes through FastAPI's own
    handler. Both are the same command: the second is the first's replay, the same answer."""
    headers = DEMO.headers("finance-maker", "one-command-two-handlers")
    data = json.dumps(post(title="关于两种处理方式的通知"), ensure_ascii=False).encode()
    direct, through_fastapi, _ = await post_both_ways(
        intake.client, "/posts", data, headers, monkeypatch
    )
    assert through_fastapi.headers["Idempotent-Replayed"] == "true"
    assert len(await events_of(intake, direct.json()["post_id"])) == 1
