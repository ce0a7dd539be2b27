"""``gongkai audit report --format html`` against a real log: a sparkline per unit."""

from __future__ import annotations

import re

from tests.integration.test_accountability_service import Rig, gongkai, rig, submit_and_publish

__all__ = ["rig"]  # the fixture, imported for pytest


async def test_html_report_draws_each_units_score_over_time(rig: Rig) -> None:
    await submit_and_publish(rig, "P1", "pub1")  # 03-02: unreviewed, minor: 95
    await rig.svc.settle()
    code, out, err = await gongkai(
        "audit",
        "report",
        "--nats-url",
        rig.ctx.nats_url,
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-31",
        "--format",
        "html",
    )
    assert code == 0, err
    assert out.startswith("<!doctype html>") and "<script" not in out
    units = re.findall(r'<td class="unit">([^<]+)</td>', out)
    sparks = re.findall(r'<svg class="spark"[^>]*data-scores="([^"]+)"', out)
    assert len(sparks) == len(units) and "finance" in units
    finance = dict(p.split(":") for p in sparks[units.index("finance")].split())
    # Registered and the violation recorded on 03-02: the first point (03-01) knows nothing.
    assert finance == {
        "2026-03-01": "-",
        "2026-03-08": "95",
        "2026-03-15": "95",
        "2026-03-22": "95",
        "2026-03-29": "95",
        "2026-03-31": "95",
    }
