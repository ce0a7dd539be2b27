"""The suite hands its files to the workers longest first (tests/ordering.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import ordering


@dataclass
class Item:
    nodeid: str


def order(nodeids: list[str], weights: dict[str, float], tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> list[str]:
    table = tmp_path / "durations.json"
    table.write_text(json.dumps(weights), encoding="utf-8")
    monkeypatch.setattr(ordering, "DURATIONS", table)
    items: list[Any] = [Item(n) for n in nodeids]
    ordering.longest_first(items)
    return [i.nodeid for i in items]


def test_the_longest_file_goes_first_and_its_tests_keep_their_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    collected = ["tests/unit/a.py::t1", "tests/unit/a.py::t2", "tests/e2e/fuzz.py::t2",
                 "tests/e2e/fuzz.py::t1", "tests/unit/b.py::t"]
    got = order(collected, {"tests/unit/a.py": 1.0, "tests/e2e/fuzz.py": 100.0,
                            "tests/unit/b.py": 0.5}, tmp_path, monkeypatch)
    assert got == ["tests/e2e/fuzz.py::t2", "tests/e2e/fuzz.py::t1", "tests/unit/a.py::t1",
                   "tests/unit/a.py::t2", "tests/unit/b.py::t"]


def test_a_file_not_measured_yet_weighs_the_default_and_ties_keep_collection_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    heavy = ordering.NEW_FILE_SECONDS + 1
    light = ordering.NEW_FILE_SECONDS - 1
    collected = ["tests/x.py::t", "tests/new.py::t", "tests/y.py::t", "tests/newer.py::t"]
    got = order(collected, {"tests/x.py": light, "tests/y.py": heavy}, tmp_path, monkeypatch)
    assert got == ["tests/y.py::t", "tests/new.py::t", "tests/newer.py::t", "tests/x.py::t"]


def test_without_a_table_files_keep_the_order_they_were_first_collected_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ordering, "DURATIONS", tmp_path / "absent.json")
    items: list[Any] = [Item("tests/b.py::t"), Item("tests/a.py::t"), Item("tests/b.py::u")]
    ordering.longest_first(items)
    assert [i.nodeid for i in items] == ["tests/b.py::t", "tests/b.py::u", "tests/a.py::t"]


def test_the_committed_table_is_seconds_by_file() -> None:
    table = ordering.weights()
    assert table, "tests/durations.json is missing: make test-durations writes it"
    assert all(p.startswith("tests/") and p.endswith(".py") and s >= 0 for p, s in table.items())


@dataclass
class Report:
    nodeid: str
    user_properties: list[tuple[str, object]]


def test_cpu_seconds_are_summed_by_file_and_written_where_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "cpu.json"
    monkeypatch.setattr(ordering, "RECORD_CPU", str(out))
    recorder = ordering.CpuRecorder()
    for nodeid, cpu in (("tests/a.py::t", 1.25), ("tests/b.py::t", 3.0), ("tests/a.py::u", 1.0)):
        recorder.pytest_runtest_logreport(Report(nodeid, [("cpu_s", cpu)]))  # type: ignore[arg-type]

    @dataclass
    class Session:
        config: object

    recorder.pytest_sessionfinish(Session(object()), 0)  # type: ignore[arg-type]
    assert list(json.loads(out.read_text(encoding="utf-8")).items()) == [
        ("tests/b.py", 3.0), ("tests/a.py", 2.25)
    ]
