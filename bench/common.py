"""Helpers for the benchmarks: a throwaway nats-server, a results table, figures for run_all."""

from __future__ import annotations

import signal
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gongkai.natsserver import NatsServer


@dataclass(frozen=True)
class Figure:
    """One benchmark's headline number, handed to ``make bench``'s summary table.

    ``baseline`` names the raw NATS rate measured at the start of the same run that the value
    is a share of: ``"append"`` (nats-py ``publish_async``, events in) or ``"replay"`` (a raw
    ordered consumer, events out). ``target`` is an upper bound the value must stay under.
    """

    name: str
    value: float
    unit: str
    baseline: str | None = None
    target: float | None = None


@contextmanager
def server(sync_always: bool = False) -> Iterator[NatsServer]:
    with tempfile.TemporaryDirectory(prefix="gongkai-bench-") as d:
        srv = NatsServer(store_dir=Path(d), sync_always=sync_always).start()
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
