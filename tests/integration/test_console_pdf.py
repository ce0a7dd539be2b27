"""The printable forms: Attachment 1 (a post's review form) and Attachment 2 (a unit's column
table) as PDF, filled in from a real log, looked at with poppler (pdftoppm: A4, not blank) and
read back (pdftotext: the Chinese is text, not boxes); served by the console, scoped like its
pages.

poppler-utils and the font come from the project's own set-up (deploy/scripts/pdf-tools.sh),
installed when missing, never skipped. ``GONGKAI_CONSOLE_SCREENSHOTS=1`` writes the pages'
PNGs to docs/console/ (the README and docs/accountability.md show them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gongkai.rules import default_catalog
from gongkai_accountability.adapters.log import fold_log
from gongkai_accountability.domain.report import as_of_view
from gongkai_accountability.domain.rows import Rows
from gongkai_accountability.domain.tables import POST, Post
from gongkai_accountability.entrypoints.console.views import is_blank
from gongkai_demo.county import DEMO, demo_token
from tests.conftest import Platform
from tests.consolekit import LATER_DAY, sign_in

ROOT = Path(__file__).resolve().parents[2]
A4_POINTS = {(595, 842), (842, 595)}


@pytest.fixture(scope="session")
def pdf_tools() -> str:
    """poppler-utils and Noto CJK, installed by the project's script if not there yet."""
    out = subprocess.run(
        ["sh", str(ROOT / "deploy/scripts/pdf-tools.sh")],
        capture_output=True, text=True, timeout=900, check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert shutil.which("pdftoppm") and shutil.which("pdftotext")
    return out.stdout.strip().splitlines()[-1]


def pdf_text(pdf: bytes, tmp: Path) -> str:
    """The text poppler reads out of the PDF, in reading order, without the line breaks and
    spaces a wrapped cell puts inside a phrase."""
    src = tmp / "form.pdf"
    src.write_bytes(pdf)
    out = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(src), "-"], capture_output=True, check=True, timeout=60
    )
    return re.sub(r"\s+", "", out.stdout.decode())


def pages_png(pdf: bytes, tmp: Path, name: str) -> list[Path]:
    """Each page as a PNG at 100 dpi, checked: A4 and with ink on it."""
    src = tmp / f"{name}.pdf"
    src.write_bytes(pdf)
    info = subprocess.run(
        ["pdfinfo", str(src)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    size = re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", info)
    assert size, info
    assert (round(float(size.group(1))), round(float(size.group(2)))) in A4_POINTS, info
    subprocess.run(
        ["pdftoppm", "-png", "-r", "100", str(src), str(tmp / name)], check=True, timeout=120
    )
    pngs = sorted(tmp.glob(f"{name}*.png"))
    assert pngs
    for page, png in enumerate(pngs, 1):
        gray = subprocess.run(
            ["pdftoppm", "-gray", "-r", "20", "-f", str(page), "-l", str(page), str(src)],
            capture_output=True, check=True, timeout=60,
        ).stdout
        # A PGM: header then one byte per pixel; a blank page is all white.
        pixels = gray.split(b"\n", 3)[3]
        dark = sum(1 for b in pixels if b < 128)
        assert dark > len(pixels) // 200, f"{png.name} looks blank ({dark} dark pixels)"
    return pngs


def keep_screenshots(pngs: list[Path], name: str) -> None:
    if os.environ.get("GONGKAI_CONSOLE_SCREENSHOTS") != "1":
        return
    target = ROOT / "docs/console"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pngs[0], target / f"{name}.png")


def reviewed_post(rows: Rows, unit: str) -> Post:
    """A post of ``unit`` that went online after its leader signed it."""
    return next(
        p
        for _, p in rows.scan(POST)
        if p.unit == unit
        and p.publications
        and any(s.what == "signed:leader" for s in p.trail)
    )


async def test_forms_print_as_a4_pdf_with_their_chinese_text(
    county: Platform, pdf_tools: str, tmp_path: Path
) -> None:
    rows = (await fold_log(county.evlog, until=LATER_DAY)).rows
    post = reviewed_post(rows, "finance")
    client = county.client
    await sign_in(client, demo_token(DEMO.person("county-office", "office")))

    r = await client.get(f"/console/posts/{post.post_id}/form.pdf")
    assert r.status_code == 200, r.text[:2000]
    assert r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF-")
    text = pdf_text(r.content, tmp_path)
    staff = next(s for s in post.trail if s.what == "signed:staff")
    for want in (
        "机关、单位信息公开平台信息发布保密审查表",
        "文河县财政局",
        re.sub(r"\s+", "", post.title)[:8],
        "工作机构或者人员审查意见",
        "主要领导意见",
        "北京时间",
    ):
        assert want in text, (want, text)
    if staff.opinion:
        assert re.sub(r"\s+", "", staff.opinion)[:6] in text
    keep_screenshots(pages_png(r.content, tmp_path, "form"), "attachment1")

    r = await client.get(
        "/console/units/market/attachment2.pdf", params={"date": LATER_DAY.isoformat()}
    )
    assert r.status_code == 200, r.text[:2000]
    text = pdf_text(r.content, tmp_path)
    for want in (
        "政府信息公开平台专版体裁栏目信息更新时限表",
        "文河县市场监督管理局",
        "概况信息", "领导成员和分工", "规范性文件", "行政处罚", "至少每半年更新一次",
    ):
        assert want in text, (want, text)
    # Each column's state is as_of_view's: every blank column of the day says so.
    view = as_of_view(rows, LATER_DAY, "market")
    blank = [c for c in view["stale_columns"] if is_blank(rows, "market", c["column"])]
    assert blank and text.count("空白栏目") >= len(blank)
    keep_screenshots(pages_png(r.content, tmp_path, "table"), "attachment2")

    # The same forms as sections of the post and unit pages, linking to the PDFs.
    page = await client.get(
        f"/console/posts/{post.post_id}", params={"date": LATER_DAY.isoformat()}
    )
    assert 'data-testid="attachment1"' in page.text and "form.pdf" in page.text
    assert "主要领导意见" in page.text and "√ 同意" in page.text
    page = await client.get("/console/units/market", params={"date": LATER_DAY.isoformat()})
    assert page.text.count('<tr data-column="') == len(default_catalog().columns)
    states = dict(re.findall(r'data-column="([^"]+)" data-state="([^"]+)"', page.text))
    assert {c for c, st in states.items() if st in ("stale", "blank")} == {
        c["column"] for c in view["stale_columns"]
    }
    assert states["administrative_penalties"] == "fresh"  # the late decision went online
    assert states["housing_security"] == "hidden"  # only the housing bureau keeps it
    assert "attachment2.pdf" in page.text
    assert '<th rowspan="5">行政执法</th>' in page.text  # a group's merged cell

    # English from the catalogue, the notice's terms translated.
    en = await client.get("/console/units/market/attachment2.pdf", params={"lang": "en"})
    assert "Updatedeadlines" in pdf_text(en.content, tmp_path)


async def test_a_unit_prints_only_its_own_forms(county: Platform, pdf_tools: str) -> None:
    rows = (await fold_log(county.evlog)).rows
    finance_post = reviewed_post(rows, "finance")
    client = county.client
    await sign_in(client, demo_token(DEMO.person("market", "leader")))
    assert (await client.get("/console/units/market/attachment2.pdf")).status_code == 200
    assert (await client.get("/console/units/finance/attachment2.pdf")).status_code == 403
    mine = next(p for _, p in rows.scan(POST) if p.unit == "market")
    assert (await client.get(f"/console/posts/{mine.post_id}/form.pdf")).status_code == 200
    r = await client.get(f"/console/posts/{finance_post.post_id}/form.pdf")
    assert r.status_code == 403 and b"%PDF" not in r.content
    assert (await client.get("/console/posts/no-such-post/form.pdf")).status_code == 404
    assert (await client.get("/console/units/nosuchunit/attachment2.pdf")).status_code == 404
