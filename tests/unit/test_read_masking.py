"""Screened personal data stays masked when read: ``gongkai.access.mask`` and review's readers.

Spans come from intake's own screening here, so the offsets are the ones a real post records.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from gongkai.access import mask, masked_event, masked_post
from gongkai.events import Actor, Envelope, new_event
from gongkai.events.contracts.intake import (
    Attachment,
    MaskedSpan,
    PostRevised,
    PostSubmitted,
)
from gongkai_intake.domain.content import content_fields, screen_post
from gongkai_review.domain.chain import Meta, Sign, decide, fold
from gongkai_review.domain.reading import as_read_by, masked, reads_unmasked

TODAY = date(2026, 3, 2)
AT = datetime(2026, 3, 2, 1, tzinfo=UTC)
ID, ID_MASKED = "11010519491231002X", "110105********002X"
GROUPED_ID = "110105 19491231 002X"
MOBILE = "+86 138-0013-8000"
CARD = "6222 0212 3456 7894"  # passes Luhn
TITLE = f"关于张三（{ID}）的公示"
UNIT = "finance"
ROLES = {
    "maker": frozenset({(UNIT, "maker")}),
    "secrecy": frozenset({(UNIT, "secrecy")}),
    "leader": frozenset({(UNIT, "leader")}),
    "office": frozenset({("county-office", "office")}),
}


def digits(s: str) -> str:
    return "".join(c for c in s if c.isdigit() or c == "X")


def submitted(title: str = TITLE, body: str = "正文", source: str | None = None) -> PostSubmitted:
    attachments = (Attachment(name=f"名单_{ID}.pdf", sha256="a" * 64, size=1),)
    fields = content_fields(title, body, attachments, source)
    return PostSubmitted(
        unit=UNIT,
        column="normative_documents",
        title=title,
        body=body,
        attachments=attachments,
        origin="reprinted" if source else "produced",
        source=source,
        channel="website",
        information_date=TODAY,
        content_digest="d" * 64,
        screening=screen_post(fields, TODAY),
    )


def test_mask_replaces_each_span_in_place_and_twice_is_once() -> None:
    text = f"身份证 {GROUPED_ID}，电话 {MOBILE}，卡号 {CARD}。"
    spans = screen_post({"body": text}, TODAY).spans
    assert sorted(s.kind for s in spans) == ["bank_card", "mobile", "resident_id"]
    out = mask(text, spans, "body")
    assert len(out) == len(text), "offsets of the other spans stay valid"
    for raw in (digits(GROUPED_ID), "00138", "02123456"):
        assert raw not in digits(out), out
    assert "110105 ******** 002X" in out and "+86 138-****-8000" in out
    assert "6222 02** **** 7894" in out
    assert mask(out, spans, "body") == out
    assert mask(text, spans, "title") == text, "spans of another field are not applied"


def test_mask_fails_closed_on_a_span_that_does_not_fit() -> None:
    span = MaskedSpan(kind="mobile", field="title", start=2, end=13, masked="138****8000")
    assert mask("电话13800138000", [span], "title") == "电话138****8000"
    assert mask("电话1380013800", [span], "title") == "电话" + "*" * 10
    assert mask("电话13800138000", [span.model_copy(update={"masked": "x"})], "title") == (
        "电话" + "*" * 11
    )


def test_a_post_event_is_masked_in_every_screened_field() -> None:
    p = submitted(body=f"正文含{ID}", source=f"转自{ID}的来信")
    assert {s.field for s in p.screening.spans} == {
        "title",
        "body",
        "source",
        "attachments.0.name",
    }
    m = masked_post(p)
    assert ID not in m.model_dump_json() and ID in p.model_dump_json()
    assert m.title == TITLE.replace(ID, ID_MASKED)
    assert (m.content_digest, m.screening) == (p.content_digest, p.screening)
    env = new_event(p, aggregate_id="P1", actor=Actor(person="maker", role="maker", unit=UNIT),
                    command_id="c1", recorded_at=AT)
    assert ID not in masked_event(env).model_dump_json()
    plain = submitted(title="无个人信息的标题")
    plain = plain.model_copy(update={"attachments": (), "screening": screen_post({}, TODAY)})
    assert masked_post(plain) is plain


def _env(payload: Any, person: str = "maker") -> Envelope[Any]:
    return new_event(
        payload,
        aggregate_id="P1",
        actor=Actor(person=person, role="maker", unit=UNIT),
        command_id=f"c-{type(payload).__name__}",
        recorded_at=AT,
    )


def _sign(state: Any, person: str, stage: str) -> Any:
    assert state.post is not None
    cmd = Sign(
        post_id="P1",
        stage=stage,
        decision="agree",
        opinion=None,
        content_digest=state.post.content_digest,
        signer_id=person,
        signer_roles=ROLES[person],
        meta=Meta(command_id=f"sign-{person}", at=AT),
    )
    return fold(decide(cmd, state), state)


def test_review_shows_the_id_only_to_the_reviewer_the_chain_awaits() -> None:
    state = fold([_env(submitted())])
    assert state.post is not None and state.post.needs_secrecy_review

    def title(person: str) -> str:
        seen = as_read_by(state, person, ROLES[person])
        assert seen.post is not None
        return seen.post.title

    assert [title(p) for p in ("maker", "office", "leader")] == [masked(state).post.title] * 3
    assert ID not in masked(state).model_dump_json()
    assert title("secrecy") == TITLE and reads_unmasked(state, "secrecy", ROLES["secrecy"])
    state = _sign(state, "secrecy", "secrecy")
    assert (title("secrecy"), title("leader")) == (TITLE.replace(ID, ID_MASKED), TITLE)
    state = _sign(state, "leader", "leader")
    assert ID not in title("leader")


def test_masking_a_masked_state_changes_nothing_and_covers_every_version() -> None:
    revised = PostRevised(
        unit=UNIT,
        title=f"修订：{ID}",
        body="正文",
        information_date=TODAY,
        content_version=2,
        content_digest="e" * 64,
        screening=screen_post({"title": f"修订：{ID}"}, TODAY),
    )
    state = fold([_env(submitted(source=f"来源{ID}")), _env(revised)])
    once = masked(state)
    assert ID not in once.model_dump_json()
    assert masked(once) == once
