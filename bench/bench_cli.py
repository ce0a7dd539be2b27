"""The command line's start-up: ``gongkai --help`` and a parser, beside ``python -c pass``.

Each command line runs as a whole new process ``--runs`` times (default 15); the table prints
the minimum and median wall time and the median's ratio to an empty interpreter measured in the
same run, so a busy machine shows as a slower baseline, not as a slower command line. The target
(issue #16) is ``gongkai --help`` under 0.5 s; the parsers import only argparse-level modules
(``gongkai.cli.lazy``; ``tests/unit/test_cli_startup.py`` holds that), a command imports its
own module when it runs.

    python -m bench.bench_cli [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import Figure, table

GONGKAI = str(Path(sys.executable).with_name("gongkai"))
CASES: dict[str, list[str]] = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "gongkai --help": [GONGKAI, "--help"],
    "gongkai audit --help": [GONGKAI, "audit", "--help"],
    "gongkai calendar years": [GONGKAI, "calendar", "years"],
}


def timed(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append(time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> list[Figure]:
    p = argparse.ArgumentParser(prog="python -m bench.bench_cli", description=__doc__)
    p.add_argument("--runs", type=int, default=15)
    args = p.parse_args(argv)
    times = {name: timed(cmd, args.runs) for name, cmd in CASES.items()}
    base = statistics.median(times["python -c pass"])
    rows = [
        (
            name,
            f"{min(t):.3f} s",
            f"{statistics.median(t):.3f} s",
            f"{statistics.median(t) / base:.1f}x",
        )
        for name, t in times.items()
    ]
    print(table(rows, ("command", "min", "median", "median / python -c pass (same run)")))
    return [
        Figure("gongkai --help", statistics.median(times["gongkai --help"]), "s", target=0.5),
        Figure(
            "gongkai audit --help", statistics.median(times["gongkai audit --help"]), "s",
            target=0.5,
        ),
    ]


if __name__ == "__main__":
    main()
