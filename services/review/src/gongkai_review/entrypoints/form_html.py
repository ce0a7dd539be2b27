"""Attachment 1 as printable A4 HTML.

The layout follows the notice's table: unit and date above; serial number, department, item,
origin, channel, staff opinion, principal leader opinion and handler in one row; the notice's
three notes below. Cells carry ids and data attributes so a machine can read a filled-in form
back (the tests do).
"""

from __future__ import annotations

from html import escape

from gongkai_review.domain.form import CHANNELS, KINDS, ORIGINS, Opinion, ReviewForm

TITLE = "机关、单位信息公开平台信息发布保密审查表"

OUTCOMES = {
    None: ("审查中", "in review: not yet concluded"),
    "approved": ("审核通过", "approved"),
    "rejected": ("未通过", "rejected"),
    "voided": ("已作废", "voided"),
}

CSS = """
@page { size: A4 landscape; margin: 15mm; }
* { box-sizing: border-box; }
body { font-family: "SimSun", "Songti SC", "Noto Serif CJK SC", serif; font-size: 11pt;
       color: #000; margin: 0 auto; max-width: 267mm; }
.attachment { margin: 0 0 4mm; }
h1 { font-size: 16pt; text-align: center; margin: 0; letter-spacing: 1pt; }
.en { font-family: Helvetica, Arial, sans-serif; font-size: 7.5pt; color: #333; }
h1 + .en { text-align: center; display: block; margin-bottom: 5mm; }
.header { display: flex; justify-content: space-between; margin-bottom: 2mm; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; }
th, td { border: 1px solid #000; padding: 2mm; vertical-align: top; word-wrap: break-word; }
th { font-weight: normal; text-align: center; }
.box { white-space: nowrap; }
.words { margin: 2mm 0 0; white-space: pre-wrap; }
.sig { margin: 2mm 0 0; text-align: right; }
.record { margin-top: 4mm; font-size: 8pt; }
.record code { font-size: 7pt; word-break: break-all; }
.notes { font-size: 9pt; margin-top: 3mm; padding-left: 5mm; }
.stamp { float: right; border: 2px solid #b00; color: #b00; padding: 1mm 3mm; font-size: 12pt;
         transform: rotate(-6deg); }
@media print { .record { page-break-inside: avoid; } }
"""


def _tick(on: bool) -> str:
    return "☑" if on else "☐"


def _date(form_date: object) -> str:
    if form_date is None:
        return "____年__月__日"
    y, m, d = str(form_date).split("-")
    return f"{int(y)}年{int(m)}月{int(d)}日"


def _opinion_cell(cell_id: str, op: Opinion) -> str:
    attrs = f'id="{cell_id}" data-decision="{escape(op.decision or "")}"'
    if op.signer_id:
        attrs += f' data-signer="{escape(op.signer_id)}"'
    parts = [
        f'<span class="box">{_tick(op.decision == "agree")} 同意</span><br>',
        f'<span class="box">{_tick(op.decision == "disagree")} 不同意</span>',
    ]
    if op.opinion:
        parts.append(f'<p class="words">{escape(op.opinion)}</p>')
    if op.signer_name:
        parts.append(
            f'<p class="sig">签字 <span class="signer">{escape(op.signer_name)}</span><br>'
            f"{_date(op.signed_on)}</p>"
        )
    elif not op.required:
        parts.append('<p class="sig en">not required for this item</p>')
    return f"<td {attrs}>{''.join(parts)}</td>"


def render(form: ReviewForm) -> str:
    outcome_zh, outcome_en = OUTCOMES.get(form.outcome, OUTCOMES[None])
    origin = "<br>".join(
        f'<span class="box">{_tick(form.origin == key)} {label}</span>'
        + (
            f'(注明转载来源):<span id="source">{escape(form.source or "")}</span>'
            if key == "reprinted"
            else ""
        )
        for key, label in ORIGINS
    )
    channel = "<br>".join(
        f'<span class="box">{_tick(form.channel == key)} {label}</span>' for key, label in CHANNELS
    )
    kind = KINDS.get(form.important_kind or "", "")
    item = escape(form.item)
    if kind:
        item += f'<br><span class="en">{kind} · {escape(form.column)}</span>'
    else:
        item += f'<br><span class="en">{escape(form.column)}</span>'

    secrecy = ""
    if form.secrecy is not None:
        secrecy = (
            '<table class="secrecy"><tr>'
            '<th style="width:30%">保密审查(保密机构)<br><span class="en">secrecy review by the '
            "unit's confidentiality body (note 3)</span></th>"
            + _opinion_cell("secrecy-opinion", form.secrecy)
            + "</tr></table>"
        )

    evidence = "".join(f"<li><code>{escape(e)}</code></li>" for e in form.evidence)
    reason = (
        f'<br>理由 reason: <span id="outcome-reason">{escape(form.outcome_reason)}</span>'
        if form.outcome_reason
        else ""
    )
    version = f"第{form.content_version}版 · " if form.content_version else ""
    return f"""<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>{TITLE} · {escape(form.post_id)}</title>
<style>{CSS}</style>
</head>
<body data-post="{escape(form.post_id)}" data-chain="{form.chain}"
      data-outcome="{escape(form.outcome or "")}">
<span class="stamp" id="outcome">{outcome_zh}</span>
<p class="attachment">附件1</p>
<h1>{TITLE}</h1>
<span class="en">Confidentiality review form for publishing on the information disclosure
platform</span>
<div class="header">
  <span>单位:<span id="unit" data-unit="{escape(form.unit_code)}">{escape(form.unit_name)}</span>
  (盖章)</span>
  <span id="form-date">{_date(form.form_date)}</span>
</div>
<table class="form">
<colgroup><col style="width:8%"><col style="width:11%"><col style="width:18%">
<col style="width:14%"><col style="width:10%"><col style="width:14%"><col style="width:14%">
<col style="width:11%"></colgroup>
<thead><tr>
<th>序号<br><span class="en">No.</span></th>
<th>部门<br><span class="en">department</span></th>
<th>信息名称<br><span class="en">item</span></th>
<th>信息来源<br><span class="en">origin</span></th>
<th>公开方式<br><span class="en">channel</span></th>
<th>工作机构或者人员审查意见<br><span class="en">staff opinion</span></th>
<th>主要领导意见<br><span class="en">principal leader</span></th>
<th>承办人(签字)<br><span class="en">handler</span></th>
</tr></thead>
<tbody><tr>
<td id="serial">{escape(form.serial or "—")}</td>
<td id="department">{escape(form.department)}</td>
<td id="item">{item}</td>
<td id="origin" data-origin="{escape(form.origin)}">{origin}</td>
<td id="channel" data-channel="{escape(form.channel)}">{channel}</td>
{_opinion_cell("staff-opinion", form.staff)}
{_opinion_cell("leader-opinion", form.leader)}
<td id="handler" data-person="{escape(form.handler_id)}">{escape(form.handler_name)}</td>
</tr></tbody>
</table>
{secrecy}
<ol class="notes">
<li>本单位规范性文件、公告、重大决策等重要信息发布应当填写本表,由单位主要负责人进行审核签字然后存档;</li>
<li>请在对应的“□”打“√”;</li>
<li>不确定信息是否可以公开时,应当由机关、单位保密机构工作组织机构保密审查。</li>
</ol>
<div class="record">
审查记录 <span class="en">review record, generated from the event log (not typed by hand)</span>:
post <code>{escape(form.post_id)}</code> · 第{form.chain}轮 chain {form.chain} of {form.chains} ·
结论 <span class="en">outcome</span> {outcome_zh} ({outcome_en}){reason}<br>
{version}内容摘要 <span class="en">content sha256</span>
<code id="content-digest">{escape(form.content_digest)}</code>
<ol class="evidence">{evidence}</ol>
</div>
</body>
</html>
"""
