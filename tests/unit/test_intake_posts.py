"""The post decider: Attachment 1's rules, the catalog, screening; pure, no I/O."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from gongkai.events.contracts.intake import (
    Attachment,
    PostRevised,
    PostSubmitted,
    PostWithdrawn,
    post_content_digest,
)
from gongkai.refusal import Refusal
from gongkai.rules import default_catalog
from gongkai_intake.domain import posts

TODAY = date(2026, 3, 2)
SHA = hashlib.sha256(b"x").hexdigest()
CTX = posts.Context(
    today=TODAY,
    caller_roles=frozenset({"maker"}),
    unit_kind="department",
    catalog=default_catalog(),
)


def cmd(**over: Any) -> posts.SubmitPost:
    base = posts.SubmitPost(
        post_id="P1",
        unit="finance",
        column="normative_documents",
        title="关于印发《财政专项资金管理办法》的通知",
        body="正文",
        information_date=date(2026, 2, 27),
        origin="produced",
        channel="website",
        important_kind="normative_document",
    )
    return replace(base, **over)


def rejected(fn: Any, *args: Any) -> Refusal:
    with pytest.raises(Refusal) as info:
        fn(*args)
    return info.value


def submitted(**over: Any) -> posts.PostState:
    [event] = posts.submit(cmd(**over), posts.INITIAL, CTX)
    return posts.evolve(posts.INITIAL, event)


def test_submission_carries_the_form_and_the_content_digest() -> None:
    att = (Attachment(name="全文.pdf", sha256=SHA, size=3),)
    [e] = posts.submit(cmd(attachments=att, maker_unsure=True), posts.INITIAL, CTX)
    assert isinstance(e, PostSubmitted)
    assert (e.origin, e.channel, e.important_kind, e.maker_unsure) == (
        "produced",
        "website",
        "normative_document",
        True,
    )
    assert e.content_digest == post_content_digest(e.title, e.body, att)
    assert e.content_version == 1


def test_digest_is_over_title_body_and_attachments_only() -> None:
    att = (Attachment(name="a.pdf", sha256=SHA, size=1),)
    d = post_content_digest("t", "b", att)
    assert d == post_content_digest("t", "b", list(att))
    assert d != post_content_digest("t", "b", ())
    assert d != post_content_digest("t", "b ", att)
    assert d != post_content_digest("t2", "b", att)


def test_ordinary_post_defaults() -> None:
    [e] = posts.submit(cmd(important_kind=None, origin=None, channel=None), posts.INITIAL, CTX)
    assert (e.origin, e.channel) == ("produced", "website")


# ---- the review form (Attachment 1): given a submission, then what it records or the refusal --

#: name -> (the submission's form fields, then: (origin, channel) or the refused field)
FORM: dict[str, tuple[dict[str, Any], tuple[str, str] | str]] = {
    "a normative document with its form": ({}, ("produced", "website")),
    "an announcement without its origin": (
        {"important_kind": "announcement", "origin": None}, "origin"),
    "a major decision without its channel": (
        {"important_kind": "major_decision", "channel": None}, "channel"),
    "a normative document without its form": ({"origin": None, "channel": None}, "origin"),
    "an ordinary post states nothing: produced, for the website": (
        {"important_kind": None, "origin": None, "channel": None}, ("produced", "website")),
    "an ordinary post keeps what it states": (
        {"important_kind": None, "origin": None, "channel": "on_request"},
        ("produced", "on_request")),
    "a reprint names its source": (
        {"origin": "reprinted", "source": "人民网", "channel": "other"}, ("reprinted", "other")),
    "a reprint without a source": ({"origin": "reprinted"}, "source"),
    "a reprint whose source is blank": ({"origin": "reprinted", "source": " "}, "source"),
    "a produced post names no source": ({"source": "人民网"}, "source"),
    "an ordinary post naming a source is taken as produced": (
        {"important_kind": None, "origin": None, "source": "人民网"}, "source"),
}


@pytest.mark.parametrize("name", list(FORM))
def test_review_form(name: str) -> None:
    given, then = FORM[name]
    if isinstance(then, str):
        r = rejected(posts.review_form, cmd(**given))
        assert (r.kind, r.field) == ("invalid", then), r.detail
    else:
        assert posts.review_form(cmd(**given)) == then


@pytest.mark.parametrize(
    ("over", "ctx_over", "kind", "field"),
    [
        ({}, {"unit_kind": None}, "invalid", "unit"),
        ({}, {"caller_roles": frozenset()}, "forbidden", "unit"),
        ({}, {"caller_roles": frozenset({"leader", "secrecy"})}, "forbidden", "unit"),
        ({"column": "nope"}, {}, "invalid", "column"),
        ({"column": "public_resources"}, {"unit_kind": "township"}, "invalid", "column"),
        ({"column": "major_projects"}, {"unit_kind": "committee"}, "invalid", "column"),
        ({"column": "housing_security"}, {}, "invalid", "column"),
        ({"column": "statistics"}, {"column_hidden": True}, "invalid", "column"),
        ({"origin": None}, {}, "invalid", "origin"),
        ({"channel": None}, {}, "invalid", "channel"),
        ({"origin": "reprinted"}, {}, "invalid", "source"),
        ({"origin": "reprinted", "source": "  "}, {}, "invalid", "source"),
        ({"source": "x"}, {}, "invalid", "source"),
        ({"information_date": date(2026, 3, 3)}, {}, "invalid", "information_date"),
        ({"title": " "}, {}, "invalid", "title"),
        ({"title": "t" * 301}, {}, "invalid", "title"),
        ({"body": "", "attachments": ()}, {}, "invalid", "body"),
        ({"body": "b" * 200_001}, {}, "invalid", "body"),
        (
            {"attachments": (Attachment(name="a", sha256=SHA, size=1),) * 51},
            {},
            "invalid",
            "attachments",
        ),
        (
            {"attachments": (Attachment(name="a", sha256=SHA, size=300 * 2**20),)},
            {},
            "invalid",
            "attachments.0.size",
        ),
        ({"body": "机密★10年"}, {}, "refused", "body"),
        ({"origin": "reprinted", "source": "绝密★长期"}, {}, "refused", "source"),
        ({"body": "13800138000，" * 16_000}, {}, "too_large", "body"),
    ],
)
def test_submission_rules(
    over: dict[str, Any], ctx_over: dict[str, Any], kind: str, field: str
) -> None:
    r = rejected(posts.submit, cmd(**over), posts.INITIAL, replace(CTX, **ctx_over))
    assert (r.kind, r.field) == (kind, field)


def test_kept_choice_overrides_the_catalog_default() -> None:
    [e] = posts.submit(
        cmd(column="housing_security"), posts.INITIAL, replace(CTX, column_hidden=False)
    )
    assert e.column == "housing_security"


def test_refusal_says_where_but_never_what() -> None:
    r = rejected(posts.submit, cmd(body="附件：机密★10年 内容"), posts.INITIAL, CTX)
    assert r.extra == {"marks": [{"field": "body", "level": "机密", "start": 3, "end": 9}]}
    assert "内容" not in r.detail


def test_personal_data_is_flagged_with_masked_spans() -> None:
    [e] = posts.submit(cmd(body="身份证11010519491231002X"), posts.INITIAL, CTX)
    assert e.screening.needs_secrecy_review
    [span] = e.screening.spans
    assert (span.kind, span.field, span.start, span.end, span.masked) == (
        "resident_id",
        "body",
        3,
        21,
        "110105********002X",
    )


def test_screening_uses_the_injected_date() -> None:
    born_2026_03_01 = "110105202603010011"
    # Only valid as an ID once that birth date has come; the check digit is computed anyway.
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    first17 = born_2026_03_01[:17]
    check = "10X98765432"[sum(int(c) * w for c, w in zip(first17, weights, strict=True)) % 11]
    number = first17 + check
    [before] = posts.submit(
        cmd(body=number, information_date=date(2026, 2, 1)),
        posts.INITIAL,
        replace(CTX, today=date(2026, 2, 28)),
    )
    [after] = posts.submit(cmd(body=number), posts.INITIAL, CTX)
    assert not before.screening.needs_secrecy_review
    assert after.screening.needs_secrecy_review


def test_submitting_twice_is_a_conflict() -> None:
    r = rejected(posts.submit, cmd(), submitted(), CTX)
    assert r.kind == "conflict"


def test_revision_bumps_the_version_and_rescreens() -> None:
    state = submitted()
    rev = posts.RevisePost("P1", "新标题", "联系13800138000", date(2026, 3, 1))
    [e] = posts.revise(rev, state, CTX)
    assert isinstance(e, PostRevised)
    assert e.content_version == 2
    assert e.screening.needs_secrecy_review
    after = posts.evolve(state, e)
    assert (after.content_version, after.title, after.content_digest) == (
        2,
        "新标题",
        e.content_digest,
    )
    [e3] = posts.revise(replace(rev, body="三稿"), after, CTX)
    assert e3.content_version == 3


@pytest.mark.parametrize(
    ("state", "rev_over", "roles", "kind", "field"),
    [
        (posts.INITIAL, {}, {"maker"}, "not_found", "post_id"),
        ("withdrawn", {}, {"maker"}, "conflict", "post_id"),
        ("submitted", {}, {"leader"}, "forbidden", "unit"),
        (
            "submitted",
            {"body": "正文", "title": "关于印发《财政专项资金管理办法》的通知"},
            {"maker"},
            "invalid",
            "body",
        ),
        ("submitted", {"body": "秘密★1年"}, {"maker"}, "refused", "body"),
        (
            "submitted",
            {"information_date": date(2026, 4, 1)},
            {"maker"},
            "invalid",
            "information_date",
        ),
    ],
)
def test_revision_rules(
    state: Any, rev_over: dict[str, Any], roles: set[str], kind: str, field: str
) -> None:
    if state == "submitted":
        state = submitted()
    elif state == "withdrawn":
        state = replace(submitted(), withdrawn=True)
    rev = replace(posts.RevisePost("P1", "新标题", "新正文", date(2026, 3, 1)), **rev_over)
    r = rejected(posts.revise, rev, state, replace(CTX, caller_roles=frozenset(roles)))
    assert (r.kind, r.field) == (kind, field)


def test_withdrawal() -> None:
    state = submitted()
    leader = replace(CTX, caller_roles=frozenset({"leader"}))
    [e] = posts.withdraw(posts.WithdrawPost("P1", "重新起草"), state, leader)
    assert isinstance(e, PostWithdrawn)
    after = posts.evolve(state, e)
    assert after.withdrawn
    assert rejected(posts.withdraw, posts.WithdrawPost("P1", "again"), after, leader).kind == (
        "conflict"
    )
    secrecy = replace(CTX, caller_roles=frozenset({"secrecy"}))
    assert rejected(posts.withdraw, posts.WithdrawPost("P1", "x"), state, secrecy).kind == (
        "forbidden"
    )
    for reason, field in (
        ("", "reason"),
        ("r" * 1001, "reason"),
        ("含机密★1年", "reason"),
        ("联系人13800138000", "reason"),
    ):
        r = rejected(posts.withdraw, posts.WithdrawPost("P1", reason), state, CTX)
        assert r.field == field
