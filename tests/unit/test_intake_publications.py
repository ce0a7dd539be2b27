"""The publication decider: facts from outside, recorded unless they are reporting errors."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from gongkai.events.contracts.intake import PostPublished, PublicationRemoved
from gongkai.refusal import Refusal
from gongkai.rules import default_catalog
from gongkai_intake.domain import posts, publications

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
DIGEST = hashlib.sha256(b"page").hexdigest()
POST = posts.PostState(exists=True, unit="finance", column="normative_documents")
CTX = publications.Context(
    now=NOW,
    today=date(2026, 3, 2),
    caller_roles=frozenset(),
    caller_is_office=True,
    unit_kind="department",
    catalog=default_catalog(),
)


def cmd(**over: Any) -> publications.ReportPublication:
    return replace(
        publications.ReportPublication(
            publication_id="pub-1",
            unit="finance",
            column="normative_documents",
            url="https://www.example.gov.cn/a.html",
            online_at=NOW - timedelta(hours=1),
            content_digest=DIGEST,
        ),
        **over,
    )


def rejected(fn: Any, *args: Any) -> Refusal:
    with pytest.raises(Refusal) as info:
        fn(*args)
    return info.value


def test_known_unknown_and_absent_posts() -> None:
    [known] = publications.report(cmd(post_id="P1"), publications.INITIAL, replace(CTX, post=POST))
    assert isinstance(known, PostPublished)
    assert (known.post_id, known.reported_post_id) == ("P1", None)
    [unknown] = publications.report(
        cmd(post_id="P9"), publications.INITIAL, replace(CTX, post=posts.INITIAL)
    )
    assert (unknown.post_id, unknown.reported_post_id) == (None, "P9")
    [absent] = publications.report(cmd(), publications.INITIAL, CTX)
    assert (absent.post_id, absent.reported_post_id) == (None, None)


def test_withdrawn_post_going_online_is_still_recorded() -> None:
    ctx = replace(CTX, post=replace(POST, withdrawn=True))
    [e] = publications.report(cmd(post_id="P1"), publications.INITIAL, ctx)
    assert e.post_id == "P1"


def test_clock_skew_is_tolerated_but_not_the_future() -> None:
    publications.report(cmd(online_at=NOW + timedelta(minutes=4)), publications.INITIAL, CTX)
    r = rejected(
        publications.report, cmd(online_at=NOW + timedelta(minutes=6)), publications.INITIAL, CTX
    )
    assert r.field == "online_at"


@pytest.mark.parametrize(
    ("over", "ctx_over", "kind", "field"),
    [
        ({}, {"unit_kind": None}, "invalid", "unit"),
        ({}, {"caller_is_office": False}, "forbidden", "unit"),
        (
            {"reported_by": "site_reader"},
            {"caller_is_office": False, "caller_roles": frozenset({"maker"})},
            "forbidden",
            "reported_by",
        ),
        ({"column": "nope"}, {}, "invalid", "column"),
        ({"redated": True}, {}, "invalid", "redated"),
        ({"url": "javascript:alert(1)"}, {}, "invalid", "url"),
        ({"url": "https://" + "a" * 2050}, {}, "invalid", "url"),
        ({"post_id": "P1", "unit": "education"}, {"post": POST}, "invalid", "post_id"),
    ],
)
def test_reporting_errors(
    over: dict[str, Any], ctx_over: dict[str, Any], kind: str, field: str
) -> None:
    r = rejected(publications.report, cmd(**over), publications.INITIAL, replace(CTX, **ctx_over))
    assert (r.kind, r.field) == (kind, field)


def test_unit_people_may_report_their_own_units_items() -> None:
    ctx = replace(CTX, caller_is_office=False, caller_roles=frozenset({"leader"}))
    assert publications.report(cmd(), publications.INITIAL, ctx)


def test_redating_and_removal() -> None:
    [e] = publications.report(
        cmd(column="region_introduction", redated=True), publications.INITIAL, CTX
    )
    state = publications.evolve(publications.INITIAL, e)
    assert rejected(publications.report, cmd(), state, CTX).kind == "conflict"
    rm = publications.RemovePublication("pub-1", NOW, "错误信息，已撤下")
    [removed] = publications.remove(rm, state, CTX)
    assert isinstance(removed, PublicationRemoved)
    assert (removed.unit, removed.column) == ("finance", "region_introduction")
    after = publications.evolve(state, removed)
    assert rejected(publications.remove, rm, after, CTX).kind == "conflict"
    assert rejected(publications.remove, rm, publications.INITIAL, CTX).kind == "not_found"
    early = replace(rm, removed_at=NOW - timedelta(hours=2))
    assert rejected(publications.remove, early, state, CTX).field == "removed_at"
    # A removal's reason follows the withdrawal's rule (content.check_reason): given, at most
    # REASON_MAX characters, no classification mark, no personal data.
    for reason, kind in (
        (" ", "invalid"),
        ("r" * 1001, "invalid"),
        ("含机密★1年", "refused"),
        ("联系人13800138000", "invalid"),
    ):
        r = rejected(publications.remove, replace(rm, reason=reason), state, CTX)
        assert (r.kind, r.field) == (kind, "reason")
