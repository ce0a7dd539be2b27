"""Process start-up: the ``gongkai`` command line and the services, beside ``python -c pass``.

Each command line runs as a whole new process ``--runs`` times (default 9), the cases in turn
(one run of each per round, so a machine that slows down slows every case alike). The table
prints the median wall time and the median CPU time (user + system, the process and what it
waited for) and each median's ratio to an empty interpreter measured in the same run: a busy
machine shows as a slower baseline, not as a slower command line. On the suite's two shared
cores the CPU column is the one that adds up: the tests start the tools and the services as
processes over a hundred times.

The rows:

- ``gongkai --help`` and a parser: the target (issue #16) is ``gongkai --help`` under 0.5 s;
  the parsers import only argparse-level modules (``gongkai.cli.lazy``), a command imports its
  own module when it runs (``tests/unit/test_cli_startup.py`` holds that).
- a tool run against a port where no NATS listens (``audit trail``, ``events tail``, ``people
  tokens``): the whole run is the tool's start, its imports, and one refused connection; the
  tools import the log client and never the service stack (issue #15).
- ``services imported``: what ``gongkai up`` imports before it starts anything, the host and
  the four services (FastAPI, faststream, SQLAlchemy, alembic: they need them).
- ``gongkai up`` and ``gongkai up --demo`` until ``/readyz`` answers 200 (issue #15), each on a
  fresh data directory, then stopped with SIGTERM; the CPU column counts the process and its
  nats-server. Ready after ``--demo`` means every service has applied the demo county and its
  year of history (recorded before the services start). ``--up-runs`` of each (default 5; 0
  leaves them out).

    python -m bench.bench_cli [--runs 9]
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import Figure, table
from gongkai.natsserver import free_port

GONGKAI = str(Path(sys.executable).with_name("gongkai"))
BASELINE = "python -c pass"
SERVICES = (
    "from importlib.metadata import entry_points\n"
    "import gongkai.runtime.host\n"
    "for ep in entry_points(group='gongkai.services'):\n"
    "    ep.load()"
)


def cases() -> dict[str, list[str]]:
    nowhere = f"nats://127.0.0.1:{free_port()}"  # nothing listens there: refused at once
    return {
        BASELINE: [sys.executable, "-c", "pass"],
        "gongkai --help": [GONGKAI, "--help"],
        "gongkai audit --help": [GONGKAI, "audit", "--help"],
        "gongkai calendar years": [GONGKAI, "calendar", "years"],
        "gongkai audit trail P1 (no NATS)": [
            GONGKAI, "audit", "trail", "P1", "--nats-url", nowhere,
        ],
        "gongkai events tail (no NATS)": [
            GONGKAI, "events", "tail", "--no-follow", "--nats-url", nowhere,
        ],
        "gongkai people tokens (no NATS)": [
            GONGKAI, "people", "tokens", "finance-maker", "--nats-url", nowhere,
        ],
        "services imported (gongkai up's host)": [sys.executable, "-c", SERVICES],
    }


@dataclass
class Runs:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def run_once(cmd: list[str], into: Runs) -> None:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    # The tools run against no NATS exit 1 on purpose; their start-up is what is timed.
    subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    into.wall.append(time.perf_counter() - t0)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    into.cpu.append(
        after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    )


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def up_once(more: list[str], into: Runs) -> None:
    """``gongkai up`` on a fresh data directory: wall time from exec to /readyz 200, and CPU
    of the process and its nats-server until it has stopped."""
    with tempfile.TemporaryDirectory(prefix="bench-up-") as tmp:
        http = free_port()
        cmd = [
            GONGKAI, "up", "--data-dir", f"{tmp}/var", "--port", str(http),
            "--nats-port", str(free_port()), "--no-sync", *more,
        ]
        env = {**os.environ, "GONGKAI_LOG_LEVEL": "warning"}
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        # Polled, as the tests and an operator's probe do; 20 ms is far below what is timed.
        while not _ready(http):
            if proc.poll() is not None:
                raise SystemExit(f"{' '.join(cmd)} exited with {proc.returncode}")
            time.sleep(0.02)
        into.wall.append(time.perf_counter() - t0)
        proc.send_signal(signal.SIGTERM)
        _, _, usage = os.wait4(proc.pid, 0)
        into.cpu.append(usage.ru_utime + usage.ru_stime)


def main(argv: list[str] | None = None) -> list[Figure]:
    p = argparse.ArgumentParser(prog="python -m bench.bench_cli", description=__doc__)
    p.add_argument("--runs", type=int, default=9)
    p.add_argument("--up-runs", type=int, default=5)
    args = p.parse_args(argv)
    commands = cases()
    runs = {name: Runs() for name in commands}
    for cmd in commands.values():  # a warm-up each: the page cache, bytecode written
        run_once(cmd, Runs())
    for _ in range(args.runs):
        for name, cmd in commands.items():
            run_once(cmd, runs[name])
    ups = {"gongkai up -> /readyz": [], "gongkai up --demo -> /readyz": ["--demo"]}
    for _ in range(args.up_runs):
        for name, more in ups.items():
            up_once(more, runs.setdefault(name, Runs()))
    med = {n: (statistics.median(r.wall), statistics.median(r.cpu)) for n, r in runs.items()}
    base_wall, base_cpu = med[BASELINE]
    rows = [
        (
            name,
            f"{wall:.3f} s",
            f"{wall / base_wall:.1f}x",
            f"{cpu:.3f} s",
            f"{cpu / base_cpu:.1f}x",
        )
        for name, (wall, cpu) in med.items()
    ]
    print(
        table(
            rows,
            ("command", "wall (median)", f"/ {BASELINE}", "CPU (median)", f"/ {BASELINE}"),
        )
    )
    started = [
        Figure(f"{name}: {what}", med[name][i], "s")
        for name in ups if name in med for i, what in ((0, "wall"), (1, "CPU"))
    ]
    return [
        *started,
        Figure("gongkai --help", med["gongkai --help"][0], "s", target=0.5),
        Figure("gongkai audit --help", med["gongkai audit --help"][0], "s", target=0.5),
        Figure(
            "gongkai audit trail, no NATS: CPU",
            med["gongkai audit trail P1 (no NATS)"][1], "s",
        ),
        Figure(
            "services imported: CPU", med["services imported (gongkai up's host)"][1], "s",
        ),
    ]


if __name__ == "__main__":
    main()
