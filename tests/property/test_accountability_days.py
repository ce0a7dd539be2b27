"""The kept days (``adapters.days``) answer every day as folding the log up to that day does.

The console asks ``Days.rows(day)``: each kept table as the versions of its rows that stood at
the end of that day, and publications from their compact index. Under arbitrary histories of
two units (``test_accountability_fold``'s: posts, approvals, publications and removals, columns
going stale and refreshed, findings; accountability settling each day as the service's tick
does), every day before, during and after the history is held against the fold of the events
an as-of view includes (``fold.as_of_day``), as ``fold_log(until=day)`` folds them: each kept
table row for row, and the latest publication of every column. A clock behind the others (an
event recorded on a day already passed) leaves the days from its day on unanswered, never
answered wrong.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from gongkai.events import Envelope
from gongkai.masking import masked_event
from gongkai_accountability.adapters.days import KEPT, Days, Publications
from gongkai_accountability.domain.fold import as_of_day, evolve
from gongkai_accountability.domain.report import latest_publications
from gongkai_accountability.domain.rows import MemoryRows, Rows
from gongkai_accountability.domain.tables import BY_NAME, PUBLICATION, Publication, Step
from tests.property.test_accountability_fold import DAYS, LIVES, START, lived


def _lived(facts: list[tuple[int, str, tuple[Any, ...]]]) -> list[Envelope[Any]]:
    """The log of a history, settled at the end of every day."""
    return lived(facts).events


def _fold_until(events: list[Envelope[Any]], day: date) -> MemoryRows:
    rows = MemoryRows()
    for seq, env in enumerate(events, 1):
        if as_of_day(env) <= day:
            evolve(rows, masked_event(env), seq)
    return rows


def _same_tables(got: Rows, want: MemoryRows, day: date) -> None:
    for name in KEPT:
        table = BY_NAME[name]
        assert dict(got.scan(table)) == dict(want.scan(table)), (day, name)
    assert latest_publications(got, day) == latest_publications(want, day), day


def _asked() -> list[date]:
    return [START + timedelta(days=d) for d in range(-1, DAYS + 2)]


@settings(max_examples=60, deadline=None)
@given(facts=LIVES)
def test_every_kept_day_is_the_fold_of_the_log_up_to_it(
    facts: list[tuple[int, str, tuple[Any, ...]]],
) -> None:
    events = _lived(facts)
    days = Days()
    for seq, env in enumerate(events, 1):
        days.feed(seq, env)
    event(f"days kept: {min(days.kept_days, 5)}+")
    for day in _asked():
        got = days.rows(day)
        assert got is not None, day
        want = _fold_until(events, day)
        _same_tables(got, want, day)
        for pid, pub in want.scan(PUBLICATION):
            mine = got.get(PUBLICATION, pid)
            assert mine is not None, (day, pid)
            # What the index keeps of a publication: the views' facts and who reported it.
            assert (
                mine.online_at, mine.removed, mine.unit, mine.column, mine.trail[0].actor
            ) == (pub.online_at, pub.removed, pub.unit, pub.column, pub.trail[0].actor), (day, pid)


@settings(max_examples=40, deadline=None)
@given(facts=LIVES, late=st.integers(0, 10_000), back=st.integers(1, 5))
def test_a_clock_behind_leaves_its_days_unanswered_and_the_rest_exact(
    facts: list[tuple[int, str, tuple[Any, ...]]], late: int, back: int
) -> None:
    events = _lived(facts)
    # One more event, recorded ``back`` days before the last day with events.
    last = max(as_of_day(e) for e in events)
    behind = events[late % len(events)]
    moved = behind.model_copy(
        update={
            "event_id": "late-" + behind.event_id,
            "recorded_at": behind.recorded_at.replace(
                year=last.year, month=last.month, day=last.day
            ) - timedelta(days=back),
        }
    )
    events = [*events, moved]
    days = Days()
    for seq, env in enumerate(events, 1):
        days.feed(seq, env)
    for day in _asked():
        got = days.rows(day)
        if got is None:
            assert as_of_day(moved) <= day < days.current, day
            continue
        _same_tables(got, _fold_until(events, day), day)


def test_publications_give_back_their_times_as_recorded() -> None:
    """Kept as numbers, an online time comes back as the text it was recorded with (its
    offset, its microseconds, or text that is not its own isoformat), and of two items online
    at the same instant the one with the smaller id is the latest, as the fold's order has it."""
    pubs = Publications()

    def online(pid: str, text: str) -> Publication:
        first = Step(1, "e", "published", text, text, "cms", "office", "county-office", {})
        return Publication(
            pid, None, "u1", "c1", None, text, removed=False, event_id="e", trail=(first,)
        )

    texts = {
        "a": "2026-03-02T09:00:00+08:00",
        "b": "2026-03-02T01:00:00.250000+00:00",
        "c": "2026-03-02T01:00:00.000000+00:00",
        "d": "2026-03-02T01:00:00+00:00",
    }
    for pid, text in texts.items():
        pubs.put(online(pid, text), date(2026, 3, 2))
    for pid, text in texts.items():
        row = pubs.row(pid)
        assert row is not None and row.online_at == text, pid
    assert pubs.row("a", date(2026, 3, 1)) is None, "not known before its day"
    latest = pubs.latest(date(2026, 3, 2))
    assert latest == {("u1", "c1"): datetime.fromisoformat(texts["b"])}
    pubs.put(replace(online("b", texts["b"]), removed=True), date(2026, 3, 3))
    # a, c and d went online at the same instant: the smallest id stands for them.
    assert pubs.latest(date(2026, 3, 3))[("u1", "c1")] == datetime.fromisoformat(texts["a"])
    assert pubs.latest(date(2026, 3, 2))[("u1", "c1")] == datetime.fromisoformat(texts["b"])
    assert pubs.latest(date(2026, 3, 1)) == {}
