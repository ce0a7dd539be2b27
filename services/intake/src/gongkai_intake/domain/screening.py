"""Content screening of a submitted post before it is recorded.

``screen`` looks at every text field of a post (title, body, attachment names)
and reports two kinds of finding:

* **Classification marks (国家秘密标志)** -> the post is refused and never
  recorded.  A mark is a level (绝密 / 机密 / 秘密) followed by the star and,
  usually, a secrecy period or declassification condition, for example
  ``机密★10年``, ``绝密★长期``, ``秘密★6个月``, ``机密★会议开始前``.

  - The star is U+2605 ``★``, the only star the marking rules use.  Unicode
    has no separate full-width or half-width form of it; look-alikes such as
    ``☆`` or ``⭐`` are not accepted.
  - ASCII ``*`` and full-width ``＊`` are accepted as typed substitutes for the
    star, but only when a structured period follows (``机密*10年``,
    ``绝密＊长期``, a date).  Markdown emphasis like ``**保守秘密**`` also puts
    a ``*`` after 秘密, so the asterisk alone proves nothing.
  - ``★`` with no period (``机密★``) is still a mark: a cut-off mark is
    still a mark.
  - Spaces, tabs, NBSP or ideographic spaces (U+3000) may appear around the star.
  - The bare words (《秘密花园》, 商业秘密, 保守国家秘密) are not marks.

* **Personal data** -> the post is recorded but flagged for secrecy review.
  Each finding is reported with its field, its character offsets in that
  field and a masked form; the raw value never goes into the result.

  - ``resident_id``: 18 characters (GB 11643-1999), accepted only with a real
    birth date (1900 up to today) and a correct ISO 7064 MOD 11-2 check
    character (``x`` or ``X``).  Also found when written in 6-8-4 groups
    separated by one space or hyphen.  The old 15-digit form is not handled.
  - ``mobile``: ``1[3-9]`` plus 9 more digits, either run together or in 3-4-4
    groups with the same single space or hyphen between them.  It may start
    with ``+86`` / ``0086`` / ``86``.  The reported span covers only the
    11-digit number, so replacing the span keeps the country code.
  - ``bank_card``: 16-19 digits that pass the Luhn check and do not start
    with 0 (ISO/IEC 7812 issues no card numbers starting with 0; this also
    drops all-zero filler such as ``0000000000000000``).  Either run together
    or in groups of 4 with the same single space or hyphen between them.
    An 18-digit run that is a valid resident ID is reported only as
    ``resident_id``.

  Precision rules, which keep serial and document numbers from being flagged:

  1. *Glued* candidates are ignored.  A candidate is glued when the character
     right before or after it is a letter or a digit (ASCII or full-width):
     ``DOC13912345678``, ``013800138000``, ``138001380001``.  It is also
     glued when a ``.`` links it to another digit (a decimal or version
     string), or when a grouped candidate's own separator links it to more
     digits (``138-0013-8000-12`` is a longer grouped number).  Underscores,
     slashes and a ``.`` before letters (a file extension such as ``.pdf``)
     do not glue.  That way attachment names like ``张三_13800138000.pdf``
     are still screened, and ``13800138000/13900139000`` still reads as two
     numbers.
  2. For ``mobile`` and ``bank_card`` only: a number in document-number or
     serial context is ignored.  That is a number straight after a bracketed
     year (``〔2018〕`` ``[2018]`` ``【2018】`` ``（2018）``), straight after
     the labels 编号 / 文号 / 序号 / 单号 / 批号 / ``No.`` / ``№``
     (optionally followed by ``:``, ``：`` or ``#``), or written as
     ``第…号``.  Resident IDs skip this rule: the date and check-character
     test is strict enough, and missing a leaked ID costs the most.

Every pattern is a precompiled regex of fixed or bounded length with no
nested quantifiers, and the context checks look only at a bounded window.
Screening therefore takes time linear in the input size.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Literal

__all__ = [
    "ClassificationMark",
    "PersonalDataKind",
    "PersonalDataSpan",
    "ScreeningResult",
    "is_valid_resident_id",
    "luhn_ok",
    "screen",
]

PersonalDataKind = Literal["resident_id", "mobile", "bank_card"]


@dataclass(frozen=True)
class ClassificationMark:
    field: str
    start: int
    end: int
    level: str


@dataclass(frozen=True)
class PersonalDataSpan:
    kind: PersonalDataKind
    field: str
    start: int
    end: int
    masked: str


@dataclass(frozen=True)
class ScreeningResult:
    marks: tuple[ClassificationMark, ...]
    spans: tuple[PersonalDataSpan, ...]

    @property
    def refused(self) -> bool:
        return bool(self.marks)

    @property
    def needs_secrecy_review(self) -> bool:
        return bool(self.spans)


# Full-width digits and X are common in text pasted from word processors.
# They are matched as well and converted to ASCII for validation and masking.
_TO_ASCII = str.maketrans(
    "０１２３４５６７８９Ｘｘ",
    "0123456789Xx",
)
_D = "[0-9\uff10-\uff19]"
_GLUE_CLASS = "0-9A-Za-z\uff10-\uff19\uff21-\uff3a\uff41-\uff5a"
_NOT_AFTER_GLUE = f"(?<![{_GLUE_CLASS}])"
_NOT_BEFORE_GLUE = f"(?![{_GLUE_CLASS}])"

_RESIDENT_ID_RE = re.compile(
    rf"{_NOT_AFTER_GLUE}"
    rf"(?:{_D}{{17}}|{_D}{{6}}(?P<sep>[ -]){_D}{{8}}(?P=sep){_D}{{3}})"
    rf"[0-9\uff10-\uff19XxＸｘ]"
    rf"{_NOT_BEFORE_GLUE}"
)
_MOBILE_RE = re.compile(
    rf"{_NOT_AFTER_GLUE}"
    rf"(?:(?:[+＋]|00)?86[ -]?)?"
    rf"(?P<num>[1１][3-9３-９]{_D}(?:{_D}{{8}}|(?P<sep>[ -]){_D}{{4}}(?P=sep){_D}{{4}}))"
    rf"{_NOT_BEFORE_GLUE}"
)
_BANK_CARD_RE = re.compile(
    rf"{_NOT_AFTER_GLUE}"
    rf"(?:{_D}{{16,19}}"
    rf"|{_D}{{4}}(?P<sep>[ -]){_D}{{4}}(?P=sep){_D}{{4}}(?P=sep){_D}{{4}}(?:(?P=sep){_D}{{1,3}})?)"
    rf"{_NOT_BEFORE_GLUE}"
)

_WS = "[ \t\u00a0\u3000]"
_NUM = "(?:[0-9\uff10-\uff19]{1,3}|[一二三四五六七八九十两]{1,3})"
# Periods that cannot be confused with ordinary prose.  These are the only ones
# accepted after an asterisk substitute.
_STRUCTURED_PERIOD = (
    rf"(?:{_D}{{4}}年{_D}{{1,2}}月(?:{_D}{{1,2}}日)?前?"
    rf"|{_NUM}{_WS}?(?:个月|年|月|天|日)"
    r"|长期)"
)
# After ★, a free-text condition ("会议开始前", "启用前", "考试结束后").  The
# bound keeps the lazy scan short; the text after ★ only sets the span end, so
# it does not decide whether the mark is found.
_PERIOD = rf"(?:{_STRUCTURED_PERIOD}|[\u4e00-\u9fff]{{1,16}}?[前后])"
_MARK_RE = re.compile(
    rf"(?P<level>绝密|机密|秘密){_WS}*"
    rf"(?:★(?:{_WS}*{_PERIOD})?|[*＊]{_WS}*{_STRUCTURED_PERIOD})"
)

_SERIAL_WINDOW = 16
_SERIAL_PREFIX_RE = re.compile(
    r"(?:编号|文号|序号|单号|批号|[Nn][Oo]\.|№"
    rf"|[〔\[［【(（]\s*{_D}{{4}}\s*[〕\]］】)）])"
    r"[\s:：#＃]{0,3}$"
)
_ORDINAL_PREFIX_RE = re.compile(r"第\s{0,2}$")
_ORDINAL_SUFFIX_RE = re.compile(r"\s{0,2}号")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"
_ASCII_DIGITS = frozenset("0123456789")


def luhn_ok(digits: str) -> bool:
    """Luhn (mod 10) check of a string made only of digits."""
    digits = digits.translate(_TO_ASCII)
    if not digits or not set(digits) <= _ASCII_DIGITS:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def is_valid_resident_id(s: str, today: date) -> bool:
    """True for an 18-character resident ID with a real birth date (1900 to ``today``, the
    Asia/Shanghai day the caller read from its clock) and correct check char."""
    s = s.translate(_TO_ASCII)
    if len(s) != 18 or not set(s[:17]) <= _ASCII_DIGITS:
        return False
    check = s[17].upper()
    if check not in _ID_CHECK_CHARS:
        return False
    try:
        born = date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        return False
    if born.year < 1900 or born > today:
        return False
    total = sum((ord(c) - 48) * w for c, w in zip(s[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK_CHARS[total % 11] == check


def _is_digit(ch: str) -> bool:
    return "0" <= ch <= "9" or "\uff10" <= ch <= "\uff19"


def _digits_only(raw: str) -> str:
    return "".join(ch for ch in raw.translate(_TO_ASCII) if ch in _ASCII_DIGITS or ch in "Xx")


def _glued(text: str, start: int, end: int, sep: str | None) -> bool:
    # Direct contact with letters or digits is ruled out by the regex lookarounds.
    # Here we check the two-character joins listed in the module docstring.
    joiners = "." if sep is None else "." + sep
    if start >= 2 and text[start - 1] in joiners and _is_digit(text[start - 2]):
        return True
    return end + 1 < len(text) and text[end] in joiners and _is_digit(text[end + 1])


def _serial_context(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - _SERIAL_WINDOW) : start]
    if _SERIAL_PREFIX_RE.search(before):
        return True
    return bool(_ORDINAL_PREFIX_RE.search(before) and _ORDINAL_SUFFIX_RE.match(text, end, end + 3))


def _mask(kind: PersonalDataKind, raw: str) -> str:
    d = _digits_only(raw).upper()
    if kind == "mobile":
        return d[:3] + "****" + d[-4:]
    return d[:6] + "*" * (len(d) - 10) + d[-4:]


def _free(occupied: bytearray, start: int, end: int) -> bool:
    return not any(occupied[start:end])


def _screen_personal_data(field: str, text: str, today: date) -> list[PersonalDataSpan]:
    # Byte map of claimed characters.  Strict kinds claim first, so a weaker
    # reading of the same digits (an 18-digit ID that also passes Luhn) is
    # dropped.  Candidates are short, so this stays linear.
    occupied = bytearray(len(text))
    found: list[PersonalDataSpan] = []

    def claim(kind: PersonalDataKind, start: int, end: int, raw: str) -> None:
        occupied[start:end] = b"\x01" * (end - start)
        found.append(PersonalDataSpan(kind, field, start, end, _mask(kind, raw)))

    for m in _RESIDENT_ID_RE.finditer(text):
        start, end = m.span()
        raw = m.group()
        if _glued(text, start, end, m.group("sep")):
            continue
        if is_valid_resident_id(_digits_only(raw), today):
            claim("resident_id", start, end, raw)

    for m in _BANK_CARD_RE.finditer(text):
        start, end = m.span()
        raw = m.group()
        digits = _digits_only(raw)
        if (
            digits[0] == "0"
            or not _free(occupied, start, end)
            or _glued(text, start, end, m.group("sep"))
            or _serial_context(text, start, end)
            or not luhn_ok(digits)
        ):
            continue
        claim("bank_card", start, end, raw)

    for m in _MOBILE_RE.finditer(text):
        start, end = m.span("num")
        if (
            not _free(occupied, start, end)
            or _glued(text, m.start(), m.end(), m.group("sep"))
            or _serial_context(text, m.start(), m.end())
        ):
            continue
        claim("mobile", start, end, m.group("num"))

    found.sort(key=lambda s: s.start)
    return found


def _screen_marks(field: str, text: str) -> list[ClassificationMark]:
    return [
        ClassificationMark(field=field, start=m.start(), end=m.end(), level=m.group("level"))
        for m in _MARK_RE.finditer(text)
    ]


def screen(fields: Mapping[str, str], *, today: date) -> ScreeningResult:
    """Screen the text fields of a post.

    ``fields`` maps a field name (``title``, ``body``, ``attachment[i].name``)
    to its text.  Findings come back in field order, then by offset.  ``today``
    bounds resident-ID birth dates: the caller's day (``gongkai.calendar.today``), never
    the host's, so the same text screens the same on every machine.
    """
    marks: list[ClassificationMark] = []
    spans: list[PersonalDataSpan] = []
    for field, text in fields.items():
        marks.extend(_screen_marks(field, text))
        spans.extend(_screen_personal_data(field, text, today))
    return ScreeningResult(marks=tuple(marks), spans=tuple(spans))
