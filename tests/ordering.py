"""The order ``make test`` hands test files to its workers: the longest first.

pytest-xdist (``--dist loadfile``) gives each worker a whole file at a time, in the order it is
handed them, and a worker asks for the next when it is almost done. Its own reordering puts the
files with the most tests first, which is not the longest: the schemathesis run of
test_openapi_fuzz.py is four tests and two minutes, and came to a worker near the end while the
other had nothing left to do. Handing out the longest files first (longest processing time
first, the classic list-scheduling rule) leaves only short files for the end, so both workers
finish close together. The Makefile turns xdist's own reordering off (``--no-loadscope-reorder``)
so this order is the one used.

The weights are each file's measured seconds (setup, call and teardown of its tests), kept in
``tests/durations.json``. ``make test-durations`` runs the suite once and writes them again; a
file not in it yet weighs ``NEW_FILE_SECONDS``. The order changes how long the suite takes,
never what it checks: each file still runs whole in one worker, and tests within a file keep
their order.
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections import defaultdict
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

#: Per-file seconds, written by ``make test-durations`` (GONGKAI_RECORD_DURATIONS).
DURATIONS = Path(__file__).with_name("durations.json")
#: What a file weighs before it has been measured: enough to start early rather than last.
NEW_FILE_SECONDS = 10.0
RECORD = os.environ.get("GONGKAI_RECORD_DURATIONS", "") not in ("", "0")
#: A path: each file's CPU seconds are written there as JSON at the end of the run.
RECORD_CPU = os.environ.get("GONGKAI_RECORD_CPU", "")


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def weights() -> dict[str, float]:
    try:
        data = json.loads(DURATIONS.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return {str(k): float(v) for k, v in data.items()}


def longest_first(items: list[pytest.Item]) -> None:
    """Reorder ``items`` in place: files by weight, heaviest first; ties and tests in a file
    keep the order they were collected in."""
    weight = weights()
    first_seen: dict[str, int] = {}
    for i, item in enumerate(items):
        first_seen.setdefault(_file_of(item.nodeid), i)

    def key(item: pytest.Item) -> tuple[float, int]:
        path = _file_of(item.nodeid)
        return (-weight.get(path, NEW_FILE_SECONDS), first_seen[path])

    items.sort(key=key)  # stable: a file's tests keep their order


class DurationRecorder:
    """Sums each file's phases as the reports arrive (in the controller under xdist) and
    writes ``tests/durations.json`` at the end of a whole, passing run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[_file_of(report.nodeid)] += report.duration

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if hasattr(session.config, "workerinput") or exitstatus != 0:
            return  # a worker sees only its share; a failed run's times are not the suite's
        ordered = dict(sorted(self.seconds.items(), key=lambda kv: (-kv[1], kv[0])))
        DURATIONS.write_text(
            json.dumps({k: round(v, 2) for k, v in ordered.items()}, indent=1) + "\n",
            encoding="utf-8",
        )


def _cpu_seconds() -> float:
    """User and system CPU of this process and of its children that have ended: the services,
    nats-servers and ``gongkai`` processes a test started count for the test."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class CpuRecorder:
    """Each file's CPU seconds (``GONGKAI_RECORD_CPU=path``): what the suite's wall time on two
    cores is made of, where the wall seconds of durations.json also count waiting.

    A worker runs one file at a time (``--dist loadfile``), so the CPU its process and its
    finished children spent between two reports belongs to the test being reported; each
    report carries it to the controller, which sums by file and writes the table.
    """

    def __init__(self) -> None:
        self.mark = _cpu_seconds()
        self.seconds: dict[str, float] = defaultdict(float)
        self.t0 = time.monotonic()
        #: By worker, each file's [file, first report, last report] in seconds since the start:
        #: whether a worker idled at the end (``<path>.timeline.json``).
        self.timeline: dict[str, list[list[Any]]] = defaultdict(list)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self) -> None:
        self.mark = _cpu_seconds()  # collecting (importing every test module) is no file's

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        now = _cpu_seconds()
        report.user_properties.append(("cpu_s", now - self.mark))
        self.mark = now
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, value in report.user_properties:
            if key == "cpu_s" and isinstance(value, float):
                self.seconds[_file_of(report.nodeid)] += value
        node = getattr(report, "node", None)  # the worker that ran it, under xdist
        worker = str(getattr(getattr(node, "gateway", None), "id", "main"))
        at = round(time.monotonic() - self.t0, 1)
        files = self.timeline[worker]
        if files and files[-1][0] == _file_of(report.nodeid):
            files[-1][2] = at
        else:
            files.append([_file_of(report.nodeid), at, at])

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if hasattr(session.config, "workerinput"):
            return
        ordered = dict(sorted(self.seconds.items(), key=lambda kv: (-kv[1], kv[0])))
        Path(RECORD_CPU).write_text(
            json.dumps({k: round(v, 2) for k, v in ordered.items()}, indent=1) + "\n",
            encoding="utf-8",
        )
        Path(RECORD_CPU + ".timeline.json").write_text(
            json.dumps(dict(sorted(self.timeline.items())), indent=1) + "\n", encoding="utf-8"
        )


def pytest_configure(config: pytest.Config) -> None:
    if RECORD and not hasattr(config, "workerinput"):
        config.pluginmanager.register(DurationRecorder(), "gongkai-durations")
    if RECORD_CPU:
        config.pluginmanager.register(CpuRecorder(), "gongkai-cpu")
