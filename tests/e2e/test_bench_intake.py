"""The submission benchmark (``python -m bench.bench_intake``) at smoke size, with a second
intake process, so neither the paths nor ``--workers`` can rot unnoticed. The figures are not
judged (the machine is shared); that every submission was answered 201 is (``check``)."""

from __future__ import annotations

import pytest

from bench.bench_intake import run

pytestmark = pytest.mark.timeout(120)


async def test_bench_intake_smoke_with_two_processes() -> None:
    raw, driven = await run(20, 4, sync=False, paths=("http", "bus"), workers=2)
    assert set(driven) == {"http", "bus"}
    for got in driven.values():
        assert len(got.latencies) == 20 and got.rate > 0 and got.cpu_ms > 0
    assert raw["nats"] > 0 and raw["client"] > 0
