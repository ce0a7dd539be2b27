"""Deadlines from state, and what is due, stale or fresh as of a date. Pure functions.

A column's *schedule* is its list of deadlines under the active rule sets (one per periodic
rule, one per running obligation, one per annual report, one for a blank column). Each deadline
has a slot (rule set, rule, subject) and an episode key; as of a date a deadline is ``ok``,
``due_soon``, ``stale``, or settled (``on_time``, ``late_met``, ``cancelled``). ``decide``
compares that with the slot's ledger and returns the transitions not yet recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from gongkai.calendar import WorkingCalendar, day_end, local_date
from gongkai.causality import Cause
from gongkai.events import EventPayload
from gongkai.events.contracts.freshness import (
    ColumnDueSoon,
    ColumnRefreshed,
    ColumnStale,
    ColumnWasStale,
    column_aggregate_id,
)
from gongkai.events.envelope import EVENT_ID_NAMESPACE
from gongkai.rules import Rule, RuleSet
from gongkai_freshness.domain.state import (
    ColumnState,
    HistoryKey,
    Slot,
    SlotKey,
    Trigger,
    UnitInfo,
)

DeadlineState = Literal["ok", "due_soon", "stale", "on_time", "late_met", "cancelled"]
OPEN: frozenset[str] = frozenset({"ok", "due_soon", "stale"})
Resolution = Literal["published", "hidden", "withdrawn"]


class Deadlines:
    """Working-day arithmetic with memory: many columns share the same dates."""

    def __init__(self, calendar: WorkingCalendar) -> None:
        self.calendar = calendar
        self._after: dict[tuple[date, int], tuple[date, bool]] = {}
        self._warn: dict[tuple[date, int], date] = {}

    def after(self, start: date, n: int) -> tuple[date, bool]:
        """The n-th working day after ``start`` and whether it rests on a provisional year."""
        hit = self._after.get((start, n))
        if hit is None:
            r = self.calendar.add_working_days(start, n)
            hit = self._after[(start, n)] = (r.value, r.provisional)
        return hit

    def warn_from(self, due: date, n: int) -> date:
        """First day on which at most ``n`` working days remain until ``due`` (inclusive).

        Remaining = working days d with day < d <= due, as ``working_days_between`` counts, so
        the warning starts on the (n+1)-th working day counted back from ``due``.
        """
        hit = self._warn.get((due, n))
        if hit is None:
            d, seen = due, 0
            while True:
                if self.calendar.is_working_day(d):
                    seen += 1
                    if seen == n + 1:
                        break
                d -= timedelta(days=1)
            hit = self._warn[(due, n)] = d
        return hit

    def left(self, as_of: date, due: date) -> int:
        return self.calendar.working_days_between(as_of, due).value


# Not frozen: built by the hundred thousand, and a frozen dataclass pays for each field.
@dataclass(slots=True)
class Deadline:
    rule: Rule
    subject: str
    key: str
    due: date
    warn_from: date | None
    provisional: bool = False
    met_on: date | None = None
    cancelled: bool = False
    post_id: str | None = None
    triggered_on: date | None = None
    #: Stale on the due date itself, not the day after (a blank column is stale at once).
    immediate: bool = False
    #: The event the deadline runs from: its due-soon and stale events' cause.
    cause: Cause | None = None
    #: The event that met or cancelled it (None: the column's latest item, ``basis``).
    settled_by: Cause | None = None

    @property
    def slot(self) -> SlotKey:
        return (self.rule.rule_set, self.rule.id, self.subject)

    def state(self, as_of: date) -> DeadlineState:
        if self.cancelled:
            return "cancelled"
        if self.met_on is not None:
            return "on_time" if self.met_on <= self.due else "late_met"
        if as_of > self.due or (self.immediate and as_of == self.due):
            return "stale"
        if self.warn_from is not None and as_of >= self.warn_from:
            return "due_soon"
        return "ok"


def subject_of(rule_kind: str, episode: str) -> str:
    """The slot subject an episode key belongs to (see ``schedule`` for the key formats)."""
    if rule_kind in ("periodic", "blank"):
        return ""
    return episode.rpartition("@")[0]


def _trigger_deadline(
    rule: Rule, t: Trigger, col: ColumnState, unit: UnitInfo, dl: Deadlines
) -> Deadline | None:
    assert rule.within_working_days is not None
    due, provisional = dl.after(t.on, rule.within_working_days)
    if due < unit.registered_on:
        return None
    return Deadline(
        rule,
        t.id,
        f"{t.id}@{col.epoch}",
        due,
        dl.warn_from(due, rule.warn_working_days),
        provisional,
        met_on=t.met_on,
        cancelled=t.withdrawn,
        cause=t.cause,
        settled_by=t.settled_by,
        post_id=t.post_id,
        triggered_on=t.on,
    )


def schedule(
    col: ColumnState,
    unit: UnitInfo,
    rule_sets: Sequence[RuleSet],
    dl: Deadlines,
    year: int,
) -> tuple[Deadline, ...]:
    """Every deadline of a visible column for an evaluation date in ``year``."""
    if not col.visible:
        return ()
    out: list[Deadline] = []
    last = col.last_publication_on
    epoch = col.epoch
    for rs in rule_sets:
        for rule in rs.rules_for(col.column):
            kind = rule.kind
            if kind == "periodic":
                # A never-published column is blank, which the blank rule covers.
                if last is None:
                    continue
                assert rule.every is not None
                due = rule.every.after(last)
                out.append(
                    Deadline(
                        rule, "", f"{due}@{epoch}", due, dl.warn_from(due, rule.warn_working_days),
                        cause=col.basis,
                    )
                )
            elif kind == "blank":
                if col.ever_published or col.visible_since is None:
                    continue
                since = col.visible_since
                out.append(
                    Deadline(
                        rule, "", f"blank@{epoch}", since, None, immediate=True,
                        cause=col.shown_by,
                    )
                )
            elif kind == "dated":
                out.extend(_dated(rule, col, unit, dl, year))
            else:
                want = "post" if kind == "triggered" else "leadership"
                for t in col.triggers.values():
                    if t.kind != want or t.exempt:
                        continue
                    d = _trigger_deadline(rule, t, col, unit, dl)
                    if d is not None:
                        out.append(d)
    return tuple(out)


def _dated(
    rule: Rule, col: ColumnState, unit: UnitInfo, dl: Deadlines, year: int
) -> Iterable[Deadline]:
    # Last year's report matters only while its stale episode is still open: it then closes
    # with the first item after its deadline.
    prev_due = rule.deadline_in(year - 1, unit.kind)
    prev = col.slots.get((rule.rule_set, rule.id, str(year - 1)))
    if prev is not None and prev.stale_event is not None and prev_due >= unit.registered_on:
        last = col.last_publication_on
        met = last if last is not None and last > prev_due else None
        yield Deadline(
            rule, str(year - 1), prev.key, prev_due, None, met_on=met, cause=col.shown_by
        )
    due = rule.deadline_in(year, unit.kind)
    if due >= unit.registered_on:
        yield Deadline(
            rule,
            str(year),
            f"{year}@{col.epoch}",
            due,
            dl.warn_from(due, rule.warn_working_days),
            met_on=col.first_publication_by_year.get(year),
            cause=col.shown_by,
        )


@dataclass(frozen=True, slots=True)
class Transition:
    """One event to record: its payload, aggregate and deterministic command id."""

    payload: EventPayload
    aggregate_id: str
    command_id: str
    #: The time the event speaks for, when not the time it is recorded (history).
    business_time: datetime | None = None
    #: The event it follows from (gongkai.causality): a deadline's start for a warning or a
    #: staleness, what met, withdrew or hid it for a refresh. Derived from the facts, not from
    #: whichever event or tick made the evaluation run: the same on every path.
    cause: Cause | None = None


def event_id_for(command_id: str, index: int = 0) -> str:
    """The id ``new_event`` gives the ``index``-th event of ``command_id``."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{command_id}/{index}"))


def _cmd(kind: str, col: ColumnState, rule_set: str, rule: str, key: str) -> str:
    return f"{kind}:{col.unit}:{col.column}:{rule_set}:{rule}:{key}"


def _deadline_facts(col: ColumnState, d: Deadline) -> dict[str, Any]:
    """What a warning and a staleness both say of a deadline: the column, the rule, the
    episode, the due date and what started it."""
    r = d.rule
    return {
        "unit": col.unit,
        "column": col.column,
        "rule_set": r.rule_set,
        "rule": r.id,
        "rule_kind": r.kind,
        "episode": d.key,
        "due_date": d.due,
        "provisional": d.provisional,
        "last_publication_at": col.last_publication,
        "post_id": d.post_id,
        "triggered_on": d.triggered_on,
    }


def _deadline_transition(kind: str, col: ColumnState, d: Deadline, p: EventPayload) -> Transition:
    """``p`` on the column's aggregate, its command id naming ``kind``, the rule and the
    episode (so the same deadline warns, or goes stale, once), caused by what started it."""
    cmd = _cmd(kind, col, d.rule.rule_set, d.rule.id, d.key)
    return Transition(p, column_aggregate_id(col.unit, col.column), cmd, cause=d.cause)


def _stale(col: ColumnState, d: Deadline, as_of: date) -> Transition:
    end = d.met_on if d.met_on is not None else as_of
    p = ColumnStale(
        **_deadline_facts(col, d), overdue_days=max(0, (end - d.due).days), met_on=d.met_on
    )
    return _deadline_transition("stale", col, d, p)


def _due_soon(col: ColumnState, d: Deadline, as_of: date, dl: Deadlines) -> Transition:
    p = ColumnDueSoon(**_deadline_facts(col, d), working_days_left=dl.left(as_of, d.due))
    return _deadline_transition("due-soon", col, d, p)


def _refreshed(
    col: ColumnState,
    slot_key: SlotKey,
    slot: Slot,
    rule: Rule,
    resolution: Resolution,
    met_on: date | None = None,
    due: date | None = None,
    post_id: str | None = None,
    *,
    cause: Cause | None,
) -> Transition:
    due_date = due or slot.due
    assert due_date is not None
    late = None
    if resolution == "published" and met_on is not None:
        late = max(0, (met_on - due_date).days)
    p = ColumnRefreshed(
        unit=col.unit,
        column=col.column,
        rule_set=slot_key[0],
        rule=slot_key[1],
        rule_kind=rule.kind,
        episode=slot.key,
        due_date=due_date,
        resolution=resolution,
        stale_event_id=slot.stale_event,
        last_publication_at=col.last_publication,
        post_id=post_id if post_id is not None else slot.post_id,
        met_on=met_on if resolution == "published" else None,
        late_days=late,
    )
    return Transition(
        p,
        column_aggregate_id(col.unit, col.column),
        _cmd("refreshed", col, slot_key[0], slot_key[1], slot.key),
        cause=cause,
    )


def decide(
    col: ColumnState,
    deadlines: Sequence[Deadline],
    as_of: date,
    rules: Mapping[tuple[str, str], Rule],
    dl: Deadlines,
) -> list[Transition]:
    """The transitions the column owes as of ``as_of`` that its ledger has not recorded.

    ``rules`` indexes the active rules by (rule set, rule id); slots of rules no longer active
    are left alone.
    """
    out: list[Transition] = []
    seen: set[SlotKey] = set()
    for d in deadlines:
        st = d.state(as_of)
        sk = d.slot
        seen.add(sk)
        slot = col.slots.get(sk)
        if slot is None:
            if st == "stale":
                out.append(_stale(col, d, as_of))
            elif st == "late_met":
                out.append(_stale(col, d, as_of))
                out.append(_late_refreshed(col, d))
            elif st == "due_soon":
                out.append(_due_soon(col, d, as_of, dl))
            continue
        same = slot.key == d.key
        is_open = same and slot.stale_event is not None
        closed = slot.closed == d.key
        if not same and slot.stale_event is not None:
            # A newer deadline replaced an episode still open (a periodic column updated late).
            out.append(
                _refreshed(
                    col, sk, slot, d.rule, "published", met_on=col.last_publication_on,
                    cause=col.basis,
                )
            )
        if st == "stale":
            if not is_open and not closed:
                out.append(_stale(col, d, as_of))
        elif st == "late_met":
            if not closed:
                if not is_open:
                    out.append(_stale(col, d, as_of))
                    out.append(_late_refreshed(col, d))
                else:
                    out.append(
                        _refreshed(
                            col, sk, slot, d.rule, "published", met_on=d.met_on, due=d.due,
                            cause=d.settled_by or col.basis,
                        )
                    )
        elif st == "due_soon":
            if not (same and slot.due_soon) and not is_open and not closed:
                out.append(_due_soon(col, d, as_of, dl))
        elif is_open:
            resolution: Resolution = "withdrawn" if st == "cancelled" else "published"
            out.append(
                _refreshed(
                    col, sk, slot, d.rule, resolution, met_on=d.met_on, due=d.due,
                    cause=d.settled_by or col.basis,
                )
            )
    for sk, slot in col.slots.items():
        if sk in seen or slot.stale_event is None:
            continue
        rule = rules.get((sk[0], sk[1]))
        if rule is None:
            continue
        if not col.visible:
            out.append(_refreshed(col, sk, slot, rule, "hidden", cause=col.shown_by))
        else:
            out.append(
                _refreshed(
                    col, sk, slot, rule, "published", met_on=col.last_publication_on,
                    cause=col.basis,
                )
            )
    return out


def _late_refreshed(col: ColumnState, d: Deadline) -> Transition:
    # Recorded right after its ColumnStale; that event's id follows from its command id, so
    # the link is known before either is appended.
    stale_cmd = _cmd("stale", col, d.rule.rule_set, d.rule.id, d.key)
    slot = Slot(d.key, stale_event=event_id_for(stale_cmd), due=d.due, post_id=d.post_id)
    return _refreshed(
        col, d.slot, slot, d.rule, "published", met_on=d.met_on, due=d.due,
        cause=d.settled_by or col.basis,
    )


def trigger_settled(
    t: Trigger,
    col: ColumnState,
    unit: UnitInfo | None,
    rule_sets: Sequence[RuleSet],
    dl: Deadlines,
) -> bool:
    """True when nothing more can ever be recorded about the obligation: forget it."""
    if t.met_on is None and not t.withdrawn and not t.exempt:
        return False
    if unit is None:
        return False
    want = "triggered" if t.kind == "post" else "leadership"
    for rs in rule_sets:
        for rule in rs.rules_for(col.column):
            if rule.kind != want:
                continue
            slot = col.slots.get((rs.id, rule.id, t.id))
            if slot is not None and slot.stale_event is not None:
                return False
            if t.withdrawn or t.exempt or t.met_on is None:
                continue
            d = _trigger_deadline(rule, t, col, unit, dl)
            if d is None or d.state(d.due) == "on_time":
                continue
            if slot is None or slot.closed != d.key:
                return False
    return True


# ---- the imported history --------------------------------------------------------------


def decide_history(
    col: ColumnState, unit: UnitInfo, rule_sets: Sequence[RuleSet]
) -> list[Transition]:
    """The ``ColumnWasStale`` episodes the imported history owes and the ledger lacks.

    Only periodic rules, only before the unit joined (from then on the live ledger watches):
    between two imported items, the column was stale from the day after the first one's due
    date until the next went online; after the last, until the unit joined. An episode
    recorded before that more items have since unmade is recorded again as not stale
    (``until`` the day after its due date): the latest of an episode stands. Triggered, dated
    and blank rules need facts an export does not hold (the information's date, when the
    section opened) and are not judged in history.
    """
    if not col.imported or not col.visible:
        return []
    joined = unit.registered_on
    items = sorted(
        {(local_date(at), at) for at in col.imported.values() if local_date(at) < joined}
    )
    # One item a day is enough: a deadline runs from the day an item went online.
    by_day: dict[date, datetime] = {}
    for day, at in items:
        by_day.setdefault(day, at)
    days = sorted(by_day)
    want: dict[HistoryKey, tuple[date, datetime]] = {}
    for rs in rule_sets:
        for rule in rs.rules_for(col.column):
            if rule.kind != "periodic" or rule.every is None:
                continue
            for i, day in enumerate(days):
                due = rule.every.after(day)
                until = days[i + 1] if i + 1 < len(days) else joined
                if until > due + timedelta(days=1):
                    want[(rs.id, rule.id, due)] = (until, by_day[day])
    out: list[Transition] = []
    for key, (until, last) in sorted(want.items()):
        if col.history.get(key) != until:
            out.append(_was_stale(col, key, until, last))
    for key, recorded in sorted(col.history.items()):
        unmade = key[2] + timedelta(days=1)
        if key not in want and recorded != unmade:
            out.append(_was_stale(col, key, unmade, None))
    return out


def _was_stale(
    col: ColumnState, key: HistoryKey, until: date, last: datetime | None
) -> Transition:
    rule_set, rule, due = key
    p = ColumnWasStale(
        unit=col.unit,
        column=col.column,
        rule_set=rule_set,
        rule=rule,
        due_date=due,
        until=until,
        last_publication_at=last,
    )
    return Transition(
        p,
        column_aggregate_id(col.unit, col.column),
        _cmd("was-stale", col, rule_set, rule, f"{due}:{until}"),
        # The first day it was stale: an as-of view of that day includes it.
        business_time=day_end(due),
        # Derived from the column's imported items; the latest of them names the chain.
        cause=col.basis,
    )
