"""The platform as deploy runs it: one ``gongkai service NAME`` process per service.

Separate processes (not ``gongkai up``) so that each service's consumer lag (its own
``/metrics``) and its memory (its own RSS) can be told apart. The nats-server is started by the
caller (``bench.common.server``), so a benchmark can fill the log before any service starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from gongkai.natsserver import free_port

SERVICES = ("intake", "review", "freshness", "accountability")
GONGKAI = str(Path(sys.executable).parent / "gongkai")
_LAG = re.compile(r'^gongkai_consumer_lag\{consumer="([^"]+)"\} ([0-9.e+]+)$', re.M)


@dataclass
class ServiceProcess:
    """One service in its own process, on its own port and SQLite file."""

    name: str
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes]
    #: Highest resident set size seen by ``sample_rss`` (process and children), bytes.
    peak_rss: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _summed(self, measure: Callable[[psutil.Process], float]) -> float:
        """``measure`` summed over the process and its children (0 once it has exited); a
        child that exits while it is read counts nothing."""
        try:
            p = psutil.Process(self.proc.pid)
            procs = [p, *p.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        total = 0.0
        for q in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += measure(q)
        return total

    def rss(self) -> int:
        """Resident memory of the process and its children, bytes (0 once it has exited)."""
        return int(self._summed(lambda q: q.memory_info().rss))

    def cpu_seconds(self) -> float:
        """User + system CPU of the process and its children so far (0 once it has exited)."""

        def busy(q: psutil.Process) -> float:
            t = q.cpu_times()
            return t.user + t.system

        return self._summed(busy)

    def sample_rss(self) -> int:
        rss = self.rss()
        self.peak_rss = max(self.peak_rss, rss)
        return rss

    async def lags(self, client: httpx.AsyncClient) -> dict[str, float] | None:
        """``gongkai_consumer_lag`` per consumer from ``/metrics``; None if it did not answer."""
        try:
            r = await client.get(f"{self.base}/metrics", timeout=5)
        except httpx.HTTPError:
            return None
        if r.status_code != 200:
            return None
        return {name: float(v) for name, v in _LAG.findall(r.text)}

    async def ready(self, client: httpx.AsyncClient) -> bool:
        try:
            r = await client.get(f"{self.base}/readyz", timeout=5)
        except httpx.HTTPError:
            return False
        return r.status_code == 200

    def tail(self, chars: int = 2000) -> str:
        return f"--- {self.name}\n" + self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Platform:
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    @property
    def ports(self) -> dict[str, int]:
        return {n: p.port for n, p in self.processes.items()}

    def stop(self) -> None:
        for p in self.processes.values():
            p.stop()

    def logs(self) -> str:
        return "\n".join(p.tail() for p in self.processes.values())


def start_services(
    nats_url: str,
    data_dir: Path,
    names: Iterable[str] = SERVICES,
    extra_env: dict[str, str] | None = None,
) -> Platform:
    """Start each service as ``gongkai service NAME`` against ``nats_url``; do not wait."""
    data_dir.mkdir(parents=True, exist_ok=True)
    platform = Platform()
    for name in names:
        port = free_port()
        env = {
            **os.environ,
            "GONGKAI_NATS_URL": nats_url,
            "GONGKAI_DATA_DIR": str(data_dir),
            "GONGKAI_HTTP_PORT": str(port),
            "GONGKAI_LOG_FORMAT": "json",
            # At info every recorded event is a log line: the bench would measure the log file.
            "GONGKAI_LOG_LEVEL": "warning",
            **(extra_env or {}),
        }
        log_path = data_dir / f"{name}.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [GONGKAI, "service", name],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        platform.processes[name] = ServiceProcess(name, port, log_path, proc)
    return platform


async def wait_ready(client: httpx.AsyncClient, platform: Platform, within: float) -> float:
    """Seconds until every service answers ``/readyz`` with 200 (caught up with the log)."""
    t0 = time.monotonic()
    pending = set(platform.processes)
    while pending:
        for name in list(pending):
            p = platform.processes[name]
            if p.proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {p.proc.returncode}\n{p.tail()}")
            if await p.ready(client):
                pending.discard(name)
        if time.monotonic() - t0 > within:
            raise TimeoutError(f"not ready within {within} s: {sorted(pending)}\n{platform.logs()}")
        if pending:
            await asyncio.sleep(0.2)
    return time.monotonic() - t0
