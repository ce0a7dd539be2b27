"""Helpers for the benchmarks: a throwaway nats-server, a results table, figures for run_all."""

from __future__ import annotations

import asyncio
import resource
import signal
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nats

from gongkai.natsserver import NatsServer


@dataclass(frozen=True)
class Baseline:
    """A raw rate measured inside the same benchmark run as the figures divided by it.

    ``name`` says what was measured and how (``"raw nats-py publish_async, same nats-server"``),
    so the summary can say which baseline each ratio divides by.
    """

    name: str
    value: float
    unit: str = "msg/s"


@dataclass(frozen=True)
class Figure:
    """One benchmark's headline number, handed to ``make bench``'s summary table.

    ``baseline``: the raw rate this value is a share of, measured in the same benchmark run
    (same process, same nats-server, minutes apart at most): the summary's ratio divides by it
    and names it. ``target`` is an upper bound the value must stay under; ``share_target`` a
    lower bound for the share of the baseline (0.15: at least 15 %).
    """

    name: str
    value: float
    unit: str
    baseline: Baseline | None = None
    target: float | None = None
    share_target: float | None = None

    @property
    def share(self) -> float | None:
        return self.value / self.baseline.value if self.baseline else None


@contextmanager
def server(sync_always: bool = False, monitor: bool = False) -> Iterator[NatsServer]:
    """A nats-server in a temporary directory; ``monitor``: with its monitoring port
    (``/varz``, ``/subsz``) on a free one."""
    with tempfile.TemporaryDirectory(prefix="gongkai-bench-") as d:
        srv = NatsServer(
            store_dir=Path(d), sync_always=sync_always, monitor_port=0 if monitor else None
        ).start()
        try:
            yield srv
        finally:
            srv.stop()


class Timer:
    def __enter__(self) -> Timer:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.t0


def table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    return "\n".join(out)


def stop_on_sigterm() -> None:
    """Turn SIGTERM (``timeout``, a CI runner giving up) into KeyboardInterrupt.

    The benchmarks start service processes in their own sessions and nats-servers; only an
    exception runs the ``finally`` blocks that stop them, and Python's default SIGTERM does not.
    """

    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _raise)


def process_cpu() -> float:
    """This process's CPU seconds (user + system)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def raw_ordered_read(url: str, n: int) -> tuple[float, float]:
    """The raw replay baseline: nats-py's ordered push consumer over every event subject,
    counting ``n`` messages and decoding nothing. Returns (seconds, this process's CPU s).

    On a connection of nats-py's own, not an ``EventLog``'s (which leaves each message's
    headers unparsed until read): what gongkai's client does never moves its baseline.
    """
    nc = await nats.connect(url)
    js = nc.jetstream()
    done = asyncio.Event()
    count = 0

    async def cb(msg: object) -> None:
        nonlocal count
        count += 1
        if count >= n:
            done.set()

    cpu = process_cpu()
    with Timer() as t:
        sub = await js.subscribe(
            "gk.ev.>", ordered_consumer=True, cb=cb, pending_msgs_limit=65536,
            pending_bytes_limit=256 * 1024 * 1024,
        )
        await done.wait()
    cpu = process_cpu() - cpu
    await sub.unsubscribe()
    await nc.close()
    return t.seconds, cpu
