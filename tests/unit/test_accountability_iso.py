"""The fold's remembered ``isoformat``: the same text as the time's own, whatever came before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from gongkai.events import REGISTRY, Actor, new_event
from gongkai.events.contracts.intake import UnitRegistered
from gongkai_accountability.domain.fold import iso

ZONES = [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-4, minutes=-30)),
         ZoneInfo("America/New_York"), ZoneInfo("Asia/Shanghai")]
TIMES = st.builds(
    lambda naive, zone, fold: naive.replace(tzinfo=zone, fold=fold),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)),
    st.sampled_from(ZONES),
    st.integers(min_value=0, max_value=1),
)


@given(st.lists(TIMES, min_size=1, max_size=12))
def test_iso_is_isoformat_in_any_order(times: list[datetime]) -> None:
    # Each also again right after itself, after an equal instant in another zone, and after
    # its fold's twin: the cases the last-time check must tell apart.
    for ts in times:
        for t in (ts, ts, ts.astimezone(UTC), ts, ts.replace(fold=1 - ts.fold), ts):
            assert iso(t) == t.isoformat()


def test_a_decoded_events_times_print_as_isoformat() -> None:
    """pydantic's own UTC tzinfo (one object for every time it reads with a Z)."""
    at = datetime(2026, 11, 1, 5, 30, 15, 250, tzinfo=UTC)
    env = new_event(
        UnitRegistered(code="u1", name="u1", kind="department", contact_name="x",
                       contact_mobile="x"),
        aggregate_id="u1",
        actor=Actor(person="p", role="operator", unit="system"),
        command_id="c1",
        recorded_at=at,
    )
    back = REGISTRY.decode(env.to_json(), subject_type="UnitRegistered")
    assert iso(back.business_time) == iso(back.recorded_at) == at.isoformat()
    assert iso(at + timedelta(microseconds=1)) == (at + timedelta(microseconds=1)).isoformat()
    assert iso(back.recorded_at) == at.isoformat()


def test_an_ambiguous_local_time_prints_by_its_fold() -> None:
    first = datetime(2025, 11, 2, 1, 30, tzinfo=ZoneInfo("America/New_York"))
    second = first.replace(fold=1)
    assert first == second  # same zone: compared by fields, fold aside
    assert iso(first) == "2025-11-02T01:30:00-04:00"
    assert iso(second) == "2025-11-02T01:30:00-05:00"
    assert iso(first) == "2025-11-02T01:30:00-04:00"
