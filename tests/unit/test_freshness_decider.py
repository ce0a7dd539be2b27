"""freshness's rules as given/when/then tables over the pure register (no adapter, no NATS).

Given a history of facts (and of what freshness recorded on earlier days), when the register
is decided as of a date, then these transitions are owed — the due-date rules of Attachment 2.
Given the facts of a column, then it shows or is hidden, and why — the visibility rules (✓/×,
the catalog's defaults, note 2). Then the invariants under any history: ``evolve`` leaves the
register it was given as it was, deciding again after recording owes nothing, and a column is
visible exactly when nothing hides it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import given, settings

from gongkai.calendar import SHANGHAI, WorkingCalendar
from gongkai.events import Actor, EventPayload, new_event
from gongkai.events.contracts.freshness import ColumnHidden, ColumnKept
from gongkai.events.contracts.intake import (
    LeadershipDutiesChanged,
    PostPublished,
    PostWithdrawn,
    PublicationRemoved,
    UnitRegistered,
)
from gongkai.rules import load_rule_sets
from gongkai_freshness.adapters.log import FRESHNESS_ACTOR
from gongkai_freshness.domain.register import (
    Register,
    decide_all,
    empty,
    evolve,
    rule_book,
)
from gongkai_freshness.domain.report import status_table
from gongkai_freshness.domain.state import ColumnState, Decision, UnitInfo
from gongkai_freshness.domain.visibility import hidden_by, show_or_hide
from tests.builders import post_submitted
from tests.property.test_freshness_fold import LIVES, START, UNITS, Fact, payload_of
from tests.property.test_freshness_fold import at as fold_at

D = date.fromisoformat
WENAN = "wenan-2018"
BOOK = rule_book(load_rule_sets((WENAN,)), WorkingCalendar.default())
BOTH = rule_book(load_rule_sets((WENAN, "national-2019")), WorkingCalendar.default())
MAKER = Actor(person="p-maker", role="maker", unit="u")
LEADER = Actor(person="p-leader", role="leader", unit="u")
DIGEST = "a" * 64
JOINED = D("2026-01-05")


def shanghai(d: date, hour: int = 10) -> datetime:
    return datetime.combine(d, time(hour), SHANGHAI).astimezone(UTC)


class Given:
    """A history, folded in step by step through the pure ``evolve`` (seq = position)."""

    def __init__(self, reg: Register) -> None:
        self.reg = reg
        self.seq = 0

    def fold(self, payload: EventPayload, agg: str, on: date, actor: Actor = MAKER) -> None:
        self.seq += 1
        env = new_event(
            payload, aggregate_id=agg, actor=actor, command_id=f"c{self.seq}",
            recorded_at=shanghai(on),
        )
        self.reg = evolve(self.reg, env, self.seq).register

    def recorded_on(self, day: date) -> None:
        """freshness decided ``day`` and its transitions were recorded (folded back in)."""
        for t in decide_all(self.reg, day):
            self.seq += 1
            env = new_event(
                t.payload, aggregate_id=t.aggregate_id, actor=FRESHNESS_ACTOR,
                command_id=t.command_id, recorded_at=shanghai(day, 23),
            )
            self.reg = evolve(self.reg, env, self.seq).register


Step = Callable[[Given], None]


def unit(kind: str = "department", on: date = JOINED, code: str = "u") -> Step:
    return lambda g: g.fold(
        UnitRegistered(code=code, name=code, kind=kind, contact_name="Li",
                       contact_mobile="1" * 11),
        code,
        on,
    )


def submitted(post: str, column: str, info: str) -> Step:
    return lambda g: g.fold(
        post_submitted(unit="u", column=column, information_date=D(info), content_digest=DIGEST),
        post,
        D(info),
    )


def published(pub: str, column: str, on: str, post: str | None = None) -> Step:
    return lambda g: g.fold(
        PostPublished(publication_id=pub, post_id=post, unit="u", column=column,
                      url=f"https://example.gov.cn/{pub}", online_at=shanghai(D(on)),
                      content_digest=DIGEST),
        pub,
        D(on),
    )


def removed(pub: str, column: str, on: str) -> Step:
    return lambda g: g.fold(
        PublicationRemoved(publication_id=pub, unit="u", column=column,
                           removed_at=shanghai(D(on)), reason="x"),
        pub,
        D(on),
    )


def withdrawn(post: str, on: str) -> Step:
    return lambda g: g.fold(PostWithdrawn(unit="u", reason="not for disclosure"), post, D(on))


def leaders_changed(on: str) -> Step:
    return lambda g: g.fold(
        LeadershipDutiesChanged(unit="u", changed_on=D(on), summary="new deputy"), "u", D(on)
    )


def ticked(column: str, keep: bool, on: str) -> Step:
    cls = ColumnKept if keep else ColumnHidden
    return lambda g: g.fold(cls(unit="u", column=column, reason="r"), f"u--{column}", D(on),
                            LEADER)


def recorded_on(day: str) -> Step:
    return lambda g: g.recorded_on(D(day))


def folded(book: Any, *steps: Step) -> Register:
    g = Given(empty(book))
    for step in steps:
        step(g)
    return g.reg


# ---- due dates: given a history, when decided as of a date, then these transitions ----------


@dataclass(frozen=True)
class Due:
    name: str
    history: tuple[Step, ...]
    as_of: date
    column: str
    #: (event type, rule, field values the event must have)
    then: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


DUE = [
    Due("fortnightly: nothing owed before the warning window",
        (unit(), published("a1", "leaders_activities", "2026-03-02")),
        D("2026-03-10"), "leaders_activities"),
    Due("fortnightly: due soon 3 working days before",
        (unit(), published("a1", "leaders_activities", "2026-03-02")),
        D("2026-03-11"), "leaders_activities",
        [("ColumnDueSoon", "fortnightly", {"due_date": D("2026-03-16"), "working_days_left": 3})]),
    Due("fortnightly: stale the day after the due date",
        (unit(), published("a1", "leaders_activities", "2026-03-02")),
        D("2026-03-17"), "leaders_activities",
        [("ColumnStale", "fortnightly", {"due_date": D("2026-03-16"), "overdue_days": 1})]),
    Due("fortnightly: a warning already recorded is not recorded again",
        (unit(), published("a1", "leaders_activities", "2026-03-02"), recorded_on("2026-03-11")),
        D("2026-03-12"), "leaders_activities"),
    Due("fortnightly: stale recorded, then an item closes the episode, late",
        (unit(), published("a1", "leaders_activities", "2026-03-02"), recorded_on("2026-03-17"),
         published("a2", "leaders_activities", "2026-03-23")),
        D("2026-03-23"), "leaders_activities",
        [("ColumnRefreshed", "fortnightly", {"resolution": "published", "late_days": 7})]),
    Due("normative document: online within 20 working days of issue",
        (unit(), published("base", "normative_documents", "2026-01-20"),
         submitted("P1", "normative_documents", "2026-02-10")),
        D("2026-03-17"), "normative_documents",
        [("ColumnStale", "within-20wd", {"post_id": "P1", "due_date": D("2026-03-16")})]),
    Due("penalty published in time: nothing owed",
        (unit(), published("base", "administrative_penalties", "2026-02-01"),
         submitted("X1", "administrative_penalties", "2026-03-02"),
         published("x1", "administrative_penalties", "2026-03-05", post="X1")),
        D("2026-03-31"), "administrative_penalties"),
    Due("penalty published late with no evaluation between: missed, and met at once",
        (unit(), published("base", "administrative_penalties", "2026-02-01"),
         submitted("X1", "administrative_penalties", "2026-03-02"),
         published("x1", "administrative_penalties", "2026-03-20", post="X1")),
        D("2026-03-20"), "administrative_penalties",
        [("ColumnStale", "within-10wd", {"overdue_days": 4, "met_on": D("2026-03-20")}),
         ("ColumnRefreshed", "within-10wd", {"late_days": 4, "resolution": "published"})]),
    Due("withdrawn post closes its stale episode",
        (unit(), published("base", "special_funds", "2026-02-01"),
         submitted("F1", "special_funds", "2026-03-02"), recorded_on("2026-03-17"),
         withdrawn("F1", "2026-03-18")),
        D("2026-03-18"), "special_funds",
        [("ColumnRefreshed", "within-10wd", {"resolution": "withdrawn"})]),
    Due("leaders' duties changed: 10 working days",
        (unit(), published("base", "leaders_duties", "2026-01-10"),
         leaders_changed("2026-03-02")),
        D("2026-03-17"), "leaders_duties",
        [("ColumnStale", "leadership-10wd", {"due_date": D("2026-03-16")})]),
    Due("leaders' duties updated in time: nothing owed",
        (unit(), published("base", "leaders_duties", "2026-01-10"),
         leaders_changed("2026-03-02"), published("upd", "leaders_duties", "2026-03-12")),
        D("2026-03-17"), "leaders_duties"),
    Due("annual report: by the end of February",
        (unit(), published("r0", "annual_reports", "2025-06-01")),
        D("2026-03-01"), "annual_reports",
        [("ColumnStale", "annual-report", {"due_date": D("2026-02-28")})]),
    Due("a kept column with no item is stale at once",
        (unit(),),
        JOINED, "statistics",
        [("ColumnStale", "blank", {"due_date": JOINED, "overdue_days": 0})]),
    Due("a hidden column owes nothing",
        (unit(), ticked("statistics", False, "2026-01-05")),
        D("2026-06-01"), "statistics"),
    Due("hidden while stale: the episode closes as hidden",
        (unit(), recorded_on("2026-01-05"), ticked("statistics", False, "2026-01-06")),
        D("2026-01-06"), "statistics",
        [("ColumnRefreshed", "blank", {"resolution": "hidden"})]),
    Due("a deadline before the unit joined is not its lapse",
        (unit(on=D("2026-04-01")), published("base", "special_funds", "2026-03-30"),
         submitted("old", "special_funds", "2026-01-05")),
        D("2026-04-01"), "special_funds"),
    Due("an unregistered unit owes nothing",
        (published("a1", "leaders_activities", "2026-03-02"),),
        D("2026-04-01"), "leaders_activities"),
]


@pytest.mark.parametrize("case", DUE, ids=lambda c: c.name)
def test_due_date_rules(case: Due) -> None:
    reg = folded(BOOK, *case.history)
    owed = [t.payload for t in decide_all(reg, case.as_of) if t.payload.column == case.column]  # type: ignore[attr-defined]
    assert [(type(p).__name__, p.rule) for p in owed] == [  # type: ignore[attr-defined]
        (kind, rule) for kind, rule, _ in case.then
    ]
    for p, (_, _, fields) in zip(owed, case.then, strict=True):
        assert {k: getattr(p, k) for k in fields} == fields


# ---- visibility: given the facts of a column, then it shows or is hidden, and why ------------


@dataclass(frozen=True)
class Shown:
    name: str
    history: tuple[Step, ...]
    column: str
    hidden_by: str | None
    epoch: int | None = None


SHOWN = [
    Shown("a unit gongkai does not know has no section",
          (published("a1", "chronicle", "2026-01-10"),), "chronicle", "unregistered"),
    Shown("a column the catalog keeps shows", (unit(),), "chronicle", None, epoch=1),
    Shown("the unit's × hides it", (unit(), ticked("chronicle", False, "2026-01-06")),
          "chronicle", "unit"),
    Shown("× then ✓ shows it again, a new epoch",
          (unit(), ticked("chronicle", False, "2026-01-06"),
           ticked("chronicle", True, "2026-02-01")),
          "chronicle", None, epoch=2),
    Shown("hidden by default until ticked ✓ (housing security)", (unit(),),
          "housing_security", "default"),
    Shown("✓ shows a column hidden by default",
          (unit(), ticked("housing_security", True, "2026-01-06")), "housing_security", None),
    Shown("not for units of this kind (public resources, a township)", (unit("township"),),
          "public_resources", "not_applicable"),
    Shown("note 2: removing every item hides the column",
          (unit(), published("s1", "statistics", "2026-01-10"),
           removed("s1", "statistics", "2026-02-01")),
          "statistics", "emptied"),
    Shown("an emptied column shows again with a new item, a new epoch",
          (unit(), published("s1", "statistics", "2026-01-10"),
           removed("s1", "statistics", "2026-02-01"), published("s2", "statistics", "2026-03-01")),
          "statistics", None, epoch=2),
    Shown("note 2 hides even a column ticked ✓",
          (unit(), ticked("statistics", True, "2026-01-06"),
           published("s1", "statistics", "2026-01-10"),
           removed("s1", "statistics", "2026-02-01")),
          "statistics", "emptied"),
    Shown("× says more than emptiness",
          (unit(), published("s1", "statistics", "2026-01-10"),
           removed("s1", "statistics", "2026-02-01"), ticked("statistics", False, "2026-03-01")),
          "statistics", "unit"),
]


@pytest.mark.parametrize("case", SHOWN, ids=lambda c: c.name)
def test_visibility_rules(case: Shown) -> None:
    col = folded(BOOK, *case.history).column("u", case.column)
    assert (col.visible, col.hidden_by) == (case.hidden_by is None, case.hidden_by)
    if case.epoch is not None:
        assert col.epoch == case.epoch


def test_show_or_hide_is_a_function_of_the_column_and_its_unit() -> None:
    meta = BOOK.catalog.columns["chronicle"]
    info = UnitInfo("u", "U", "department", "Li", "1" * 11, JOINED)
    col = ColumnState("u", "chronicle")
    shown = show_or_hide(col, info, meta, JOINED)
    assert (col.visible, col.epoch) == (False, 0), "the input is left as it was"
    assert (shown.visible, shown.epoch, shown.visible_since) == (True, 1, JOINED)
    assert show_or_hide(shown, info, meta, D("2026-02-01")) is shown, "no change, same record"
    no = Decision(False, "r", LEADER, shanghai(JOINED), "e1")
    assert hidden_by(ColumnState("u", "chronicle", decision=no), info, meta) == "unit"
    assert hidden_by(col, None, meta) == "unregistered"


# ---- invariants under any history ------------------------------------------------------------


#: Days on which the invariants look at the register as it then stood.
LOOK = (0, 10, 30, 60)


def _lived(facts: list[Fact]) -> tuple[Register, date, list[tuple[Register, date, Any]]]:
    """Live ``facts`` with freshness recording every day; the final register and day, and on
    the days of ``LOOK`` the register then, the day, and what it said that day."""
    g = Given(empty(BOTH))
    for code, kind in UNITS.items():
        unit(kind, START, code)(g)
    looked = []
    pending = list(enumerate(facts))
    as_of = START
    for day in range(max((f[0] for f in facts), default=0) + 2):
        while pending and pending[0][1][0] == day:
            i, (_, u, action) = pending.pop(0)
            payload, aggregate = payload_of(u, day, action)
            g.seq += 1
            env = new_event(payload, aggregate_id=aggregate, actor=MAKER,
                            command_id=f"fact-{i}", recorded_at=fold_at(day))
            g.reg = evolve(g.reg, env, g.seq).register
        as_of = START + timedelta(days=day)
        if day in LOOK:
            said = (decide_all(g.reg, as_of), status_table(g.reg, as_of))
            looked.append((g.reg, as_of, said))
        g.recorded_on(as_of)
    return g.reg, as_of, looked


@settings(max_examples=25, deadline=None)
@given(facts=LIVES)
def test_evolve_leaves_its_input_as_it_was_and_recording_settles(facts: list[Fact]) -> None:
    last, day, looked = _lived(facts)
    for reg, as_of, said in looked:
        # Everything folded in later was built on this register: it still says what it said.
        assert (decide_all(reg, as_of), status_table(reg, as_of)) == said
    for col in last.all_columns():
        assert col.visible == (col.hidden_by is None)
    assert decide_all(last, day) == [], "recorded once, owed no more the same day"
