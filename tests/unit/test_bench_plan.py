"""`make bench` runs every benchmark with the arguments its plan gives (bench/run_all.py)."""

from __future__ import annotations

import pkgutil
from pathlib import Path

from bench import run_all


def test_every_benchmark_is_planned_or_left_to_be_run_by_hand() -> None:
    here = Path(run_all.__file__).parent
    every = {m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_")}
    planned = set(run_all.plan(20_000)) - {"load"}
    assert set(run_all.benchmarks()) == every - run_all.BY_HAND
    # A benchmark without a plan is called with no arguments: only these two take none, so
    # one added later is planned or left by hand, not run into a usage error (bench_catchup).
    assert set(run_all.benchmarks()) <= planned | {"bench_cli", "bench_console"}
    assert every >= run_all.BY_HAND

