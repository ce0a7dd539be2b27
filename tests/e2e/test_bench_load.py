"""The load benchmark (``python -m bench.load``) at smoke size, so it cannot rot unnoticed.

The same code as ``make bench`` runs: four ``gongkai service`` processes, the demo directory
(two units here), every route of the chain over HTTP, lag sampled from each ``/metrics``, and
the drain. The figures are not judged (the machine is shared); that everything answered and
drained is.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.load import SERVICES, report, run

pytestmark = pytest.mark.timeout(120)


async def test_load_bench_smoke(tmp_path: Path) -> None:
    res = await run(8, 2, sync=False, work_dir=tmp_path, units=("finance", "education"))
    text = report(res)
    print(text)
    failed = [f"{name}: {e}" for name, r in res.routes.items() for e in r.errors]
    assert res.errors == 0, text + "\n" + "\n".join(failed)
    # Every route of the chain was driven: submit, both signatures, publication, the reads.
    posts = {"intake POST /posts", "intake POST /publications"}
    signatures = {f"review POST /posts/{{id}}/signatures ({s})" for s in ("staff", "leader")}
    assert posts | signatures <= set(res.routes), sorted(res.routes)
    assert len(res.routes["intake POST /publications"].latencies) == 8
    # 8 posts leave at least submission, signatures, conclusion and publication in the log.
    assert res.events >= 8 * 4
    assert set(res.peak_lag) == set(SERVICES)
    assert res.drain_s < 60
    # Ready on every probe while the load ran (readiness is not "zero lag this instant").
    assert res.probes > 0 and res.not_ready == 0, text
    assert {f.unit for f in res.figures()} >= {"posts/s", "events/s"}
    # Where the cores went: every service and the nats-server worked during the load.
    assert set(SERVICES) | {"nats-server"} <= set(res.cpu_s)
    assert all(res.cpu_s[n] > 0 for n in (*SERVICES, "nats-server")), res.cpu_s
