"""What the command line prints for people (gongkai.terminal): Beijing time with its zone,
names beside codes, and tables that keep a row on one line when piped."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from gongkai.terminal import Progress, beijing, named, table


@pytest.mark.parametrize(
    ("value", "seconds", "want"),
    [
        ("2026-03-01T05:05:00+00:00", False, "2026-03-01 13:05 北京时间"),
        (datetime(2026, 3, 1, 16, 30, 9, tzinfo=UTC), True, "2026-03-02 00:30:09 北京时间"),
        ("2026-03-01T05:05:00", False, "2026-03-01 13:05 北京时间"),  # bare: UTC, as logged
        (None, False, ""),
        ("", False, ""),
    ],
)
def test_times_are_beijing_time_with_the_zone(
    value: datetime | str | None, seconds: bool, want: str
) -> None:
    assert beijing(value, seconds=seconds) == want


@pytest.mark.parametrize(
    ("name", "code", "want"),
    [
        ("文河县财政局", "finance", "文河县财政局(finance)"),
        ("finance", "finance", "finance"),  # a name that is the code is said once
        (None, "finance", "finance"),
        ("文河县财政局", None, "文河县财政局"),
    ],
)
def test_names_stand_beside_codes(name: str | None, code: str | None, want: str) -> None:
    assert named(name, code) == want


def test_a_piped_table_keeps_each_row_on_one_line() -> None:
    out = io.StringIO()
    long = "规范性文件" * 30  # wider than any terminal
    table(["单位 unit", "栏目 column"], [[named("文河县财政局", "finance"), long]], stream=out)
    rows = [line for line in out.getvalue().splitlines() if "finance" in line]
    assert len(rows) == 1 and long in rows[0]
    assert "\x1b[" not in out.getvalue()  # no colour codes in a file


def test_an_empty_table_says_so() -> None:
    out = io.StringIO()
    table(["单位 unit"], [], title="违规 violations (0)", stream=out)
    assert out.getvalue() == "违规 violations (0): 无 (none)\n"


def test_piped_progress_is_a_line_per_tenth_and_quiet_is_silent() -> None:
    out = io.StringIO()
    with Progress("导入 import", stream=out) as p:
        for done in range(1, 101):
            p(done, 100)
    lines = out.getvalue().splitlines()
    assert lines[0] == "导入 import: 1/100" and lines[-1] == "导入 import: 100/100"
    assert len(lines) == 11
    quiet = io.StringIO()
    Progress("x", quiet=True, stream=quiet)(5, 10)
    assert quiet.getvalue() == ""
