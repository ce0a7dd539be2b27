"""freshness's register under arbitrary histories: deterministic, order-free across units, and
true to the episode contract (events/contracts/freshness.py).

Two units get random lives (posts submitted, revised, withdrawn and put online, items removed,
columns hidden and kept, leaders changed) over a quarter. Then:

* interleaving the two units' facts in any order gives the same register: the same status
  table and the same transitions owed (units are independent aggregates);
* evaluating every day as the clock tick does records, per deadline episode, at most one
  ColumnDueSoon, at most one ColumnStale and at most one ColumnRefreshed, each refresh closing
  a stale episode that was recorded; no transition is recorded twice;
* replaying the whole log (facts and transitions) into a new register owes nothing more and
  shows the same table, and a second evaluation of the same day records nothing.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from gongkai.calendar import SHANGHAI, WorkingCalendar
from gongkai.events import Actor, Envelope, EventPayload, new_event
from gongkai.events.contracts.freshness import (
    ColumnDueSoon,
    ColumnHidden,
    ColumnKept,
    ColumnRefreshed,
    ColumnStale,
)
from gongkai.events.contracts.intake import (
    LeadershipDutiesChanged,
    PostPublished,
    PostRevised,
    PostWithdrawn,
    PublicationRemoved,
    UnitRegistered,
)
from gongkai.rules import load_rule_sets
from gongkai_freshness.adapters.register import ColumnRegister
from gongkai_freshness.domain.report import status_table
from tests.builders import post_submitted

CALENDAR = WorkingCalendar.default()
RULE_SETS = load_rule_sets(("wenan-2018", "national-2019"))
START = date(2026, 1, 5)
DAYS = 75  # a quarter: fortnightly, 3/10/20-working-day and blank deadlines all come due
UNITS = {"u1": "department", "u2": "township"}
#: Columns with each kind of rule: triggered (3, 10, 20 working days), fortnightly, leadership.
COLUMNS = [
    "normative_documents",
    "service_guides",
    "administrative_licensing",
    "leaders_activities",
    "leaders_duties",
]
MAKER = Actor(person="maker", role="maker", unit="u")
DIGEST = "a" * 64

Fact = tuple[int, str, tuple[Any, ...]]  # (day offset, unit, action)

ACTION = st.one_of(
    st.tuples(
        st.just("submit"), st.integers(0, 3), st.sampled_from(COLUMNS[:3]), st.integers(0, 9)
    ),
    st.tuples(st.just("revise"), st.integers(0, 3), st.integers(0, 9)),
    st.tuples(st.just("withdraw"), st.integers(0, 3)),
    st.tuples(st.just("publish_post"), st.integers(0, 3), st.integers(0, 2)),
    st.tuples(st.just("publish"), st.sampled_from(COLUMNS), st.integers(0, 3)),
    st.tuples(st.just("remove"), st.sampled_from(COLUMNS), st.integers(0, 3)),
    st.tuples(st.just("hide"), st.sampled_from(COLUMNS)),
    st.tuples(st.just("keep"), st.sampled_from(COLUMNS)),
    st.tuples(st.just("leaders"),),
)
LIVES = st.lists(
    st.tuples(st.integers(0, DAYS - 1), st.sampled_from(sorted(UNITS)), ACTION),
    min_size=6,
    max_size=30,
).map(lambda facts: sorted(facts, key=lambda f: f[0]))


def at(day: int, hour: int = 10) -> datetime:
    return datetime.combine(START + timedelta(days=day), time(hour), SHANGHAI).astimezone(UTC)


def payload_of(unit: str, day: int, action: tuple[Any, ...]) -> tuple[EventPayload, str]:
    """The event a fact records, and its aggregate id (ids are per unit, so units never mix)."""
    kind = action[0]
    today = START + timedelta(days=day)
    if kind == "submit":
        _, n, column, back = action
        info = today - timedelta(days=back)
        return (
            post_submitted(unit=unit, column=column, information_date=info, content_digest=DIGEST),
            f"{unit}-P{n}",
        )
    if kind == "revise":
        _, n, back = action
        return (
            PostRevised(
                unit=unit,
                title="t2",
                body=f"b{day}",
                information_date=today - timedelta(days=back),
                content_version=2 + day,
                content_digest="b" * 64,
            ),
            f"{unit}-P{n}",
        )
    if kind == "withdraw":
        return PostWithdrawn(unit=unit, reason="r"), f"{unit}-P{action[1]}"
    if kind in ("publish_post", "publish"):
        # A post's own column is unknown here; the register follows the post id to it.
        column = COLUMNS[0] if kind == "publish_post" else action[1]
        post = f"{unit}-P{action[1]}" if kind == "publish_post" else None
        pub = f"{unit}-pub-{kind}-{action[1]}-{action[2]}"
        return (
            PostPublished(
                publication_id=pub,
                post_id=post,
                unit=unit,
                column=column,
                url=f"https://example.gov.cn/{pub}",
                online_at=at(day),
                content_digest=DIGEST,
            ),
            pub,
        )
    if kind == "remove":
        pub = f"{unit}-pub-publish-{action[1]}-{action[2]}"
        return (
            PublicationRemoved(
                publication_id=pub, unit=unit, column=action[1], removed_at=at(day), reason="r"
            ),
            pub,
        )
    if kind in ("hide", "keep"):
        cls = ColumnHidden if kind == "hide" else ColumnKept
        return cls(unit=unit, column=action[1], reason="tick"), f"{unit}--{action[1]}"
    return LeadershipDutiesChanged(unit=unit, changed_on=today, summary="s"), unit


class County:
    """The service's loop without the network: facts and the daily tick, folded in order."""

    def __init__(self) -> None:
        self.reg = ColumnRegister(RULE_SETS, CALENDAR)
        self.log: list[Envelope[Any]] = []

    def record(self, payload: EventPayload, aggregate: str, command: str, when: datetime,
               actor: Actor = MAKER) -> None:
        env = new_event(
            payload, aggregate_id=aggregate, actor=actor, command_id=command, recorded_at=when
        )
        self.log.append(env)
        self.reg.fold(env, len(self.log))

    def register_units(self) -> None:
        for code, kind in UNITS.items():
            self.record(
                UnitRegistered(code=code, name=code, kind=kind, contact_name="x",
                               contact_mobile="x"),
                code,
                f"unit-{code}",
                at(0, 8),
            )

    def fact(self, i: int, fact: Fact) -> None:
        day, unit, action = fact
        payload, aggregate = payload_of(unit, day, action)
        self.record(payload, aggregate, f"fact-{unit}-{i}", at(day))

    def tick(self, day: int) -> list[EventPayload]:
        out = []
        for t in self.reg.decide_all(START + timedelta(days=day)):
            self.record(t.payload, t.aggregate_id, t.command_id, at(day, 23))
            out.append(t.payload)
        return out


def interleave(facts: list[Fact], seed: int) -> list[tuple[int, Fact]]:
    """The same facts, each unit's in its own order, the units' merged at random.

    Facts keep their index (which names their command) so both orders record the same ids.
    """
    per_unit = {u: [(i, f) for i, f in enumerate(facts) if f[1] == u] for u in UNITS}
    rng = random.Random(seed)
    out: list[tuple[int, Fact]] = []
    while any(per_unit.values()):
        unit = rng.choice([u for u, fs in per_unit.items() if fs])
        out.append(per_unit[unit].pop(0))
    return out


def owed(county: County, day: int) -> list[tuple[str, str]]:
    return sorted(
        (t.aggregate_id, t.command_id)
        for t in county.reg.decide_all(START + timedelta(days=day))
    )


@settings(max_examples=60, deadline=None)
@given(facts=LIVES, seed=st.integers(0, 2**16))
def test_the_order_units_are_replayed_in_does_not_matter(facts: list[Fact], seed: int) -> None:
    a, b = County(), County()
    for c in (a, b):
        c.register_units()
    for i, f in enumerate(facts):
        a.fact(i, f)
    for i, f in interleave(facts, seed):
        b.fact(i, f)
    for day in (20, DAYS):
        as_of = START + timedelta(days=day)
        assert status_table(a.reg.state, as_of) == status_table(b.reg.state, as_of)
        assert owed(a, day) == owed(b, day)


@settings(max_examples=40, deadline=None)
@given(facts=LIVES)
def test_daily_ticks_keep_the_episode_contract_and_replay_owes_nothing(
    facts: list[Fact],
) -> None:
    county = County()
    county.register_units()
    pending = list(enumerate(facts))
    for day in range(DAYS):
        while pending and pending[0][1][0] == day:
            county.fact(*pending.pop(0))
        county.tick(day)
        assert county.tick(day) == [], "a second tick the same day records nothing"

    ids = [e.event_id for e in county.log]
    assert len(ids) == len(set(ids)), "no transition is recorded twice"
    stale: dict[str, tuple[str, ...]] = {}
    per_episode: Counter[tuple[Any, ...]] = Counter()
    refreshed_stale: Counter[str] = Counter()
    for e in county.log:
        p = e.payload
        if isinstance(p, ColumnDueSoon | ColumnStale | ColumnRefreshed):
            key = (e.aggregate_id, p.rule_set, p.rule, p.episode)
            per_episode[(type(p).__name__, *key)] += 1
            if isinstance(p, ColumnStale):
                stale[e.event_id] = key
            elif isinstance(p, ColumnRefreshed) and p.stale_event_id is not None:
                assert stale.get(p.stale_event_id) == key, "a refresh closes a recorded episode"
                refreshed_stale[p.stale_event_id] += 1
    kinds = Counter(k[0] for k in per_episode)
    event(f"more than 4 refreshes: {kinds['ColumnRefreshed'] > 4}")  # coverage statistics
    assert max(per_episode.values(), default=1) == 1, "one of each transition per episode"
    assert max(refreshed_stale.values(), default=1) == 1

    replay = County()
    for i, env in enumerate(county.log, 1):
        replay.reg.fold(env, i)
    last = START + timedelta(days=DAYS - 1)
    assert replay.reg.decide_all(last) == []
    assert status_table(replay.reg.state, last) == status_table(county.reg.state, last)
