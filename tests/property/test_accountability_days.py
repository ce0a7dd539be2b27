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

import itertools
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gongkai import subjects
from gongkai.calendar import SHANGHAI
from gongkai.eventlog import RecordedEvent
from gongkai.events import Envelope, new_event
from gongkai.events.contracts.freshness import ColumnWasStale
from gongkai.events.contracts.intake import PublicationImported
from gongkai.masking import masked_event
from gongkai.projection import ProjectionStore, make_engine
from gongkai_accountability.adapters.days import KEPT, TAKEN, Days, Publications
from gongkai_accountability.adapters.sql import AccountabilityProjection
from gongkai_accountability.domain.fold import as_of_day, evolve
from gongkai_accountability.domain.report import latest_publications
from gongkai_accountability.domain.rows import MemoryRows, Rows
from gongkai_accountability.domain.tables import BY_NAME, PUBLICATION, Publication, Step
from tests.property.test_accountability_fold import (
    CMS,
    COLUMNS,
    DAYS,
    LIVES,
    START,
    SYSTEM,
    UNITS,
    lived,
)


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


#: Imported history put anywhere in the log (its index into the log, before which it goes):
#: an item of a unit's column online on a day (relative to ``START``; before the log, inside
#: it, after it) or an episode of a column's past staleness; ``u3`` is a unit known only by
#: its history.
HISTORY_ITEMS = st.lists(
    st.tuples(
        # Early in the log more often than not: before the directory (units), before the
        # columns' live episodes.
        st.integers(0, 10_000) | st.integers(0, 12),
        st.sampled_from(["import", "was_stale"]),
        st.sampled_from([*UNITS, "u3"]),
        st.sampled_from(COLUMNS),
        st.integers(-40, DAYS + 3) | st.integers(0, DAYS),
    ),
    max_size=6,
)


def _history_event(n: int, kind: str, unit: str, column: str, day: int) -> Envelope[Any]:
    when = datetime.combine(START + timedelta(days=day), time(10), SHANGHAI)
    recorded = datetime.combine(START, time(8), SHANGHAI)
    payload: Any
    if kind == "import":
        payload = PublicationImported(
            publication_id=f"imp-{n}", unit=unit, column=column, title=f"item {n}",
            url=f"https://example.gov.cn/{n}", online_at=when,
        )
        return new_event(
            payload, aggregate_id=f"imp-{n}", actor=CMS, command_id=f"import-{n}",
            business_time=when, recorded_at=recorded,
        )
    due = (when - timedelta(days=1)).date()
    payload = ColumnWasStale(
        unit=unit, column=column, rule_set="national", rule=f"r{n % 2}", due_date=due,
        until=due + timedelta(days=3 + n % 5),
    )
    return new_event(
        payload, aggregate_id=f"{unit}--{column}", actor=SYSTEM, command_id=f"was-stale-{n}",
        business_time=when, recorded_at=recorded,
    )


def _applied_and_kept(
    events: list[Envelope[Any]], cuts: list[int]
) -> tuple[Days, Days]:
    """The kept days as the live projection's fold feeds them (``take``), applied in batches
    ending before each of ``cuts``, and as the pass folds every event again (``feed``)."""
    recorded = [
        RecordedEvent(
            seq, subjects.event_subject(env.aggregate_type, env.aggregate_id, env.type), 0,
            env, env.to_json(),
        )
        for seq, env in enumerate(events, 1)
    ]
    projection = AccountabilityProjection()
    engine = make_engine("sqlite://")
    store = ProjectionStore(engine)
    store.prepare(projection)
    projection.note(TAKEN)
    taken, folded = Days(), Days()
    bounds = [0, *sorted({c % len(recorded) for c in cuts}), len(recorded)]
    try:
        for lo, hi in itertools.pairwise(bounds):
            batch = recorded[lo:hi]
            if not batch:
                continue
            store.apply(projection, batch)
            notes = projection.take_notes()
            for rec in batch:
                taken.take(rec.seq, rec.envelope, notes[rec.seq])
                folded.feed(rec.seq, rec.envelope)
    finally:
        engine.dispose()
    return taken, folded


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    facts=LIVES,
    history=HISTORY_ITEMS,
    cuts=st.lists(st.integers(1, 10_000), max_size=5),
    late=st.none() | st.tuples(st.integers(0, 10_000), st.integers(1, 5)),
)
def test_the_days_taken_from_the_projections_fold_are_the_days_folded_again(
    facts: list[tuple[int, str, tuple[Any, ...]]],
    history: list[tuple[int, str, str, str, int]],
    cuts: list[int],
    late: tuple[int, int] | None,
) -> None:
    """The service's kept days take what the live projection's fold wrote in the tables they
    keep (``Days.take``) instead of folding each event again (``Days.feed``): the same days,
    under imported history anywhere in the log (which the projection folds in log order and
    the days lay over the days it speaks for), a clock behind, and any batches."""
    events = _lived(facts)
    for n, (at, kind, unit, column, day) in enumerate(sorted(history, reverse=True)):
        events.insert(at % (len(events) + 1), _history_event(n, kind, unit, column, day))
    if late is not None:
        last = max(as_of_day(e) for e in events)
        behind = events[late[0] % len(events)]
        events.append(behind.model_copy(update={
            "event_id": "late-" + behind.event_id,
            "recorded_at": behind.recorded_at.replace(
                year=last.year, month=last.month, day=last.day
            ) - timedelta(days=late[1]),
        }))
    event(f"history events: {len(history)}")
    taken, folded = _applied_and_kept(events, cuts)
    assert (taken.current, taken.inexact_from, taken.version, taken.kept_days) == (
        folded.current, folded.inexact_from, folded.version, folded.kept_days
    )
    assert (taken.position, taken.events) == (folded.position, folded.events) == (
        len(events), folded.events
    )
    for day in [START + timedelta(days=d) for d in range(-42, DAYS + 6)]:
        got, want = taken.rows(day), folded.rows(day)
        assert (got is None) == (want is None), day
        if got is None or want is None:
            continue
        for name in (*KEPT, "publication"):
            table = BY_NAME[name]
            assert dict(got.scan(table)) == dict(want.scan(table)), (day, name)
        assert got.latest_publications(day) == want.latest_publications(day), day
        if late is None:
            # And both are the fold of the log up to that day, history by its own day.
            _same_tables(got, _fold_until(events, day), day)
