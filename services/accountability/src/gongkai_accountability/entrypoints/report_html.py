"""The compliance report as one self-contained HTML page: the table, and each unit's score
over the period drawn as an inline SVG sparkline (no script, nothing fetched: the file can be
mailed, archived and opened offline)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import date
from typing import Any

from gongkai_accountability.domain.report import ScoreHistory

WIDTH, HEIGHT, PAD = 240, 44, 4


def x_of(i: int, n: int) -> float:
    inner = WIDTH - 2 * PAD
    return PAD + (inner * i / (n - 1) if n > 1 else inner / 2)


def y_of(score: int, low: int = 0) -> float:
    """100 at the top, ``low`` at the bottom."""
    return PAD + (HEIGHT - 2 * PAD) * (100 - score) / (100 - low)


def scale_floor(history: ScoreHistory) -> int:
    """The bottom of every sparkline's scale: the lowest score drawn, rounded down to a
    multiple of 10 (at most 90). One scale for all units, so their lines compare; not 0, so a
    5-point lapse is visible."""
    known = [s for series in history.scores.values() for s in series if s is not None]
    return min(90, (min(known, default=100) // 10) * 10)


def _fmt(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def sparkline(
    points: Sequence[date], scores: Sequence[int | None], label: str, low: int = 0
) -> str:
    """One unit's score at each point as an SVG polyline (``low`` at the bottom, 100 at the
    top, faint lines at both).

    Points where the unit was not yet known are left out, breaking the line there. The
    ``data-scores`` attribute and the ``<title>`` (a tooltip) carry the figures themselves.
    """
    n = len(points)
    segments: list[list[str]] = [[]]
    for i, s in enumerate(scores):
        if s is None:
            if segments[-1]:
                segments.append([])
            continue
        segments[-1].append(f"{_fmt(x_of(i, n))},{_fmt(y_of(s, low))}")
    grid = "".join(
        f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{_fmt(y_of(g, low))}" '
        f'y2="{_fmt(y_of(g, low))}" class="grid"/>'
        for g in (100, low)
    )
    lines = "".join(
        f'<polyline points="{" ".join(seg)}" class="score"/>' if len(seg) > 1 else ""
        for seg in segments
    )
    dots = ""
    known = [(i, s) for i, s in enumerate(scores) if s is not None]
    if known:
        i, s = known[-1]
        dots = f'<circle cx="{_fmt(x_of(i, n))}" cy="{_fmt(y_of(s, low))}" r="2.5" class="last"/>'
    pairs = list(zip(points, scores, strict=True))
    data = " ".join(f"{p.isoformat()}:{'-' if s is None else s}" for p, s in pairs)
    tip = html.escape(f"{label}: " + ", ".join(f"{p:%m-%d} {s}" for p, s in pairs if s is not None))
    return (
        f'<svg class="spark" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{html.escape(label)} score over time" '
        f'data-scores="{data}"><title>{tip}</title>{grid}{lines}{dots}</svg>'
    )


STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
    "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}td.unit{text-align:left}"
    "svg.spark .grid{stroke:#ddd;stroke-width:1}"
    "svg.spark .score{fill:none;stroke:#2a7;stroke-width:1.5}svg.spark .last{fill:#2a7}"
)


def render(
    start: date,
    end: date,
    rows: Sequence[dict[str, Any]],
    fields: Sequence[str],
    history: ScoreHistory,
) -> str:
    """The page: one row per unit, ranked, with its sparkline beside the figures."""
    e = html.escape
    low = scale_floor(history)
    head = "".join(f"<th>{e(k)}</th>" for k in fields) + "<th>score over time</th>"
    body = []
    for r in rows:
        scores = history.scores.get(r["unit"], [None] * len(history.points))
        cells = "".join(
            f'<td class="{k}">{e(str(r[k]))}</td>' if k == "unit" else f"<td>{e(str(r[k]))}</td>"
            for k in fields
        )
        spark = sparkline(history.points, scores, r["unit"], low)
        body.append(f"<tr>{cells}<td>{spark}</td></tr>")
    first, last = history.points[0], history.points[-1]
    return (
        f"<!doctype html><html lang=en><meta charset=utf-8>"
        f"<title>gongkai compliance {start}..{end}</title><style>{STYLE}</style>"
        f"<h1>Compliance {start} – {end}</h1>"
        f"<p>Score: 100 − 5 per minor, − 15 per serious violation since {start}, − 2 per column "
        f"stale that day. Sparklines: the score on {len(history.points)} days from {first} to "
        f"{last}, on one scale for every unit ({low} at the bottom, 100 at the top; hover for "
        f"the figures).</p>"
        f"<table><tr>{head}</tr>{''.join(body)}</table></html>"
    )
