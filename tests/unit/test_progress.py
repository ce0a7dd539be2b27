"""A projection's progress: given/when/then for readiness under writes, stalls and catch-up ETA.

Time is passed in, so "stalled for 60 s" is a number in a table, not a wait.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gongkai.runtime.progress import WINDOW, Progress

# (name, positions applied at times [(t, position)], looks [(t, lag)], stalled at the last look)
CASES = [
    ("never behind", [(0, 10)], [(100, 0)], 0.0),
    ("a little behind, moving: never stalled", [(0, 10), (1, 20), (2, 30)], [(2.5, 3)], 0.0),
    ("behind since the first look, nothing applied since", [(0, 10)], [(10, 5), (70, 5)], 60.0),
    (
        "an idle hour, then a burst: behind from the look that saw it, not from the last event",
        [(0, 10)],
        [(3600, 0), (3605, 500)],
        0.0,
    ),
    ("progress after a stall ends it", [(0, 10), (65, 20)], [(5, 5), (64, 5), (66, 5)], 1.0),
    ("caught up again forgets the stall", [(0, 10)], [(5, 5), (100, 0), (101, 5)], 0.0),
]


@pytest.mark.parametrize(
    ("applied", "looks", "stalled"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_given_progress_when_looked_at_then_stalled_for(
    applied: list[tuple[float, int]], looks: list[tuple[float, int]], stalled: float
) -> None:
    p = Progress()
    events = sorted(
        [(t, "apply", v) for t, v in applied] + [(t, "look", v) for t, v in looks],
        key=lambda e: (e[0], e[1] == "look"),
    )
    seen = 0.0
    for t, kind, v in events:
        if kind == "apply":
            p.advanced(v, now=t)
        else:
            seen = p.observe(v, now=t)
    assert seen == pytest.approx(stalled)


def test_given_a_steady_catch_up_then_rate_and_eta_follow_from_it() -> None:
    p = Progress()
    for second in range(11):
        p.advanced(1000 * second, now=float(second))
    snap = p.snapshot("acc", 10_000, 40_000, 30_000, caught_up_once=False, now=10.0)
    assert snap.rate == pytest.approx(1000.0)
    assert snap.eta == pytest.approx(30.0)
    assert snap.as_dict()["eta_seconds"] == 30.0


def test_given_no_samples_then_no_rate_and_no_eta() -> None:
    snap = Progress().snapshot("acc", 0, 10, 10, caught_up_once=False, now=1.0)
    assert snap.rate is None and snap.eta is None


def test_the_rate_spans_the_recent_window_only() -> None:
    p = Progress()
    p.advanced(0, now=0.0)
    p.advanced(1_000_000, now=1.0)  # a fast start long ago...
    for t in range(200, 231):
        p.advanced(1_000_000 + 10 * (t - 200), now=float(t))  # ...then 10 events/s
    assert p.rate(now=230.0) == pytest.approx(10.0, rel=0.1)
    assert WINDOW <= 60


@given(
    st.lists(
        st.tuples(st.floats(0, 1e4), st.integers(0, 100)), min_size=1, max_size=30
    )
)
def test_stalled_is_never_negative_nor_longer_than_the_time_behind(
    looks: list[tuple[float, int]],
) -> None:
    p = Progress()
    first_behind: float | None = None
    for t, lag in sorted(looks):
        stalled = p.observe(lag, now=t)
        if lag == 0:
            first_behind = None
            assert stalled == 0
        else:
            first_behind = t if first_behind is None else first_behind
            assert 0 <= stalled <= t - first_behind + 1e-9
