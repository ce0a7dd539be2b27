"""The overview's sparkline: one unit's scores as SVG polyline points, higher scores higher."""

from __future__ import annotations

import pytest

from gongkai_accountability.entrypoints.console.views import SPARK_H, SPARK_W, sparkline


@pytest.mark.parametrize(
    ("series", "points"),
    [
        ([], ""),
        ([None, None, 90], ""),  # one known point: no line to draw
        ([100, 0], f"1.0,1.0 {SPARK_W - 1:.1f},{SPARK_H - 1:.1f}"),
        ([None, 100, 50], f"{1 + (SPARK_W - 2) / 2:.1f},1.0 {SPARK_W - 1:.1f},11.0"),
    ],
)
def test_sparkline_points(series: list[int | None], points: str) -> None:
    assert sparkline(series) == points
