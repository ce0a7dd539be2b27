"""The notice's forms as PDF for filing: Attachment 1 (one post's review form) and Attachment 2
(one unit's column table), laid out like the official forms on A4 landscape.

fpdf2 writes them: pure Python from PyPI (fontTools, Pillow and defusedxml beside it), no
system library but the font, and it subsets the font into each file, so a form of one page is
tens of kilobytes. The font is Debian's Noto Sans CJK SC (``fonts-noto-cjk``), found by
``fc-match``, a known Debian path, or ``GONGKAI_CJK_FONT``; a machine without it gets a clear
``FontMissing``, never boxes in place of the Chinese. Only the regular face is embedded:
headings are set apart by shading, which halves the font work of every file.

The words come from the page (its language's gettext, units, people and columns by name) and
every time is Beijing time with the zone shown, as on the console's pages.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import Align, TableCellFillMode, VAlign, WrapMode
from fpdf.fonts import FontFace

from gongkai.vocabulary import (
    COLUMN_STATES,
    IMPORTANT_KINDS,
    REVIEW_OUTCOMES,
    REVIEW_STAGE_TITLES,
)
from gongkai_accountability.entrypoints.console import labels
from gongkai_accountability.entrypoints.console.forms import (
    Attachment1,
    Attachment2,
)
from gongkai_accountability.entrypoints.console.i18n import beijing

#: Debian's fonts-noto-cjk: Noto Sans CJK in one collection; face 2 is the Simplified Chinese.
DEBIAN_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
DEBIAN_FACE = 2
FONT_ENV = "GONGKAI_CJK_FONT"
FAMILY = "cjk"
HEAD = FontFace(emphasis="", fill_color=(232, 232, 232))
#: Cell padding (mm) on every side: nothing touches a border.
PAD = 1.8
TICK, BOX = "√", "□"


class FontMissing(RuntimeError):
    """No Chinese font on this machine: the forms cannot be printed legibly."""


@dataclass(frozen=True)
class Font:
    path: Path
    face: int


@functools.cache
def find_font() -> Font:
    """The CJK font the forms embed: ``GONGKAI_CJK_FONT`` (``path`` or ``path#face``), else
    what fontconfig calls Noto Sans CJK SC, else Debian's path."""
    given = os.environ.get(FONT_ENV)
    if given:
        path, _, face = given.partition("#")
        if not Path(path).is_file():
            raise FontMissing(f"{FONT_ENV}={given}: no such font file")
        return Font(Path(path), int(face or 0))
    fc = shutil.which("fc-match")
    if fc is not None:
        try:
            out = subprocess.run(
                [fc, "-f", "%{file}|%{index}", "Noto Sans CJK SC:style=Regular"],
                capture_output=True, text=True, timeout=10, check=False,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        path, _, face = out.partition("|")
        # fontconfig answers its nearest font when the asked one is absent: only a CJK one
        # carries the Chinese.
        if "CJK" in path and Path(path).is_file():
            return Font(Path(path), int(face or 0))
    if DEBIAN_FONT.is_file():
        return Font(DEBIAN_FONT, DEBIAN_FACE)
    raise FontMissing(
        "no Chinese font for the printable forms: install Debian's fonts-noto-cjk "
        f"(deploy/scripts/pdf-tools.sh) or set {FONT_ENV}=/path/to/font.ttc#face"
    )


@dataclass(frozen=True)
class Words:
    """What the page knows how to say: its language, names for codes, Beijing time."""

    lang: str
    gettext: Callable[[str], str]
    unit: Callable[[str], str]
    person: Callable[[str], str]
    column: Callable[[str], str]

    def time(self, at: str | None) -> str:
        return beijing(at, self.gettext("北京时间")) if at else ""


class _Form(FPDF):
    def __init__(self, words: Words, title: str, footer: str) -> None:
        super().__init__(orientation="L", unit="mm", format="A4")
        font = find_font()
        self.add_font(FAMILY, fname=str(font.path), collection_font_number=font.face)
        self.set_font(FAMILY, size=10)
        self.set_margins(15, 14, 15)
        self.set_auto_page_break(True, margin=16)
        self.set_lang("zh-CN" if words.lang == "zh" else words.lang)
        self.set_title(title)
        self.set_creator("gongkai")
        self.c_margin = PAD
        self._footer = footer
        self._words = words

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FAMILY, size=7.5)
        self.set_text_color(90)
        page = self._words.gettext("第 %(page)d 页") % {"page": self.page_no()}
        self.cell(0, 5, f"{self._footer}    {page}", align="C")
        self.set_text_color(0)

    def heading(self, text: str, sub: str | None = None) -> None:
        self.set_font(FAMILY, size=16)
        self.cell(0, 10, text, align="C", new_x="LMARGIN", new_y="NEXT")
        if sub:
            self.set_font(FAMILY, size=9)
            self.cell(0, 6, sub, align="C", new_x="LMARGIN", new_y="NEXT")
        self.set_font(FAMILY, size=10)
        self.ln(2)

    def fields(self, pairs: list[tuple[str, str]]) -> None:
        """A header line of the form (单位, 日期, 联系人…), evenly spread over the width."""
        width = self.epw / len(pairs)
        for label, value in pairs:
            self.cell(width, 7, f"{label}{value}")
        self.ln(8)

    def notes(self, title: str, lines: list[str]) -> None:
        self.ln(3)
        self.set_font(FAMILY, size=9)
        self.multi_cell(0, 5, title, new_x="LMARGIN", new_y="NEXT")
        for line in lines:
            self.multi_cell(0, 5, line, new_x="LMARGIN", new_y="NEXT", wrapmode=WrapMode.CHAR)
        self.set_font(FAMILY, size=10)


def _table(pdf: _Form, widths: tuple[float, ...], **kw: object) -> object:
    return pdf.table(
        col_widths=widths,
        width=pdf.epw,
        text_align="LEFT",
        v_align=VAlign.M,
        wrapmode=WrapMode.CHAR,
        padding=PAD,
        line_height=5.2,
        headings_style=HEAD,
        cell_fill_mode=TableCellFillMode.NONE,
        **kw,
    )


def _boxes(choices: list[tuple[str, bool]]) -> str:
    return "\n".join(f"{TICK if on else BOX} {text}" for text, on in choices)


def attachment1_pdf(form: Attachment1, words: Words, as_of: str) -> bytes:
    """Attachment 1, 机关、单位信息公开平台信息发布保密审查表, filled in for one post."""
    _ = words.gettext
    title = _("机关、单位信息公开平台信息发布保密审查表")
    footer = _("据日志生成 · 截至 %(day)s · 稿件 %(post)s · 内容摘要值 %(digest)s") % {
        "day": as_of, "post": form.post_id, "digest": form.digest[:16],
    }
    pdf = _Form(words, title, footer)
    pdf.add_page()
    pdf.heading(title, _("附件1"))
    signed = form.signatures.get("leader")
    pdf.fields([
        (_("单位："), words.unit(form.unit)),
        (_("日期："), words.time(signed.at if signed else form.submitted_at)),
    ])

    def opinion(stage: str) -> str:
        s = form.signatures.get(stage)
        if s is None:
            return _boxes([(_("同意"), False), (_("不同意"), False)]) + "\n" + _("（尚未签署）")
        lines = [
            _boxes([(_("同意"), s.decision == "agree"), (_("不同意"), s.decision == "disagree")]),
        ]
        if s.opinion:
            lines.append(s.opinion)
        lines.append(_("签字：%(name)s") % {"name": words.person(s.person)})
        lines.append(words.time(s.at))
        return "\n".join(lines)

    origin = _boxes([
        (_("本机关、单位制发"), form.origin == "produced"),
        (
            _("转载（注明转载来源）：%(source)s") % {"source": form.source or ""}
            if form.origin == "reprinted"
            else _("转载（注明转载来源）"),
            form.origin == "reprinted",
        ),
    ])
    channel = _boxes([
        (_("网站公开"), form.channel == "website"),
        (_("依申请公开"), form.channel == "on_request"),
        (_("其他"), form.channel == "other"),
    ])
    with _table(pdf, (10, 30, 46, 36, 26, 40, 40, 39)) as t:  # type: ignore[attr-defined]
        head = t.row()
        for text in (
            _("序号"), _("部门"), _("信息标题"), _("信息来源"), _("公开方式"),
            labels.label(REVIEW_STAGE_TITLES, "staff", _),
            labels.label(REVIEW_STAGE_TITLES, "leader", _),
            _("承办人（签字）"),
        ):
            head.cell(text, align=Align.C)
        row = t.row()
        row.cell("1", align=Align.C)
        row.cell(words.unit(form.unit) + "\n" + _("栏目：%(column)s") % {
            "column": words.column(form.column)})
        kind = labels.label(IMPORTANT_KINDS, form.important_kind, _)
        row.cell(form.title + (f"\n（{kind}）" if kind else ""))
        row.cell(origin)
        row.cell(channel)
        row.cell(opinion("staff"))
        row.cell(opinion("leader"))
        row.cell(
            words.person(form.maker) + "\n" + words.time(form.submitted_at)
        )

    pdf.ln(4)
    s = form.signatures.get("secrecy")
    if s is not None:
        secrecy = opinion("secrecy")
    elif form.secrecy_needed:
        secrecy = _("需经保密审查，尚未签署。")
    else:
        secrecy = _("无需保密审查：内容筛查未发现疑点，承办人未申请。")
    concluded = REVIEW_OUTCOMES.get(form.outcome or "")
    outcome = _(concluded) if concluded is not None else _("审核进行中")
    record = [
        (_("保密审查（保密机构）"), secrecy),
        (
            _("审核结论"),
            outcome + (f"  {words.time(form.concluded_at)}" if form.concluded_at else "")
            + ("\n" + _("审核链 %(chain)s · 第 %(version)d 版内容") % {
                "chain": form.chain, "version": form.version} if form.chain is not None else ""),
        ),
        (
            _("公开情况"),
            _("已撤回") if form.withdrawn
            else _("已公开：%(at)s") % {"at": words.time(form.published_at)}
            if form.published_at else _("未公开"),
        ),
        (_("信息形成日期"), form.information_date or ""),
    ]
    with _table(pdf, (50, 217), first_row_as_headings=False) as t:  # type: ignore[attr-defined]
        for label, value in record:
            r = t.row()
            r.cell(label, style=HEAD)
            r.cell(value)

    pdf.notes(_("说明："), [
        _("1、本单位规范性文件、公告、重大决策等重要信息发布应当填写本表，由单位主要负责人进行审核签字然后存档；"),
        _("2、请在对应的“□”打“√”；"),
        _("3、不确定信息是否可以公开时，应当由机关、单位保密机构工作组织机构保密审查。"),
    ])
    return bytes(pdf.output())


def attachment2_pdf(table: Attachment2, words: Words) -> bytes:
    """Attachment 2, 政府信息公开平台专版体裁栏目信息更新时限表, for one unit as of a day:
    the official columns (体裁栏目 with merged group cells, 更新时限, 是否保留), then who
    ticked and why, and the day's last publication, due date and state."""
    _ = words.gettext
    zh = words.lang == "zh"
    title = _("政府信息公开平台专版体裁栏目信息更新时限表")
    day = table.day.isoformat()
    footer = _("据日志生成 · 截至 %(day)s · %(unit)s") % {
        "day": day, "unit": words.unit(table.unit)
    }
    pdf = _Form(words, title, footer)
    pdf.add_page()
    pdf.heading(title, _("附件2 · 截至 %(day)s") % {"day": day})
    pdf.fields([
        (_("单位（盖章）："), words.unit(table.unit)),
        (_("报送时间："), words.time(table.submitted_at) or _("未勾选（按默认）")),
    ])
    pdf.fields([
        (_("信息公开联系人："), table.contact_name),
        (_("手机号："), table.contact_mobile),
    ])
    widths = (22, 32, 56, 14, 50, 40, 24, 29)
    with _table(pdf, widths, num_heading_rows=1) as t:  # type: ignore[attr-defined]
        head = t.row()
        head.cell(_("体裁栏目"), colspan=2, align=Align.C)
        for text in (
            _("更新时限"), _("是否保留"), _("勾选人、时间与理由"), _("最近发布"),
            _("应更新日期"), _("状态"),
        ):
            head.cell(text, align=Align.C)
        for _code, group_name, rows in table.groups():
            single = len(rows) == 1 and rows[0].name.zh == group_name.zh
            # Runs of one deadline within a group share a merged cell, as on the paper form:
            # the run's first row carries its length, the others none.
            spans = [0] * len(rows)
            i = 0
            while i < len(rows):
                j = i
                while j < len(rows) and rows[j].deadline == rows[i].deadline:
                    j += 1
                spans[i], i = j - i, j
            for i, r in enumerate(rows):
                row = t.row()
                if single:
                    row.cell(group_name.zh if zh else group_name.en, colspan=2)
                else:
                    if i == 0:
                        row.cell(group_name.zh if zh else group_name.en, rowspan=len(rows),
                                 align=Align.C)
                    row.cell(r.name.zh if zh else r.name.en)
                if spans[i]:
                    row.cell(r.deadline.zh if zh else r.deadline.en, rowspan=spans[i])
                if r.not_applicable:
                    row.cell(_("不适用"), align=Align.C)
                else:
                    row.cell("✓" if r.keep else "×", align=Align.C)
                if r.source == "unit":
                    who = f"{words.person(r.decided_by or '')}\n{words.time(r.decided_at)}"
                    row.cell(who + (f"\n{r.reason}" if r.reason else ""))
                else:
                    row.cell(_("按默认（单位未勾选）"))
                if r.last_publication:
                    row.cell(words.time(r.last_publication))
                else:
                    row.cell("—", align=Align.C)
                row.cell(r.due_date or "—", align=Align.C)
                row.cell(labels.label(COLUMN_STATES, r.state, _), align=Align.C)

    pdf.notes(_("说明："), [
        _("1、地区（行业）介绍、机构设置和职能等最新信息不具时效性的，可将最新一条信息的日期修改为当前日期。"),
        _("2、栏目信息全部删除后，该栏目在平台上自动隐藏。"),
        _("3、保留的栏目打“✓”，隐藏的栏目打“×”；隐藏后填写本表报县政府信息化工作办公室（政府大楼248室）。"),
        _("4、“应更新日期”：未按时更新或空白栏目为已过的应更新日期；正常栏目为按本表周期规则自最近发布起算的下一次应更新日期。"),
    ])
    return bytes(pdf.output())


__all__ = [
    "Font",
    "FontMissing",
    "Words",
    "attachment1_pdf",
    "attachment2_pdf",
    "find_font",
]
