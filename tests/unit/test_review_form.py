"""Attachment 1 filled in from a review state, rendered, and read back."""

from __future__ import annotations

from datetime import date
from html.parser import HTMLParser

from gongkai_review.domain.chain import decide, fold
from gongkai_review.domain.form import build_form, pick_chain
from gongkai_review.entrypoints.form_html import TITLE, render
from tests.unit.test_review_chain import (
    D1,
    D2,
    LEADER,
    MAKER,
    SECRECY,
    STAFF,
    revised,
    sign_cmd,
    signed,
    submitted,
)

NAMES = {MAKER: "王承办", STAFF: "李审查", LEADER: "张主任", SECRECY: "赵保密"}


class FormReader(HTMLParser):
    """Collects, for every element with an id, its attributes and its text (children included)."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[str, dict[str, str]] = {}
        self._open: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in ("br", "col", "meta"):
            return
        ident = a.get("id")
        if ident:
            self.cells[ident] = {**a, "text": ""}
        self._open.append((tag, ident))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            t, _ = self._open.pop()
            if t == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, ident in self._open:
            if ident:
                self.cells[ident]["text"] += data


def read(html: str) -> dict[str, dict[str, str]]:
    r = FormReader()
    r.feed(html)
    return r.cells


def test_normative_document_form_shows_both_opinions_and_the_handler() -> None:
    state = fold([submitted("normative_document")])
    state = fold(
        decide(sign_cmd(STAFF, "staff", "agree", "数据已核对,同意公开", state=state), state), state
    )
    state = signed(state, LEADER, "leader")
    chain = pick_chain(state, None)
    assert chain is not None
    form = build_form(state, chain, names=NAMES, unit_name="县财政局", serial="000042")
    cells = read(render(form))
    assert cells["unit"]["text"] == "县财政局" and cells["unit"]["data-unit"] == "finance"
    assert cells["serial"]["text"] == "000042"
    assert cells["form-date"]["text"] == "2026年3月2日"
    assert "关于印发某办法的通知" in cells["item"]["text"]
    assert "规范性文件" in cells["item"]["text"]
    assert cells["origin"]["data-origin"] == "produced"
    assert "☑ 本机关、单位制发" in cells["origin"]["text"]
    assert "☑ 网站公开" in cells["channel"]["text"] and "☐ 其他" in cells["channel"]["text"]
    staff = cells["staff-opinion"]
    assert staff["data-decision"] == "agree" and staff["data-signer"] == STAFF
    assert "☑ 同意" in staff["text"] and "☐ 不同意" in staff["text"]
    assert "数据已核对,同意公开" in staff["text"] and "李审查" in staff["text"]
    leader = cells["leader-opinion"]
    assert leader["data-decision"] == "agree" and "张主任" in leader["text"]
    assert cells["handler"]["text"] == "王承办" and cells["handler"]["data-person"] == MAKER
    assert cells["outcome"]["text"] == "审核通过"
    assert cells["content-digest"]["text"] == D1
    assert "secrecy-opinion" not in cells
    assert TITLE in render(form)
    assert form.evidence[0] == state.post.versions[0].event_id  # type: ignore[union-attr]
    assert len(form.evidence) == 4  # submission, two signatures, conclusion


def test_form_of_a_rejected_flagged_post_and_of_its_new_chain() -> None:
    state = fold([submitted(flagged=True)])
    state = signed(state, SECRECY, "secrecy", "disagree")
    first = pick_chain(state, 1)
    assert first is not None
    cells = read(render(build_form(state, first, names=NAMES, unit_name=None, serial=None)))
    assert cells["secrecy-opinion"]["data-decision"] == "disagree"
    assert "☑ 不同意" in cells["secrecy-opinion"]["text"]
    assert "不同意发布" in cells["secrecy-opinion"]["text"]
    assert cells["outcome"]["text"] == "未通过"
    assert cells["serial"]["text"] == "—" and cells["unit"]["text"] == "finance"
    assert cells["leader-opinion"]["data-decision"] == ""

    state = fold([revised(by=STAFF, flagged=True)], state)
    fresh = pick_chain(state, None)
    assert fresh is not None and fresh.number == 1, "the latest recorded chain by default"
    assert pick_chain(state, 2) is None, "chain 2 has no signature yet"
    state = signed(state, SECRECY, "secrecy")
    second = pick_chain(state, None)
    assert second is not None and second.number == 2
    form = build_form(state, second, names=NAMES, unit_name="县财政局", serial=None)
    cells = read(render(form))
    # The handler is whoever made the version this chain reviews.
    assert cells["handler"]["text"] == "李审查"
    assert cells["content-digest"]["text"] == D2
    assert cells["item"]["text"].startswith("第2版")
    assert cells["outcome"]["text"] == "审查中"
    assert form.form_date == date(2026, 3, 2)
