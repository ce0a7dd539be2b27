"""Services catching up over a filled log: seconds until ready, CPU seconds, peak memory.

    python -m bench.bench_catchup fill [N]             # a county's log of about N events, once
    python -m bench.bench_catchup run NAME [--spy SVG]  # NAME from an empty database on a copy
    python -m bench.bench_catchup run all --settle 20  # the four at once, memory 20 s after
    python -m bench.bench_catchup rebuild              # accountability's rebuild, same log

``fill`` writes ``bench_memory``'s log of a county (100,000 events by default) into a
nats-server data directory under ``--dir``, signed with keys kept beside it. ``run`` starts
``gongkai service NAME`` (or several, or ``all`` four at once, as after a restore) on a copy of
that directory (a service appends to the log and makes durable consumers, so every run starts
from the same log) and reports when each first answered (its start-up: imports, migrations,
connection) and when it was ready with no consumer lag, with the CPU seconds
of the process and its children (on a shared machine the wall time is mostly the service's
turn on a core, the CPU seconds are what it costs) and its peak RSS, sampled ``--settle``
seconds more after the last was ready (accountability signs what it owes once caught up).
``rebuild`` times accountability's rebuild on a copy of the same log: the rate its catch-up
(from its first answer to ready: the rebuild's clock too starts with the log connected) is
held to. ``--spy`` records a py-spy flame graph of the (first) service meanwhile (py-spy is
not in the lock: ``.venv/bin/pip install py-spy``). How the profiles in bench/profiles/ were
made.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.bench_memory import fill, rebuild_rate
from bench.load.platform import SERVICES, start_services
from gongkai.eventlog import EventLog, StreamSettings
from gongkai.natsserver import NatsServer
from gongkai.runtime.settings import Settings
from gongkai.trust.keys import provision

DEFAULT_DIR = Path(tempfile.gettempdir()) / "gongkai-bench-catchup"


async def fill_log(base: Path, n: int) -> int:
    """The county's log of about ``n`` events under ``base``; its length."""
    shutil.rmtree(base, ignore_errors=True)
    keys = provision(Settings.from_env(data_dir=base / "var").keys_path)
    srv = NatsServer(store_dir=base / "nats", sync_always=False).start()
    try:
        evlog = await EventLog.connect(srv.url, keys=keys)
        await evlog.ensure_stream(StreamSettings())
        total = await fill(evlog, n)
        await evlog.close()
    finally:
        srv.stop()
    return total


def thread_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds of the process's main thread (the event loop: reading and decoding) and of
    its other threads (a projection's batches run in the executor's)."""
    main = other = 0.0
    for t in psutil.Process(pid).threads():
        if t.id == pid:
            main += t.user_time + t.system_time
        else:
            other += t.user_time + t.system_time
    return main, other


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a process and its children so far."""
    p = psutil.Process(pid)
    total = 0.0
    for q in [p, *p.children(recursive=True)]:
        t = q.cpu_times()
        total += t.user + t.system
    return total


async def run(
    base: Path,
    names: list[str],
    spy: Path | None,
    settle: float = 0.0,
    timeline: float = 0.0,
) -> dict[str, tuple[float, float, float, float]]:
    """Each of ``names`` started at once on one copy of the log: seconds until it was ready
    behind it, its CPU seconds then, and its peak RSS (MB) until then and ``settle`` seconds
    after the last was ready (accountability decides and signs what it owes once caught up),
    and when that peak was seen (seconds from the start). ``spy`` records the first service.

    ``timeline`` (seconds, 0 for none) prints, that often, each service's CPU share of one
    core since the last line and its consumers' summed lag, and nats-server's share: whether
    a service still behind is waiting or starved of a core shows there."""
    work = base / "run"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(base / "nats", work / "nats")
    shutil.copytree(base / "var", work / "var")
    srv = NatsServer(store_dir=work / "nats", sync_always=False).start()
    out: dict[str, tuple[float, float, float, float]] = {}
    try:
        platform = start_services(srv.url, work / "var", names)
        procs = {name: platform.processes[name] for name in names}
        recorder = None
        if spy is not None:
            recorder = subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--rate", "100",
                 "--nolineno", "--format", "raw" if spy.suffix == ".txt" else "flamegraph",
                 "-o", str(spy),
                 "--pid", str(procs[names[0]].proc.pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        t0 = time.monotonic()
        line = _Timeline(timeline, {**{n: p.proc.pid for n, p in procs.items()},
                                    "nats-server": srv.proc.pid if srv.proc else None}, t0)
        ready: dict[str, tuple[float, float]] = {}
        #: When each first answered and its CPU seconds then: its start-up, apart from the
        #: catch-up that follows (the rebuild's clock starts with the log connected).
        up: dict[str, tuple[float, float]] = {}
        threads: dict[str, tuple[float, float]] = {}
        peak_at: dict[str, float] = {}

        def sample(name: str, p: Any) -> None:
            was = p.peak_rss
            if p.sample_rss() > was:
                peak_at[name] = time.monotonic() - t0

        try:
            async with httpx.AsyncClient() as client:
                while len(ready) < len(names):
                    for name, p in procs.items():
                        if p.proc.poll() is not None:
                            raise RuntimeError(f"{name} exited\n{p.tail()}")
                        sample(name, p)
                        if name in ready:
                            continue
                        lags = await p.lags(client)
                        line.lag(name, lags)
                        if lags is not None and name not in up:
                            up[name] = (time.monotonic() - t0, cpu_seconds(p.proc.pid))
                        if lags and not any(lags.values()) and await p.ready(client):
                            ready[name] = (time.monotonic() - t0, cpu_seconds(p.proc.pid))
                            threads[name] = thread_cpu(p.proc.pid)
                    line.maybe_print()
                    await asyncio.sleep(0.2)
                until = time.monotonic() + settle
                while time.monotonic() < until:
                    for name, p in procs.items():
                        sample(name, p)
                    await asyncio.sleep(0.2)
        finally:
            if recorder is not None:
                recorder.send_signal(2)  # py-spy writes its graph on SIGINT
                recorder.wait(60)
            platform.stop()
    finally:
        srv.stop()
    for name, (seconds, cpu) in ready.items():
        out[name] = (seconds, cpu, procs[name].peak_rss / 2**20, peak_at.get(name, 0.0))
    for name, (main, other) in threads.items():
        print(f"{name}: CPU s of the event loop's thread {main:.1f}, of the others {other:.1f}")
    for name, (at, cpu) in up.items():
        if name in ready:
            print(
                f"{name}: first answer after {at:.1f} s, {cpu:.1f} CPU s; from there to ready "
                f"{ready[name][0] - at:.1f} s, {ready[name][1] - cpu:.1f} CPU s"
            )
    return out


class _Timeline:
    """``run``'s ``timeline``: each process's share of a core between two lines, and lags."""

    def __init__(self, every: float, pids: dict[str, int | None], t0: float) -> None:
        self.every = every
        self.procs = {n: pid for n, pid in pids.items() if pid is not None}
        self.t0 = self.last = t0
        self.cpu: dict[str, float] = {}
        self.cpu = {n: self._cpu(n) for n in self.procs} if every else {}
        self.lags: dict[str, float] = {}

    def _cpu(self, name: str) -> float:
        try:
            return cpu_seconds(self.procs[name])  # as ready's figure: children included
        except psutil.Error:  # gone: nothing more since the last line
            return self.cpu.get(name, 0.0)

    def lag(self, name: str, lags: dict[str, float] | None) -> None:
        if lags is not None:
            self.lags[name] = sum(lags.values())

    def maybe_print(self) -> None:
        now = time.monotonic()
        if not self.every or now - self.last < self.every:
            return
        cells = []
        for name in self.procs:
            cpu = self._cpu(name)
            share = (cpu - self.cpu[name]) / (now - self.last)
            self.cpu[name] = cpu
            lag = f" lag {self.lags[name]:,.0f}" if name in self.lags else ""
            cells.append(f"{name} {share:.0%}{lag}")
        self.last = now
        print(f"{now - self.t0:6.0f} s  " + "  ".join(cells), flush=True)


async def rebuild(base: Path) -> tuple[int, float]:
    """accountability's rebuild on a copy of the log (``gongkai audit rebuild``'s path, after
    a signed checkpoint of the whole log, as a running service signs them): events, events/s.
    The same-run baseline its catch-up is held to (issue 18: at least half its rate)."""
    work = base / "run"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(base / "nats", work / "nats")
    shutil.copytree(base / "var", work / "var")
    keys = provision(Settings.from_env(data_dir=work / "var").keys_path)
    srv = NatsServer(store_dir=work / "nats", sync_always=False).start()
    try:
        evlog = await EventLog.connect(srv.url, keys=keys)
        try:
            rate = await rebuild_rate(evlog, work)
            total = await evlog.last_sequence()
        finally:
            await evlog.close()
    finally:
        srv.stop()
    return total, rate


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m bench.bench_catchup", description=(__doc__ or "").splitlines()[0]
    )
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="where the filled log lives")
    sub = ap.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fill", help="write the county's log once")
    f.add_argument("n", nargs="?", type=int, default=100_000)
    r = sub.add_parser("run", help="one service alone on a copy of the log")
    r.add_argument("names", nargs="+", choices=[*SERVICES, "all"], metavar="NAME",
                   help=f"one or more of {', '.join(SERVICES)}, or all: started at once")
    r.add_argument("--spy", type=Path,
                   help="a py-spy flame graph of the first service, here (.txt: collapsed stacks)")
    r.add_argument("--settle", type=float, default=0.0,
                   help="seconds to go on sampling memory after the last one was ready")
    r.add_argument("--timeline", type=float, default=0.0,
                   help="every so many seconds, each process's share of a core and its lag")
    sub.add_parser("rebuild", help="accountability's rebuild on a copy of the log")
    args = ap.parse_args(argv)
    if args.command == "fill":
        total = asyncio.run(fill_log(args.dir, args.n))
        print(f"{total:,} events under {args.dir}")
        return
    if not (args.dir / "nats").is_dir():
        raise SystemExit(f"no log under {args.dir}: run 'fill' first")
    if args.command == "rebuild":
        total, rate = asyncio.run(rebuild(args.dir))
        print(
            f"accountability's rebuild: {total:,} events, {rate:,.0f} events/s "
            f"(load average {os.getloadavg()[0]:.2f})"
        )
        return
    names = list(SERVICES) if "all" in args.names else list(dict.fromkeys(args.names))
    figures = asyncio.run(run(args.dir, names, args.spy, args.settle, args.timeline))
    for name, (seconds, cpu, mb, at) in figures.items():
        print(
            f"{name}: ready after {seconds:.1f} s, {cpu:.1f} CPU s, peak {mb:.0f} MB at {at:.0f} s "
            f"(load average {os.getloadavg()[0]:.2f})"
        )


if __name__ == "__main__":
    main()
