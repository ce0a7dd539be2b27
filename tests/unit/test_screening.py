"""Content screening: classification marks and personal data, in both directions."""

from __future__ import annotations

from datetime import date

import pytest

from gongkai_intake.domain.screening import (
    ClassificationMark,
    PersonalDataSpan,
    ScreeningResult,
    is_valid_resident_id,
    luhn_ok,
    screen,
)

TODAY = date(2024, 6, 1)


# --- independent reference helpers -------------------------------------------------------------
# These follow the standards' definitions, not the module's tables, so one bug cannot
# show up in both the code and its test.


def id_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2: choose a1 so that sum(a_i * 2^(i-1)) == 1 (mod 11), i from the right."""
    partial = sum(int(c) * 2 ** (17 - j) for j, c in enumerate(first17))
    for value in range(11):
        if (partial + value) % 11 == 1:
            return "X" if value == 10 else str(value)
    raise AssertionError("unreachable")


def make_id(area: str, born: str, seq: str) -> str:
    first17 = area + born + seq
    assert len(first17) == 17
    return first17 + id_check_char(first17)


def luhn_reference(number: str) -> bool:
    doubled = [int(c) * (2 if i % 2 else 1) for i, c in enumerate(reversed(number))]
    return sum(d // 10 + d % 10 for d in doubled) % 10 == 0


def luhn_complete(prefix: str) -> str:
    return next(prefix + d for d in "0123456789" if luhn_reference(prefix + d))


def wrong_id_check(valid_id: str) -> str:
    return valid_id[:17] + ("0" if valid_id[17] != "0" else "1")


SAMPLE_ID = "11010519491231002X"  # the well-known GB 11643 example
ID_DIGIT_CHECK = make_id("440305", "19880229", "123")  # leap day
ID_LOWER_X = SAMPLE_ID.lower()
ID_MONTH_13 = make_id("110105", "19491331", "002")
ID_FEB_30 = make_id("110105", "19900230", "002")
ID_FUTURE = make_id("110105", "20240701", "002")
ID_1899 = make_id("110105", "18991231", "002")
# An ID whose 18 digits also pass Luhn must still come back as resident_id, not bank_card.
ID_ALSO_LUHN = next(
    i
    for i in (make_id("320102", "19750612", f"{n:03d}") for n in range(1000))
    if i[17] != "X" and luhn_reference(i)
)

CARD_19 = luhn_complete("622202123456789012")  # -> 6222021234567890128
CARD_20 = luhn_complete("6222021234567890123")  # Luhn-valid but too long for a card
TO_FULLWIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


def test_reference_helpers_agree_with_published_samples() -> None:
    assert make_id("110105", "19491231", "002") == SAMPLE_ID
    assert luhn_reference("4111111111111111")
    assert luhn_reference("5500000000000004")
    # The '6222021234567890123' sometimes quoted as a sample is NOT Luhn-valid.
    assert not luhn_reference("6222021234567890123")
    assert CARD_19 == "6222021234567890128"
    assert luhn_reference(ID_ALSO_LUHN)


# --- classification marks ----------------------------------------------------------------------

MARK_CASES = [
    pytest.param("机密★10年", [("机密", "机密★10年")], id="jimi-10y"),
    pytest.param("绝密★长期", [("绝密", "绝密★长期")], id="juemi-long"),
    pytest.param("秘密★1年", [("秘密", "秘密★1年")], id="mimi-1y"),
    pytest.param("机密★会议开始前", [("机密", "机密★会议开始前")], id="condition"),
    pytest.param("秘密★6个月", [("秘密", "秘密★6个月")], id="months"),
    pytest.param("绝密★启用前", [("绝密", "绝密★启用前")], id="before-use"),
    pytest.param("密级：机密 ★ 10年", [("机密", "机密 ★ 10年")], id="ascii-spaces"),
    pytest.param("机密\u3000★\u300010年", [("机密", "机密\u3000★\u300010年")], id="ideographic-sp"),
    pytest.param("秘密\u00a0★\u00a01年", [("秘密", "秘密\u00a0★\u00a01年")], id="nbsp"),
    pytest.param("机密★１０年", [("机密", "机密★１０年")], id="fullwidth-digits"),
    pytest.param("绝密★十年", [("绝密", "绝密★十年")], id="chinese-numeral"),
    pytest.param("秘密★2025年12月31日前", [("秘密", "秘密★2025年12月31日前")], id="date-condition"),
    pytest.param("机密★", [("机密", "机密★")], id="truncated"),
    pytest.param("附件机密★，请勿外传。", [("机密", "机密★")], id="truncated-in-text"),
    pytest.param("机密*10年", [("机密", "机密*10年")], id="ascii-asterisk-with-period"),
    pytest.param("绝密＊长期", [("绝密", "绝密＊长期")], id="fullwidth-asterisk"),
    pytest.param(
        "一份机密★1年，一份秘密★6个月",
        [("机密", "机密★1年"), ("秘密", "秘密★6个月")],
        id="two-marks",
    ),
    # not marks
    pytest.param("推荐阅读《秘密花园》一书。", [], id="book-title"),
    pytest.param("依法保护商业秘密。", [], id="trade-secret"),
    pytest.param("全体干部要保守国家秘密。", [], id="keep-state-secrets"),
    pytest.param("机密文件管理办法解读", [], id="bare-jimi"),
    pytest.param("**保守秘密**之前", [], id="markdown-bold"),
    pytest.param("秘密*花园", [], id="asterisk-without-period"),
    pytest.param("机密*", [], id="asterisk-alone"),
    pytest.param("机密☆10年", [], id="white-star-not-accepted"),
    pytest.param("绝密资料★五星推荐", [], id="star-not-after-level"),
]


@pytest.mark.parametrize(("text", "expected"), MARK_CASES)
def test_classification_marks(text: str, expected: list[tuple[str, str]]) -> None:
    result = screen({"body": text}, today=TODAY)
    assert [(m.level, text[m.start : m.end]) for m in result.marks] == expected
    assert all(m.field == "body" for m in result.marks)
    assert result.refused is bool(expected)
    assert not result.spans


def test_mark_in_title_and_attachment_name_reports_field() -> None:
    result = screen(
        {
            "title": "关于会议的通知（机密★5年）",
            "body": "正文无密级。",
            "attachment[0].name": "日程.docx",
            "attachment[1].name": "绝密★启用前-试题.pdf",
        },
        today=TODAY,
    )
    assert result.refused
    assert result.marks == (
        ClassificationMark(field="title", start=8, end=13, level="机密"),
        ClassificationMark(field="attachment[1].name", start=0, end=6, level="绝密"),
    )


# --- personal data -----------------------------------------------------------------------------

PD_CASES = [
    # resident IDs
    pytest.param(
        f"身份证号：{SAMPLE_ID}。",
        [("resident_id", SAMPLE_ID, "110105********002X")],
        id="id-sample",
    ),
    pytest.param(
        f"身份证号码{ID_LOWER_X}",
        [("resident_id", ID_LOWER_X, "110105********002X")],
        id="id-lowercase-x",
    ),
    pytest.param(
        f"号码{ID_DIGIT_CHECK}，",
        [("resident_id", ID_DIGIT_CHECK, f"440305********{ID_DIGIT_CHECK[-4:]}")],
        id="id-leap-day-digit-check",
    ),
    pytest.param(
        "身份证 110105 19491231 002X",
        [("resident_id", "110105 19491231 002X", "110105********002X")],
        id="id-grouped",
    ),
    pytest.param(
        "身份证" + SAMPLE_ID.translate(TO_FULLWIDTH),
        [("resident_id", SAMPLE_ID.translate(TO_FULLWIDTH), "110105********002X")],
        id="id-fullwidth",
    ),
    pytest.param(
        f"证件{ID_ALSO_LUHN}",
        [("resident_id", ID_ALSO_LUHN, ID_ALSO_LUHN[:6] + "*" * 8 + ID_ALSO_LUHN[-4:])],
        id="id-wins-over-luhn",
    ),
    pytest.param(f"身份证号：{wrong_id_check(SAMPLE_ID)}", [], id="id-wrong-check"),
    pytest.param(f"身份证号：{ID_MONTH_13}", [], id="id-month-13"),
    pytest.param(f"身份证号：{ID_FEB_30}", [], id="id-feb-30"),
    pytest.param(f"身份证号：{ID_FUTURE}", [], id="id-born-in-future"),
    pytest.param(f"身份证号：{ID_1899}", [], id="id-born-1899"),
    pytest.param(f"ID{SAMPLE_ID}", [], id="id-glued-to-letters"),
    pytest.param(f"9{SAMPLE_ID}", [], id="id-longer-digit-run"),
    # mobiles
    pytest.param("联系电话13800138000。", [("mobile", "13800138000", "138****8000")], id="mob"),
    pytest.param("电话：+8613912345678", [("mobile", "13912345678", "139****5678")], id="mob+86"),
    pytest.param(
        "电话：+86 139-1234-5678", [("mobile", "139-1234-5678", "139****5678")], id="mob+86-sep"
    ),
    pytest.param("电话8615012345678", [("mobile", "15012345678", "150****5678")], id="mob-86"),
    pytest.param(
        "手机：138-0013-8000", [("mobile", "138-0013-8000", "138****8000")], id="mob-hyphens"
    ),
    pytest.param(
        "手机：138 0013 8000", [("mobile", "138 0013 8000", "138****8000")], id="mob-spaces"
    ),
    pytest.param(
        "电话１３８００１３８０００",
        [("mobile", "１３８００１３８０００", "138****8000")],
        id="mob-fw",
    ),
    pytest.param(
        "张三_13800138000.pdf",
        [("mobile", "13800138000", "138****8000")],
        id="mob-in-file-name",
    ),
    pytest.param(
        "邮箱13800138000@qq.com",
        [("mobile", "13800138000", "138****8000")],
        id="mob-as-email-local-part",
    ),
    pytest.param(
        "电话13800138000/13900139000",
        [("mobile", "13800138000", "138****8000"), ("mobile", "13900139000", "139****9000")],
        id="mob-slash-list",
    ),
    pytest.param("文政办〔2018〕13800138000号", [], id="mob-in-doc-number"),
    pytest.param("冀政办字〔2019〕13号、文政办〔2018〕34号", [], id="doc-numbers"),
    pytest.param("No.13800138000-A", [], id="mob-after-No"),
    pytest.param("编号：DOC13912345678", [], id="mob-glued-letters"),
    pytest.param("编号：13912345678", [], id="mob-after-bianhao"),
    pytest.param("文号 13912345678", [], id="mob-after-wenhao"),
    pytest.param("第13800138000号", [], id="mob-ordinal"),
    pytest.param("序列013800138000", [], id="mob-leading-digit"),
    pytest.param("序列138001380001", [], id="mob-trailing-digit"),
    pytest.param("版本3.13800138000", [], id="mob-decimal"),
    pytest.param("138-0013-8000-1234", [], id="mob-longer-grouping"),
    pytest.param("号码12800138000", [], id="not-mobile-prefix-12"),
    pytest.param("电话0311-86012345", [], id="landline"),
    # bank cards
    pytest.param(
        "卡号4111111111111111", [("bank_card", "4111111111111111", "411111******1111")], id="card"
    ),
    pytest.param(
        "卡号：4111 1111 1111 1111",
        [("bank_card", "4111 1111 1111 1111", "411111******1111")],
        id="card-spaces",
    ),
    pytest.param(
        "卡号：4111-1111-1111-1111",
        [("bank_card", "4111-1111-1111-1111", "411111******1111")],
        id="card-hyphens",
    ),
    pytest.param(f"账号{CARD_19}", [("bank_card", CARD_19, "622202*********0128")], id="card-19"),
    pytest.param(
        "账号6222 0212 3456 7890 128",
        [("bank_card", "6222 0212 3456 7890 128", "622202*********0128")],
        id="card-19-grouped",
    ),
    pytest.param(
        "万事达5500000000000004", [("bank_card", "5500000000000004", "550000******0004")], id="mc"
    ),
    pytest.param("卡号4111111111111112", [], id="card-luhn-fail"),
    pytest.param("卡号6222021234567890123", [], id="card-19-luhn-fail"),
    pytest.param("0000000000000000", [], id="card-leading-zero"),
    pytest.param(f"流水{CARD_20}", [], id="card-20-digits"),
    pytest.param("4111 1111 1111 1111 1111", [], id="card-five-groups"),
    pytest.param("编号：4111111111111111", [], id="card-after-bianhao"),
    pytest.param("X4111111111111111", [], id="card-glued-letter"),
]


@pytest.mark.parametrize(("text", "expected"), PD_CASES)
def test_personal_data(text: str, expected: list[tuple[str, str, str]]) -> None:
    result = screen({"body": text}, today=TODAY)
    assert [(s.kind, text[s.start : s.end], s.masked) for s in result.spans] == expected
    assert all(s.field == "body" for s in result.spans)
    assert result.needs_secrecy_review is bool(expected)
    assert not result.refused


def test_multiple_findings_across_fields_with_offsets() -> None:
    body = (
        f"申请人张三，身份证{SAMPLE_ID}，手机+86 138 0013 8000，"
        "退款账户6222 0212 3456 7890 128。另，李四电话13912345678。"
    )
    fields = {
        "title": "关于张三（13700137000）的申请",
        "body": body,
        "attachment[0].name": f"身份证_{SAMPLE_ID}.jpg",
    }
    result = screen(fields, today=TODAY)
    assert not result.refused
    assert result.needs_secrecy_review
    got = [(s.field, s.kind, fields[s.field][s.start : s.end], s.masked) for s in result.spans]
    assert got == [
        ("title", "mobile", "13700137000", "137****7000"),
        ("body", "resident_id", SAMPLE_ID, "110105********002X"),
        ("body", "mobile", "138 0013 8000", "138****8000"),
        ("body", "bank_card", "6222 0212 3456 7890 128", "622202*********0128"),
        ("body", "mobile", "13912345678", "139****5678"),
        ("attachment[0].name", "resident_id", SAMPLE_ID, "110105********002X"),
    ]


def test_mark_and_personal_data_together() -> None:
    result = screen({"body": "机密★1年 联系人13800138000"}, today=TODAY)
    assert result.refused
    assert result.needs_secrecy_review
    assert [s.kind for s in result.spans] == ["mobile"]


def test_result_never_contains_raw_personal_data() -> None:
    # (raw value, the part masking must hide)
    raws = [
        (SAMPLE_ID, SAMPLE_ID[6:14]),
        ("13872659000", "7265"),
        ("4111111111111111", "111111"),
        (CARD_19, CARD_19[6:15]),
    ]
    result = screen({"body": "，".join(raw for raw, _ in raws)}, today=TODAY)
    assert len(result.spans) == 4
    dumped = repr(result)
    for raw, hidden in raws:
        assert raw not in dumped
        assert hidden not in dumped


def test_clean_post() -> None:
    result = screen({"title": "2024年政府工作报告", "body": "全文共计12000字。"}, today=TODAY)
    assert result == ScreeningResult(marks=(), spans=())
    assert not result.refused
    assert not result.needs_secrecy_review


def test_result_types_are_frozen() -> None:
    span = PersonalDataSpan(kind="mobile", field="body", start=0, end=11, masked="138****8000")
    with pytest.raises(AttributeError):
        span.masked = "x"  # type: ignore[misc]


# --- validators --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "today", "ok"),
    [
        (SAMPLE_ID, TODAY, True),
        (ID_LOWER_X, TODAY, True),
        (ID_DIGIT_CHECK, TODAY, True),
        (wrong_id_check(SAMPLE_ID), TODAY, False),
        (ID_MONTH_13, TODAY, False),
        (ID_FEB_30, TODAY, False),
        (ID_1899, TODAY, False),
        (ID_FUTURE, TODAY, False),
        (ID_FUTURE, date(2024, 7, 1), True),
        (SAMPLE_ID[:17], TODAY, False),
        (SAMPLE_ID[:17] + "Y", TODAY, False),
        ("", TODAY, False),
    ],
)
def test_is_valid_resident_id(value: str, today: date, ok: bool) -> None:
    assert is_valid_resident_id(value, today) is ok


@pytest.mark.parametrize(
    "number",
    ["4111111111111111", "5500000000000004", CARD_19, "79927398713", "0", "18"],
)
def test_luhn_ok_matches_reference(number: str) -> None:
    assert luhn_ok(number) is luhn_reference(number)
    assert luhn_ok(number)


@pytest.mark.parametrize("number", ["4111111111111112", "6222021234567890123", "", "4111 1111"])
def test_luhn_rejects(number: str) -> None:
    assert not luhn_ok(number)


# --- size ---------------------------------------------------------------------------------------


def test_200kb_body_screens() -> None:
    paragraph = (
        "根据文政办〔2018〕34号文件精神，全体干部要保守国家秘密和商业秘密。"
        "编号：DOC13912345678，版本1.2.3，流水号0123456789012345678901。"
        "联系电话13800138000。"
    )
    body = paragraph * (200_000 // len(paragraph) + 1)
    assert len(body) >= 200_000
    result = screen({"body": body}, today=TODAY)
    assert not result.refused
    assert len(result.spans) == body.count("13800138000")

    # Near misses packed together: long digit runs, bare levels, spaces before no star.
    for hostile in ("1" * 200_000, "秘密 " * 70_000, "机密★" + "会" * 200_000, "1 " * 100_000):
        screen({"body": hostile}, today=TODAY)
