"""`make bench`: run every benchmark in bench/ one after another (never two at once).

    python -m bench.run_all [--events N]      (or BENCH_EVENTS=N; default 1,000,000)

Each ``bench_*`` module and the HTTP load (``bench.load``), one after the other; each prints its
own tables and returns its headline figures. At the end, one summary table: every figure, and
where it is a rate, its share of the raw baseline *that benchmark measured in its own run*
(nats-py ``publish_async`` into the same nats-server, a raw ordered consumer over the same log,
the peer library's save on the same disk), named in the row, so the summary's ratio is the ratio
the benchmark's own table printed and runs on a busy or a faster machine compare. A figure
without a raw rate of its own beside it has no ratio: one baseline measured minutes earlier, on
a different log, disagreed with the benchmarks' own (57 % against 44 % for the same append).

``--events`` sizes the runs: the log the accountability rebuild and the memory benchmark read
(1,000,000 by default, the issue's figure), and in proportion the smaller runs, so a quick look
(``BENCH_EVENTS=20000 make bench``) takes a minute or two instead of many.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import Figure, stop_on_sigterm, table

#: Benchmarks ``make bench`` leaves to be run by hand: bench_catchup fills a log once and times
#: one service at a time against copies of it (its own ``fill``, ``run`` and ``rebuild``
#: commands, minutes each at 1,000,000 events); the summary's catch-up rows come from
#: bench_memory. Run without a command it stopped ``make bench`` with a usage error.
BY_HAND = frozenset({"bench_catchup"})


def benchmarks() -> list[str]:
    """The modules ``make bench`` runs, in order: every ``bench_*`` but those run by hand."""
    here = Path(__file__).parent
    found = (m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    return sorted(n for n in found if n not in BY_HAND)


def plan(events: int) -> dict[str, list[str]]:
    """Arguments for each benchmark, scaled from the size of the big log."""
    small = max(1000, min(20000, events // 50))
    return {
        "bench_accountability": [str(events)],
        "bench_eventlog": [str(small)],
        "bench_freshness": [
            "--units",
            str(max(50, min(1000, events // 1000))),
            "--events",
            str(max(500, min(5000, events // 200))),
        ],
        "bench_intake": [str(max(200, min(2000, events // 500)))],
        "bench_memory": [str(events)],
        "bench_peer": [str(max(2000, min(10000, events // 100)))],
        "load": ["--posts", str(max(30, min(500, events // 2000)))],
    }


def fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "MB":
        return f"{value:,.0f} MB"
    return f"{value:,.0f} {unit}"


def summary(figures: list[tuple[str, Figure]]) -> str:
    """Every figure; a rate beside its share of the baseline its own benchmark run measured."""
    rows: list[tuple[str, ...]] = []
    for bench, f in figures:
        share, of = "", ""
        if f.baseline is not None and f.share is not None:
            share = f"{f.share:.1%}"
            of = f"{f.baseline.name}: {fmt(f.baseline.value, f.baseline.unit)}"
        verdict = ""
        if f.target is not None:
            verdict = f"< {f.target:g} {f.unit}: " + ("ok" if f.value < f.target else "OVER")
        if f.share_target is not None and f.share is not None:
            verdict = f">= {f.share_target:.0%}: " + (
                "ok" if f.share >= f.share_target else "UNDER"
            )
        rows.append((bench, f.name, fmt(f.value, f.unit), share, of, verdict))
    return table(
        rows,
        ("benchmark", "figure", "value", "share", "of (raw, same benchmark run)", "target"),
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run_all", description=__doc__)
    p.add_argument(
        "--events",
        type=int,
        default=int(os.environ.get("BENCH_EVENTS") or 1_000_000),
        help="events in the big log (env BENCH_EVENTS); the other runs scale with it",
    )
    args = p.parse_args(argv)
    stop_on_sigterm()
    names = [*benchmarks(), "load"]
    arguments = plan(args.events)
    started = time.perf_counter()

    figures: list[tuple[str, Figure]] = []
    failed = []
    for name in names:
        print(f"\n=== {name} {' '.join(arguments.get(name, []))} ===", flush=True)
        t0 = time.perf_counter()
        mod = importlib.import_module(f"bench.{name}")
        run: Callable[[list[str]], list[Figure]] = mod.main
        try:
            result = run(arguments.get(name, []))
        except (Exception, SystemExit) as exc:  # report and go on with the other benchmarks
            failed.append(name)
            print(f"{name} failed: {exc!r}")
            continue
        finally:
            print(f"({time.perf_counter() - t0:.1f} s)", flush=True)
        figures += [(name.removeprefix("bench_"), f) for f in result]

    la = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"\n=== summary: {args.events:,} events, {time.perf_counter() - started:.0f} s, "
        f"load average {la} ==="
    )
    print(summary(figures))
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
