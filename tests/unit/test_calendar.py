"""Working-day calendar: State Council arrangement, operator data, provisional years, CLI."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import chinese_calendar
import pytest

from gongkai.calendar import (
    ENV_VAR,
    PACKAGE_DATA_DIR,
    SHANGHAI,
    CalendarDataError,
    WorkingCalendar,
    WorkingDayResult,
    day_end,
    day_start,
    local_date,
    today,
)
from gongkai.calendar.cli import register

D = date.fromisoformat

# A made-up arrangement for a year no library knows: 2031 is fake on purpose.
FAKE_2031 = """\
year: 2031
notice: test fixture, not a real arrangement
holidays:
  - 2031-01-01
  - 2031-10-01..2031-10-07
  - "2031-06-02"
makeup_workdays:
  - 2031-09-28
  - "2031-10-11"
"""


@pytest.fixture(autouse=True)
def _no_operator_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)


@pytest.fixture(scope="module")
def cal() -> WorkingCalendar:
    return WorkingCalendar.default()


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def fake_dir(tmp_path: Path) -> Path:
    write(tmp_path / "ops", "2031.yaml", FAKE_2031)
    return tmp_path / "ops"


# -- anchors and the official arrangement -----------------------------------------------


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        ("2026-02-10", 20, "2026-03-16"),  # across the 2026 Spring Festival, two make-up Sats
        ("2026-09-30", 3, "2026-10-10"),  # lands on the Saturday make-up day after National Day
        ("2026-02-13", 1, "2026-02-14"),  # Saturday make-up day is day 1
        ("2026-02-14", 1, "2026-02-24"),  # whole Spring Festival break skipped
        ("2025-12-31", 1, "2026-01-04"),  # New Year break, then the Sunday make-up day
        ("2025-09-30", 1, "2025-10-09"),  # 2025 National Day break runs to 10-08
        ("2026-03-13", 1, "2026-03-16"),  # ordinary weekend skipped
        ("2026-03-14", 1, "2026-03-16"),  # trigger on a weekend: day 1 is Monday
    ],
)
def test_add_working_days_official(cal: WorkingCalendar, start: str, n: int, expected: str) -> None:
    result = cal.add_working_days(D(start), n)
    assert result == WorkingDayResult(D(expected), False)


MAKEUP_DAYS = [
    "2026-01-04",
    "2026-02-14",
    "2026-02-28",
    "2026-05-09",
    "2026-09-20",
    "2026-10-10",
    "2025-01-26",
    "2025-02-08",
    "2025-04-27",
    "2025-09-28",
    "2025-10-11",
]


@pytest.mark.parametrize("day", MAKEUP_DAYS)
def test_makeup_days_are_working_days(cal: WorkingCalendar, day: str) -> None:
    assert D(day).weekday() >= 5  # really a weekend day, so only 调休 makes it working
    assert cal.is_working_day(D(day))


HOLIDAYS = [
    *(f"2026-10-0{i}" for i in range(1, 8)),  # National Day, weekdays and weekend alike
    *(f"2026-02-{i}" for i in range(15, 24)),  # Spring Festival 02-15..02-23
    "2026-01-01",
    "2026-01-02",
    "2026-05-01",
    "2026-05-05",
    "2026-06-19",
    "2026-09-25",
    "2025-01-28",
    "2025-02-04",
    "2025-10-08",
]


@pytest.mark.parametrize("day", HOLIDAYS)
def test_holidays_are_not_working_days(cal: WorkingCalendar, day: str) -> None:
    assert not cal.is_working_day(D(day))


@pytest.mark.parametrize(
    ("day", "working"),
    [
        ("2026-03-07", False),  # ordinary Saturday
        ("2026-03-08", False),  # ordinary Sunday
        ("2026-03-09", True),  # ordinary Monday
        ("2026-03-13", True),  # ordinary Friday
        ("2025-12-31", True),
    ],
)
def test_weekends(cal: WorkingCalendar, day: str, working: bool) -> None:
    assert cal.is_working_day(D(day)) is working


def test_matches_library_for_every_day_of_2025_and_2026(cal: WorkingCalendar) -> None:
    d = date(2025, 1, 1)
    while d.year <= 2026:
        assert cal.is_working_day(d) == chinese_calendar.is_workday(d), d
        d += timedelta(days=1)


def test_next_working_day_is_strictly_after(cal: WorkingCalendar) -> None:
    assert cal.next_working_day(D("2026-03-09")) == D("2026-03-10")  # a working day itself
    assert cal.next_working_day(D("2026-09-30")) == D("2026-10-08")
    assert cal.next_working_day(D("2026-10-09")) == D("2026-10-10")


def test_official_years(cal: WorkingCalendar) -> None:
    assert all(cal.is_official(y) for y in range(2004, 2027))
    assert not cal.is_official(2031)
    infos = {i.year: i for i in cal.years()}
    assert [infos[y].source for y in (2004, 2026)] == ["library", "library"]
    assert all(infos[y].official for y in range(2004, 2027))
    assert not infos[2027].official and infos[2027].source == "weekends-only"
    assert not infos[2028].official
    assert 2029 not in infos


def test_argument_checks(cal: WorkingCalendar) -> None:
    assert cal.add_working_days(D("2026-03-14"), 0) == WorkingDayResult(D("2026-03-14"), False)
    with pytest.raises(ValueError, match="n must be"):
        cal.add_working_days(D("2026-03-14"), -1)
    with pytest.raises(TypeError, match="not a datetime"):
        cal.add_working_days(datetime(2026, 3, 14, 12), 1)
    with pytest.raises(TypeError, match="not a datetime"):
        cal.is_working_day(datetime(2026, 3, 14, 12))
    with pytest.raises(OverflowError):
        cal.add_working_days(D("9999-12-30"), 5)
    with pytest.raises(TypeError):
        WorkingCalendar("some/dir")  # type: ignore[arg-type]


# -- provisional years ------------------------------------------------------------------


def test_provisional_year_uses_weekends_only(cal: WorkingCalendar) -> None:
    assert cal.is_working_day(D("2031-10-01"))  # would be National Day, but nobody knows yet
    assert not cal.is_working_day(D("2031-10-04"))  # Saturday
    result = cal.add_working_days(D("2031-09-30"), 3)
    assert result == WorkingDayResult(D("2031-10-03"), True, (2031,))
    assert cal.next_working_day(D("2031-10-03")) == D("2031-10-06")


@pytest.mark.parametrize(
    ("start", "n", "expected", "years"),
    [
        ("2026-12-25", 10, "2027-01-08", (2027,)),  # official start, provisional result
        ("2026-12-31", 1, "2027-01-01", (2027,)),
        ("2026-12-01", 260, "2027-11-30", (2027,)),
        ("2026-12-01", 600, "2029-03-20", (2027, 2028, 2029)),
        ("2026-12-30", 1, "2026-12-31", ()),  # stays inside the official year
    ],
)
def test_provisional_flag_when_crossing_into_unknown_year(
    cal: WorkingCalendar, start: str, n: int, expected: str, years: tuple[int, ...]
) -> None:
    result = cal.add_working_days(D(start), n)
    assert result.value == D(expected)
    assert result.provisional is bool(years)
    assert result.provisional_years == years


def test_provisional_start_year_not_touched_from_its_last_day(fake_dir: Path) -> None:
    cal = WorkingCalendar([fake_dir])
    # 2030 is provisional, but nothing in (2030-12-31, result] lies in 2030.
    assert cal.add_working_days(D("2030-12-31"), 1) == WorkingDayResult(D("2031-01-02"), False)
    assert cal.working_days_between(D("2030-12-31"), D("2031-01-02")) == WorkingDayResult(1, False)
    assert cal.add_working_days(D("2030-12-30"), 1) == WorkingDayResult(
        D("2030-12-31"), True, (2030,)
    )


def test_library_can_be_switched_off() -> None:
    cal = WorkingCalendar(use_library=False)
    assert not cal.is_official(2026)
    assert cal.years() == []
    assert cal.add_working_days(D("2026-09-30"), 3) == WorkingDayResult(
        D("2026-10-05"), True, (2026,)
    )


# -- operator data ----------------------------------------------------------------------


def test_operator_data_makes_fake_year_official(fake_dir: Path) -> None:
    cal = WorkingCalendar([fake_dir])
    assert cal.is_official(2031)
    assert cal.is_working_day(D("2031-09-28"))  # Sunday make-up day
    assert cal.is_working_day(D("2031-10-11"))  # Saturday make-up day
    assert not cal.is_working_day(D("2031-10-01"))  # holiday on a Wednesday
    assert not cal.is_working_day(D("2031-06-02"))  # quoted date string in YAML
    assert not cal.is_working_day(D("2031-10-12"))  # ordinary Sunday
    assert cal.add_working_days(D("2031-09-30"), 3) == WorkingDayResult(D("2031-10-10"), False)
    assert cal.add_working_days(D("2031-09-30"), 4) == WorkingDayResult(D("2031-10-11"), False)
    assert cal.add_working_days(D("2031-09-26"), 1) == WorkingDayResult(D("2031-09-28"), False)

    infos = {i.year: i for i in cal.years()}
    assert infos[2031].official and infos[2031].source == f"data:{fake_dir / '2031.yaml'}"
    assert [infos[y].official for y in range(2027, 2031)] == [False] * 4  # gap listed
    assert not infos[2032].official and not infos[2033].official
    assert 2034 not in infos


def test_json_file_and_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = {"year": 2031, "holidays": ["2031-01-01..2031-01-03"], "makeup_workdays": []}
    write(tmp_path, "2031.json", json.dumps(doc))
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    cal = WorkingCalendar.default()
    assert cal.is_official(2031)
    assert cal.next_working_day(D("2030-12-31")) == D("2031-01-06")
    assert cal.is_official(2026)  # library still there


def test_operator_data_overrides_library(tmp_path: Path) -> None:
    write(tmp_path, "2026.yaml", "year: 2026\nholidays: [2026-10-01]\nmakeup_workdays: []\n")
    cal = WorkingCalendar([tmp_path])
    assert not cal.is_working_day(D("2026-10-01"))
    assert cal.is_working_day(D("2026-10-02"))  # library holiday, not in the correction
    assert not cal.is_working_day(D("2026-10-10"))  # library make-up day, not in the correction
    # The file replaces the library's whole year: its Spring Festival is gone too.
    assert cal.is_working_day(D("2026-02-16"))
    assert not cal.is_working_day(D("2026-02-14"))
    info = next(i for i in cal.years() if i.year == 2026)
    assert info.official and info.overrides_library
    assert info.source == f"data:{tmp_path / '2026.yaml'}"


def test_later_directory_wins(tmp_path: Path) -> None:
    write(tmp_path / "a", "2031.yaml", FAKE_2031)
    write(tmp_path / "b", "2031.yml", "year: 2031\nholidays: []\nmakeup_workdays: []\n")
    assert WorkingCalendar([tmp_path / "a", tmp_path / "b"]).is_working_day(D("2031-10-01"))
    assert not WorkingCalendar([tmp_path / "b", tmp_path / "a"]).is_working_day(D("2031-10-01"))


def test_readme_example_is_valid(tmp_path: Path) -> None:
    readme = (PACKAGE_DATA_DIR / "README.md").read_text(encoding="utf-8")
    yaml_block = re.search(r"```yaml\n(.*?)```", readme, re.S)
    json_block = re.search(r"```json\n(.*?)```", readme, re.S)
    assert yaml_block and json_block
    write(tmp_path / "y", "2031.yaml", yaml_block.group(1))
    write(tmp_path / "j", "2031.json", json_block.group(1))
    from_yaml = WorkingCalendar([tmp_path / "y"])
    from_json = WorkingCalendar([tmp_path / "j"])
    for cal in (from_yaml, from_json):
        assert cal.add_working_days(D("2031-09-30"), 3) == WorkingDayResult(D("2031-10-10"), False)
        assert not cal.is_working_day(D("2031-01-01"))
        assert cal.is_working_day(D("2031-01-19"))  # Sunday make-up day


def test_package_data_dir_has_no_invented_years() -> None:
    assert PACKAGE_DATA_DIR.is_dir()
    assert not [p for p in PACKAGE_DATA_DIR.iterdir() if p.suffix in {".yaml", ".yml", ".json"}]


GOOD = "year: 2031\nholidays: [2031-01-01]\nmakeup_workdays: [2031-01-04]\n"  # 01-04 is a Sat


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("2031.yaml", GOOD.replace("year: 2031", "year: 2032"), "wrong year"),
        ("2031.yaml", GOOD.replace("[2031-01-01]", "[2030-12-31]"), "outside year 2031"),
        ("2031.yaml", GOOD.replace("[2031-01-04]", "[2031-01-06]"), "not a weekend"),
        ("2031.yaml", GOOD.replace("[2031-01-01]", "[2031-01-04]"), "both"),
        ("2031.yaml", "year: 2031\nholidays: [2031-01-01\n", "malformed"),
        ("2031.json", '{"year": 2031, "holidays": [', "malformed"),
        ("2031.yaml", "", "malformed"),
        ("2031.yaml", "- 2031-01-01\n", "malformed"),
        ("2031.yaml", "year: 2031\nholidays: []\n", "missing key(s): makeup_workdays"),
        ("2031.yaml", GOOD + "makeup_workday: []\n", "unknown key(s): makeup_workday"),
        ("2031.yaml", GOOD.replace("[2031-01-01]", "[2031-1-1]"), "is not a date"),
        ("2031.yaml", GOOD.replace("[2031-01-01]", '["2031-02-30"]'), "not a valid date"),
        ("2031.yaml", GOOD.replace("[2031-01-01]", "[2031-01-01 08:00:00]"), "time of day"),
        ("2031.yaml", GOOD.replace("[2031-01-01]", '["2031-01-05..2031-01-01"]'), "ends before"),
        ("2031.yaml", GOOD.replace("[2031-01-01]", "2031-01-01"), "must be a list"),
        ("2031.yaml", GOOD.replace("year: 2031", 'year: "2031"'), "year must be an integer"),
        ("holidays.yaml", GOOD, "file name must be the year"),
    ],
)
def test_invalid_data_files(tmp_path: Path, name: str, text: str, problem: str) -> None:
    write(tmp_path, name, text)
    with pytest.raises(CalendarDataError) as info:
        WorkingCalendar([tmp_path])
    assert name in str(info.value)
    assert problem in str(info.value)
    assert info.value.path == tmp_path / name


def test_two_files_for_one_year_in_one_directory(tmp_path: Path) -> None:
    write(tmp_path, "2031.yaml", GOOD)
    write(tmp_path, "2031.json", json.dumps({"year": 2031, "holidays": [], "makeup_workdays": []}))
    with pytest.raises(CalendarDataError, match=r"2031\.yaml: year 2031 is also defined by"):
        WorkingCalendar([tmp_path])


def test_missing_directory_and_ignored_files(tmp_path: Path) -> None:
    with pytest.raises(CalendarDataError, match="does not exist"):
        WorkingCalendar([tmp_path / "nope"])
    write(tmp_path, "README.md", "notes")
    write(tmp_path, ".2031.yaml", "garbage: [")
    write(tmp_path, "2031.yaml.bak", "garbage: [")
    assert not WorkingCalendar([tmp_path]).is_official(2031)


# -- counting ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "count", "years"),
    [
        ("2026-02-10", "2026-03-16", 20, ()),
        ("2026-09-30", "2026-10-10", 3, ()),
        ("2026-09-30", "2026-10-09", 2, ()),
        ("2026-03-16", "2026-03-16", 0, ()),
        ("2026-03-16", "2026-02-10", 0, ()),
        ("2026-10-01", "2026-10-07", 0, ()),  # entirely inside a holiday
        ("2025-12-31", "2026-01-05", 2, ()),  # 01-04 Sunday make-up + Monday
        ("2024-12-31", "2025-12-31", 248, ()),
        ("2026-12-31", "2027-01-04", 2, (2027,)),
        ("2025-06-01", "2028-01-01", 657, (2027, 2028)),
    ],
)
def test_working_days_between(
    cal: WorkingCalendar, start: str, end: str, count: int, years: tuple[int, ...]
) -> None:
    result = cal.working_days_between(D(start), D(end))
    assert result == WorkingDayResult(count, bool(years), years)


def test_between_inverts_add(cal: WorkingCalendar) -> None:
    for start in (D("2025-01-20"), D("2025-09-27"), D("2026-02-13"), D("2026-12-20")):
        for n in (1, 2, 5, 15, 20, 60, 300):
            result = cal.add_working_days(start, n)
            between = cal.working_days_between(start, result.value)
            assert between.value == n
            assert between.provisional == result.provisional


def test_between_matches_day_by_day_count(cal: WorkingCalendar) -> None:
    start, end = D("2025-06-01"), D("2028-01-01")
    expected = sum(
        cal.is_working_day(start + timedelta(days=i)) for i in range(1, (end - start).days + 1)
    )
    assert cal.working_days_between(start, end).value == expected


def test_no_library_calls_once_a_year_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    cal = WorkingCalendar()
    cal.add_working_days(D("2026-02-10"), 20)  # builds 2026

    def boom(d: date) -> bool:
        raise AssertionError(f"library called for {d}")

    monkeypatch.setattr(chinese_calendar, "is_workday", boom)
    for n in range(1, 200):
        cal.add_working_days(D("2026-01-01"), n)
        cal.working_days_between(D("2026-01-01"), D("2026-01-01") + timedelta(days=n))
        cal.is_working_day(D("2026-01-01") + timedelta(days=n))


# -- CLI --------------------------------------------------------------------------------


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gongkai")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


def test_cli_add(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["calendar", "add", "2026-02-10", "20"]) == 0
    assert capsys.readouterr().out == "2026-03-16\n"
    assert run_cli(["calendar", "add", "2026-12-25", "10"]) == 0
    assert capsys.readouterr().out == ("2027-01-08 (provisional: no official calendar for 2027)\n")


def test_cli_add_with_data_dir(fake_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["calendar", "--data-dir", str(fake_dir), "add", "2031-09-30", "3"]) == 0
    assert capsys.readouterr().out == "2031-10-10\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["add", "2026-02-30", "3"],
        ["add", "20260210", "3"],
        ["add", "tomorrow", "3"],
        ["add", "2026-02-10", "0"],
        ["add", "2026-02-10", "-1"],
        ["add", "2026-02-10", "3651"],
        ["add", "2026-02-10", "2.5"],
        ["add", "2026-02-10", "x"],
        ["add", "9999-12-30", "5"],
        ["--data-dir", "/nonexistent/gongkai-calendar", "add", "2026-02-10", "3"],
    ],
)
def test_cli_add_bad_input(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        run_cli(["calendar", *argv])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("gongkai calendar add: error: ")


def test_cli_bad_data_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, "2031.yaml", "year: 2030\nholidays: []\nmakeup_workdays: []\n")
    with pytest.raises(SystemExit) as info:
        run_cli(["calendar", "--data-dir", str(tmp_path), "years"])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert "2031.yaml" in err and "wrong year" in err and err.count("\n") == 1


def test_cli_years(fake_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["calendar", "years"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["year", "status", "source"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert rows["2004"] == ["official", "library"]
    assert rows["2026"] == ["official", "library"]
    assert rows["2027"] == ["provisional", "weekends-only"]
    assert "2029" not in rows

    assert run_cli(["calendar", "--data-dir", str(fake_dir), "years"]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["2031"] == ["official", f"data:{fake_dir / '2031.yaml'}"]
    assert rows["2030"][0] == "provisional"


# --- the Asia/Shanghai date of an instant: the one "today" helper ---------------------------


@pytest.mark.parametrize(
    ("instant", "day"),
    [
        ("2026-03-01T15:59:59+00:00", "2026-03-01"),  # 23:59:59 in Shanghai
        ("2026-03-01T16:00:00+00:00", "2026-03-02"),  # midnight in Shanghai: the next day
        ("2026-03-02T00:30:00+08:00", "2026-03-02"),  # already local
        ("2026-03-01T12:00:00-05:00", "2026-03-02"),  # 01:00 next day in Shanghai
    ],
)
def test_local_date_is_the_shanghai_calendar_day(instant: str, day: str) -> None:
    assert local_date(datetime.fromisoformat(instant)) == D(day)


@pytest.mark.parametrize(
    ("day", "start", "end"),
    [
        ("2026-03-02", "2026-03-01T16:00:00+00:00", "2026-03-02T16:00:00+00:00"),
        ("2026-12-31", "2026-12-30T16:00:00+00:00", "2026-12-31T16:00:00+00:00"),  # into 2027
        ("2028-02-29", "2028-02-28T16:00:00+00:00", "2028-02-29T16:00:00+00:00"),  # leap day
    ],
)
def test_a_shanghai_day_is_bounded_by_its_midnights(day: str, start: str, end: str) -> None:
    assert (day_start(D(day)), day_end(D(day))) == (
        datetime.fromisoformat(start), datetime.fromisoformat(end)
    )
    # The day's first instant is on it; its end is the next day's first.
    assert local_date(day_start(D(day))) == D(day)
    assert local_date(day_end(D(day))) == D(day) + timedelta(days=1)


def test_today_reads_the_given_clock_else_the_wall_clock() -> None:
    assert today(datetime.fromisoformat("2026-12-31T16:00:00+00:00")) == D("2027-01-01")
    before = datetime.now(SHANGHAI).date()
    assert today() in (before, before + timedelta(days=1))
