"""accountability's fold and decisions under arbitrary histories of two units.

Each unit lives at random: posts submitted, revised, approved, published in the approved
version or another, items with no post online and removed, columns going stale and being
refreshed (late or not), the office's findings reported and confirmed. The log is simulated
with JetStream's two guarantees the service relies on (a repeated event id is a duplicate;
``expected=0`` refuses an aggregate that already exists). Then:

* the read model does not depend on how the two units' facts interleave (units are separate
  aggregates): same rows, same reports, same decisions;
* settled day by day as the service's tick does, every lapse is recorded once (one violation,
  one notice, one closing per case, one rectification per violation), every violation's
  evidence names events on the log, and deciding is deterministic;
* replaying the whole log into an empty model gives the same rows and owes nothing new.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from gongkai.calendar import SHANGHAI, WorkingCalendar
from gongkai.decider import Decided
from gongkai.events import Actor, Envelope, EventPayload, new_event
from gongkai.events.contracts.accountability import FindingConfirmed, FindingReported
from gongkai.events.contracts.freshness import ColumnRefreshed, ColumnStale
from gongkai.events.contracts.intake import (
    PostPublished,
    PostRevised,
    PublicationRemoved,
    RoleGranted,
    Screening,
    UnitRegistered,
)
from gongkai.events.contracts.review import ReviewConcluded, ReviewSigned
from gongkai_accountability.domain.decide import Policy, decide
from gongkai_accountability.domain.fold import evolve
from gongkai_accountability.domain.report import as_of_view, unit_reports
from gongkai_accountability.domain.rows import MemoryRows
from gongkai_accountability.domain.tables import BY_NAME, as_json
from tests.builders import post_submitted

CAL = WorkingCalendar.default()
POLICY = Policy(notice_after_days=2, deadline_days=5)
START = date(2026, 3, 2)
DAYS = 30
UNITS = ("u1", "u2")
SYSTEM = Actor(person="freshness", role="system", unit="system")
CMS = Actor(person="cms", role="office", unit="county-office")
OFFICE = Actor(person="reader", role="office", unit="county-office")
#: Who keeps the directory: the operator's tools (only they, and office role holders, may).
SETUP = Actor(person="operator:test", role="operator", unit="system")
COLUMNS = ("leaders_activities", "administrative_penalties")

ACTION = st.one_of(
    st.tuples(st.just("submit"), st.integers(0, 2), st.booleans()),
    st.tuples(st.just("revise"), st.integers(0, 2)),
    st.tuples(st.just("approve"), st.integers(0, 2)),
    st.tuples(st.just("publish"), st.integers(0, 2), st.booleans()),
    st.tuples(st.just("publish_unknown"), st.integers(0, 2)),
    st.tuples(st.just("remove"), st.integers(0, 2)),
    st.tuples(st.just("stale"), st.sampled_from(COLUMNS), st.sampled_from(["wenan", "national"])),
    st.tuples(st.just("refresh"), st.sampled_from(COLUMNS), st.integers(0, 3)),
    st.tuples(st.just("finding"), st.integers(0, 2), st.booleans()),
    st.tuples(st.just("confirm"), st.integers(0, 2)),
)
LIVES = st.lists(
    st.tuples(st.integers(0, DAYS - 1), st.sampled_from(UNITS), ACTION), min_size=10, max_size=40
).map(lambda facts: sorted(facts, key=lambda f: f[0]))


def at(day: int, hour: int = 9) -> datetime:
    return datetime.combine(START + timedelta(days=day), time(hour), SHANGHAI).astimezone(UTC)


@dataclass
class UnitStory:
    """What one unit's earlier facts left behind, so that later ones refer to real things."""

    unit: str
    digests: dict[str, str] = field(default_factory=dict)
    stale: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    online: set[str] = field(default_factory=set)
    n: int = 0

    def envelopes(self, day: int, action: tuple[Any, ...]) -> list[Envelope[Any]]:
        u = self.unit
        maker = Actor(person=f"{u}-maker", role="maker", unit=u)
        leader = Actor(person=f"{u}-leader", role="leader", unit=u)
        kind = action[0]
        out: list[tuple[EventPayload, str, Actor]] = []
        if kind == "submit" and f"{u}-P{action[1]}" not in self.digests:
            post = f"{u}-P{action[1]}"
            self.digests[post] = f"{self.n:064x}"
            out.append(
                (
                    post_submitted(
                        unit=u,
                        column=COLUMNS[1],
                        information_date=START,
                        content_digest=self.digests[post],
                        screening=Screening(needs_secrecy_review=action[2]),
                    ),
                    post,
                    maker,
                )
            )
        elif kind == "revise" and f"{u}-P{action[1]}" in self.digests:
            post = f"{u}-P{action[1]}"
            self.digests[post] = f"{self.n + 10**6:064x}"
            out.append(
                (
                    PostRevised(
                        unit=u,
                        title="t",
                        body=f"b{self.n}",
                        information_date=START,
                        content_version=2 + self.n,
                        content_digest=self.digests[post],
                    ),
                    post,
                    maker,
                )
            )
        elif kind == "approve" and f"{u}-P{action[1]}" in self.digests:
            post = f"{u}-P{action[1]}"
            digest = self.digests[post]
            chain = self.n + 1
            out.append(
                (
                    ReviewSigned(
                        post_id=post,
                        chain=chain,
                        stage="leader",
                        decision="agree",
                        signer=leader,
                        content_digest=digest,
                    ),
                    post,
                    leader,
                )
            )
            out.append(
                (
                    ReviewConcluded(
                        post_id=post, chain=chain, outcome="approved", content_digest=digest
                    ),
                    post,
                    leader,
                )
            )
        elif kind in ("publish", "publish_unknown") and f"{u}-pub-{action[1]}" not in self.online:
            post = f"{u}-P{action[1]}" if kind == "publish" else None
            approved = kind == "publish" and action[2] and post in self.digests
            # Named after the post slot, so removals and findings find them.
            pub = f"{u}-pub-{action[1]}"
            self.online.add(pub)
            out.append(
                (
                    PostPublished(
                        publication_id=pub,
                        post_id=post,
                        unit=u,
                        column=COLUMNS[1],
                        url=f"https://example.gov.cn/{pub}",
                        online_at=at(day),
                        content_digest=self.digests[post] if approved and post else "e" * 64,
                    ),
                    pub,
                    CMS,
                )
            )
        elif kind == "remove":
            pub = f"{u}-pub-{action[1]}"
            out.append(
                (
                    PublicationRemoved(
                        publication_id=pub,
                        unit=u,
                        column=COLUMNS[1],
                        removed_at=at(day),
                        reason="r",
                    ),
                    pub,
                    CMS,
                )
            )
        elif kind == "stale" and (action[1], action[2]) not in self.stale:
            column, rule_set = action[1], action[2]
            triggered = column == COLUMNS[1]
            payload = ColumnStale(
                unit=u,
                column=column,
                rule_set=rule_set,
                rule="r",
                rule_kind="triggered" if triggered else "periodic",
                due_date=START + timedelta(days=day),
                overdue_days=1,
                episode=f"e{self.n}",
                post_id=f"{u}-P0" if triggered else None,
            )
            env = new_event(
                payload,
                aggregate_id=f"{u}--{column}",
                actor=SYSTEM,
                command_id=f"{u}-{self.n}",
                recorded_at=at(day),
            )
            self.stale[(column, rule_set)] = (env.event_id, payload.episode)
            self.n += 1
            return [env]
        elif kind == "refresh":
            column = action[1]
            for (col, rule_set), (stale_id, episode) in sorted(self.stale.items()):
                if col != column:
                    continue
                del self.stale[(col, rule_set)]
                triggered = column == COLUMNS[1]
                out.append(
                    (
                        ColumnRefreshed(
                            unit=u,
                            column=column,
                            rule_set=rule_set,
                            rule="r",
                            rule_kind="triggered" if triggered else "periodic",
                            episode=episode,
                            due_date=START,
                            resolution="published",
                            stale_event_id=stale_id,
                            late_days=action[2],
                            met_on=START + timedelta(days=day),
                            post_id=f"{u}-P0" if triggered else None,
                        ),
                        f"{u}--{column}",
                        SYSTEM,
                    )
                )
                break
        elif kind == "finding":
            fid = f"{u}-F{action[1]}"
            out.append(
                (
                    FindingReported(
                        finding_id=fid,
                        unit=u,
                        kind="privacy_leak" if action[2] else "typo",
                        post_id=f"{u}-P{action[1]}",
                        publication_id=f"{u}-pub-{action[1]}",
                        description="错误",
                        reported_on=START + timedelta(days=day),
                    ),
                    fid,
                    OFFICE,
                )
            )
        elif kind == "confirm":
            fid = f"{u}-F{action[1]}"
            out.append((FindingConfirmed(finding_id=fid, unit=u), fid, OFFICE))
        envs = []
        for i, (payload, aggregate, actor) in enumerate(out):
            envs.append(
                new_event(
                    payload,
                    aggregate_id=aggregate,
                    actor=actor,
                    command_id=f"{u}-{self.n}",
                    index=i,
                    recorded_at=at(day),
                )
            )
        self.n += 1
        return envs


def directory() -> list[Envelope[Any]]:
    out = []
    for u in UNITS:
        out.append(
            new_event(
                UnitRegistered(
                    code=u, name=u, kind="department", contact_name="x", contact_mobile="x"
                ),
                aggregate_id=u,
                actor=SETUP,
                command_id=f"dir-{u}",
                recorded_at=at(0, 1),
            )
        )
        for role in ("maker", "leader"):
            out.append(
                new_event(
                    RoleGranted(person_id=f"{u}-{role}", unit=u, role=role),
                    aggregate_id=f"{u}-{role}",
                    actor=SETUP,
                    command_id=f"dir-{u}-{role}",
                    recorded_at=at(0, 1),
                )
            )
    return out


def unit_facts(facts: list[tuple[int, str, tuple[Any, ...]]]) -> list[tuple[int, str, list[Any]]]:
    """Each fact as the envelopes it records, built in each unit's own order."""
    stories = {u: UnitStory(u) for u in UNITS}
    return [(day, u, stories[u].envelopes(day, action)) for day, u, action in facts]


class Log:
    """The stream as accountability sees it: dedup by event id, ``expected=0`` for new."""

    def __init__(self) -> None:
        self.rows = MemoryRows()
        self.events: list[Envelope[Any]] = []
        self.ids: set[str] = set()
        self.aggregates: set[tuple[str, str]] = set()

    def append(self, env: Envelope[Any], expected: int | None = None) -> bool:
        agg = (env.aggregate_type, env.aggregate_id)
        if env.event_id in self.ids or (expected == 0 and agg in self.aggregates):
            return False
        self.ids.add(env.event_id)
        self.aggregates.add(agg)
        self.events.append(env)
        evolve(self.rows, env, len(self.events))
        return True

    def decide(self, day: int) -> list[Decided]:
        return decide(self.rows, START + timedelta(days=day), at(day, 23), CAL, POLICY)

    def settle(self, day: int) -> int:
        """Tick until nothing new is recorded, as the service's settle does."""
        recorded = 0
        for _ in range(20):
            n = sum(self.append(d.event, d.expected) for d in self.decide(day))
            if n == 0:
                return recorded
            recorded += n
        raise AssertionError("accountability did not settle")


def lived(
    facts: list[tuple[int, str, tuple[Any, ...]]],
    before_settling: Callable[[Log, int], None] | None = None,
) -> Log:
    """The log of a history: the directory, then each day's facts, settled at the day's end
    (``before_settling`` sees the log of each day first)."""
    log = Log()
    for env in directory():
        log.append(env)
    pending = unit_facts(facts)
    for day in range(DAYS):
        while pending and pending[0][0] == day:
            for env in pending.pop(0)[2]:
                log.append(env)
        if before_settling is not None:
            before_settling(log, day)
        log.settle(day)
    return log


def rows_without_sequences(rows: MemoryRows) -> str:
    """The read model as canonical text, stream sequences left out (they follow the order)."""

    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k != "seq"}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    return json.dumps(strip(as_json(rows)), sort_keys=True, ensure_ascii=False)


def interleave(items: list[tuple[int, str, list[Any]]], seed: int) -> list[Any]:
    per_unit = {u: [i for i in items if i[1] == u] for u in UNITS}
    rng = random.Random(seed)
    out = []
    while any(per_unit.values()):
        out.append(per_unit[rng.choice([u for u in UNITS if per_unit[u]])].pop(0))
    return out


@settings(max_examples=200, deadline=None)
@given(facts=LIVES, seed=st.integers(0, 2**16))
def test_the_order_units_are_replayed_in_does_not_matter(
    facts: list[tuple[int, str, tuple[Any, ...]]], seed: int
) -> None:
    items = unit_facts(facts)
    a, b = Log(), Log()
    for log in (a, b):
        for env in directory():
            log.append(env)
    for _, _, envs in items:
        for env in envs:
            a.append(env)
    for _, _, envs in interleave(items, seed):
        for env in envs:
            b.append(env)
    assert rows_without_sequences(a.rows) == rows_without_sequences(b.rows)
    day = DAYS - 1
    assert [d.event.to_json() for d in a.decide(day)] == [d.event.to_json() for d in b.decide(day)]
    a.settle(day)
    b.settle(day)
    assert rows_without_sequences(a.rows) == rows_without_sequences(b.rows)
    last = START + timedelta(days=day)
    assert as_of_view(a.rows, last) == as_of_view(b.rows, last)
    assert unit_reports(a.rows, START, last) == unit_reports(b.rows, START, last)


@settings(max_examples=150, deadline=None)
@given(facts=LIVES)
def test_settling_day_by_day_records_each_lapse_once_and_replay_owes_nothing(
    facts: list[tuple[int, str, tuple[Any, ...]]],
) -> None:
    def deterministic(log: Log, day: int) -> None:
        first = [d.event.to_json() for d in log.decide(day)]
        assert first == [d.event.to_json() for d in log.decide(day)], "deterministic"

    log = lived(facts, before_settling=deterministic)
    recorded = [e for e in log.events if e.actor.person == "accountability"]
    kinds = Counter(e.type for e in recorded)
    for k in kinds:
        event(f"recorded a {k}")  # coverage statistics
    for v in {e.payload.kind for e in recorded if e.type == "ViolationRecorded"}:
        event(f"violation: {v}")
    per_aggregate = Counter((e.type, e.aggregate_id) for e in recorded)
    assert max(per_aggregate.values(), default=1) == 1, "each lapse, notice, closing once"
    ids = {e.event_id for e in log.events}
    for e in recorded:
        if e.type == "ViolationRecorded":
            assert set(e.payload.evidence) <= ids, "evidence names events on the log"
            assert e.payload.responsible or e.payload.kind == "published_without_review"

    replay = Log()
    for env in log.events:
        replay.append(env)
    assert json.dumps(as_json(replay.rows), sort_keys=True) == json.dumps(
        as_json(log.rows), sort_keys=True
    )
    assert not any(replay.append(d.event, d.expected) for d in replay.decide(DAYS - 1))
    # Every row read back from the JSON SQL keeps is the row the fold wrote (typed tables).
    for name, found in log.rows.tables.items():
        table = BY_NAME[name]
        for row in found.values():
            assert table.decode_row(json.loads(json.dumps(table.encode_row(row)))) == row
