"""The county's register of columns as a value: ``evolve`` folds an event in, ``decide_all`` says
what to record. Pure functions over immutable state; ``adapters.register`` holds the current one.

One register holds every unit's columns because evaluation runs over all of them at once (the
clock tick) and one event can touch many (a unit registered, its kind changed). It is a decider
in the Chassaing sense, scaled up: ``evolve(register, event)`` returns a new register (and the
columns whose deadlines the event may have moved) and leaves its input as it was; ``decide_*``
read a register and a date and return transitions. Neither does I/O.

A county-year is ~10^6 events over ~10^4 columns and ~10^5 posts, so copying a whole mapping per
event is out of the question: the unit and post indexes are hash tries (``rpds``; an insert
shares all but a path of the old trie), each unit's columns a small mapping copied on change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from rpds import HashTrieMap

from gongkai.calendar import WorkingCalendar, local_date
from gongkai.causality import Cause
from gongkai.events import Envelope
from gongkai.events.contracts import freshness as fev
from gongkai.events.contracts import intake as iev
from gongkai.rules import Catalog, Rule, RuleSet
from gongkai_freshness.domain.evaluation import (
    Deadline,
    Deadlines,
    Transition,
    decide,
    decide_history,
    schedule,
    subject_of,
    trigger_settled,
)
from gongkai_freshness.domain.state import (
    EMPTY,
    ColumnKey,
    ColumnState,
    Decision,
    PostRef,
    Slot,
    Trigger,
    UnitInfo,
    replace,
)
from gongkai_freshness.domain.visibility import show_or_hide

#: The event types the register folds in; everything else on the log is skipped unread.
RELEVANT_TYPES: frozenset[str] = frozenset(
    {
        "UnitRegistered",
        "LeadershipDutiesChanged",
        "PostSubmitted",
        "PostRevised",
        "PostWithdrawn",
        "PostPublished",
        "PublicationImported",
        "PublicationRemoved",
        "ColumnHidden",
        "ColumnKept",
        "ColumnDueSoon",
        "ColumnStale",
        "ColumnRefreshed",
        "ColumnWasStale",
    }
)

#: A column's deadlines for an evaluation year: ``RuleBook.schedule`` or a memo of it (the
#: adapter's, which remembers them per column record).
Schedules = Callable[[ColumnState, UnitInfo, int], tuple[Deadline, ...]]


@dataclass(frozen=True)
class RuleBook:
    """The active rule sets and what is derived from them once: they do not change while
    freshness runs (a new rule set is a restart and a replay)."""

    rule_sets: tuple[RuleSet, ...]
    catalog: Catalog
    #: The active rules by (rule set, rule id).
    rules: Mapping[tuple[str, str], Rule]
    deadlines: Deadlines
    #: Columns with a rule on changes of leaders' duties.
    leadership_columns: tuple[str, ...]

    def schedule(self, col: ColumnState, unit: UnitInfo, year: int) -> tuple[Deadline, ...]:
        return schedule(col, unit, self.rule_sets, self.deadlines, year)


def rule_book(rule_sets: Sequence[RuleSet], calendar: WorkingCalendar) -> RuleBook:
    if not rule_sets:
        raise ValueError("at least one rule set")
    sets = tuple(rule_sets)
    catalog = sets[0].catalog
    return RuleBook(
        sets,
        catalog,
        {(r.rule_set, r.id): r for rs in sets for r in rs.rules},
        Deadlines(calendar),
        tuple(
            code
            for code in catalog.columns
            if any(r.kind == "leadership" for rs in sets for r in rs.rules_for(code))
        ),
    )


@dataclass(frozen=True, slots=True)
class Register:
    book: RuleBook
    units: HashTrieMap[str, UnitInfo]
    #: unit -> column -> state. A unit's columns may be known before the unit (an item put
    #: online before the directory lists it).
    columns: HashTrieMap[str, Mapping[str, ColumnState]]
    #: post id -> where its obligations live.
    posts: HashTrieMap[str, PostRef]

    @property
    def catalog(self) -> Catalog:
        return self.book.catalog

    @property
    def rule_sets(self) -> tuple[RuleSet, ...]:
        return self.book.rule_sets

    def column(self, unit: str, column: str) -> ColumnState:
        """The column's state; a column never mentioned is the empty one."""
        col = self.columns.get(unit, EMPTY).get(column)
        return col if col is not None else ColumnState(unit, column)

    def unit_columns(self, unit: str) -> list[ColumnState]:
        """The unit's catalog columns, in catalog order."""
        known = self.columns.get(unit, EMPTY)
        return [known.get(code) or ColumnState(unit, code) for code in self.catalog.columns]

    def all_columns(self) -> Iterator[ColumnState]:
        for cols in self.columns.values():
            yield from cols.values()

    def column_count(self) -> int:
        return sum(len(cols) for cols in self.columns.values())


def empty(book: RuleBook) -> Register:
    """The register before any event."""
    return Register(book, HashTrieMap(), HashTrieMap(), HashTrieMap())


@dataclass(frozen=True, slots=True)
class Evolved:
    """A register after one event, and the columns whose deadlines the event may have moved."""

    register: Register
    touched: tuple[ColumnKey, ...] = ()


# ---- evolve --------------------------------------------------------------------------------


def evolve(reg: Register, env: Envelope[Any], seq: int = 0) -> Evolved:
    """Fold one event (at stream sequence ``seq``) into ``reg``; ``reg`` itself is unchanged."""
    handler = _HANDLERS.get(type(env.payload))
    if handler is None:
        return Evolved(reg)
    return handler(reg, env, seq)


def fold(reg: Register, history: Iterable[tuple[Envelope[Any], int]]) -> Register:
    """``reg`` after every (event, sequence) of ``history``, in order."""
    for env, seq in history:
        reg = evolve(reg, env, seq).register
    return reg


def _changed(
    reg: Register,
    columns: Mapping[ColumnKey, ColumnState],
    *,
    unit: UnitInfo | None = None,
    post: tuple[str, PostRef] | None = None,
) -> Evolved:
    """The register with these records replaced (new dicts and tries: ``reg`` is untouched)."""
    tries = reg.columns
    if len(columns) == 1:
        ((u, c), col), = columns.items()
        tries = tries.insert(u, {**tries.get(u, EMPTY), c: col})
    else:
        by_unit: dict[str, dict[str, ColumnState]] = {}
        for (u, c), col in columns.items():
            by_unit.setdefault(u, {})[c] = col
        for u, cols in by_unit.items():
            tries = tries.insert(u, {**tries.get(u, EMPTY), **cols})
    units = reg.units if unit is None else reg.units.insert(unit.code, unit)
    posts = reg.posts if post is None else reg.posts.insert(*post)
    return Evolved(Register(reg.book, units, tries, posts), tuple(columns))


def _unit_registered(reg: Register, env: Envelope[Any], seq: int) -> Evolved:
    p: iev.UnitRegistered = env.payload
    on = local_date(env.business_time)
    known = reg.units.get(p.code)
    if known is None:
        unit = UnitInfo(p.code, p.name, p.kind, p.contact_name, p.contact_mobile, registered_on=on)
    else:
        # Re-registration updates details; the unit's history on the platform began earlier.
        unit = replace(
            known,
            name=p.name,
            kind=p.kind,
            contact_name=p.contact_name,
            contact_mobile=p.contact_mobile,
        )
    catalog = reg.catalog.columns
    cols = {
        col.key: show_or_hide(col, unit, catalog[col.column], on, Cause.of(env))
        for col in reg.unit_columns(p.code)
    }
    return _changed(reg, cols, unit=unit)


def _leadership_changed(reg: Register, env: Envelope[Any], seq: int) -> Evolved:
    p: iev.LeadershipDutiesChanged = env.payload
    unit = reg.units.get(p.unit)
    tid = f"leadership:{p.changed_on.isoformat()}:{env.event_id[:8]}"
    changed: dict[ColumnKey, ColumnState] = {}
    for code in reg.book.leadership_columns:
        col = reg.column(p.unit, code)
        if tid in col.triggers:
            continue
        last = col.last_publication_on
        # Updated the same day the change was recorded: met at once.
        met = last if last is not None and last >= p.changed_on else None
        t = Trigger(
            tid, "leadership", p.changed_on, met_on=met, cause=Cause.of(env),
            settled_by=col.basis if met is not None else None,
        )
        col = replace(col, triggers={**col.triggers, tid: t})
        changed[col.key] = settle(col, unit, reg.book)
    return _changed(reg, changed)


def _post_submitted(reg: Register, env: Envelope[Any], seq: int) -> Evolved:
    p: iev.PostSubmitted = env.payload
    post_id = env.aggregate_id
    if p.column not in reg.catalog.columns or post_id in reg.posts:
        return Evolved(reg)
    col = reg.column(p.unit, p.column)
    tid = f"post:{post_id}:1"
    col = replace(
        col,
        triggers={
            **col.triggers,
            tid: Trigger(tid, "post", p.information_date, post_id, cause=Cause.of(env)),
        },
    )
    ref = PostRef(p.unit, p.column, triggers=1, last_on=p.information_date)
    return _changed(reg, {col.key: col}, post=(post_id, ref))


def _post_revised(reg: Register, env: Envelope[Any], seq: int) -> Evolved:
    p: iev.PostRevised = env.payload
    post_id = env.aggregate_id
    ref = reg.posts.get(post_id)
    if ref is None or ref.withdrawn:
        return Evolved(reg)
    col = reg.column(ref.unit, ref.column)
    on = p.information_date
    if not ref.published:
        # Editing before publication buys no time: the deadline runs from the earliest date.
        tid = f"post:{post_id}:{ref.triggers}"
        t = col.triggers.get(tid)
        if t is None or t.met_on is not None or on >= t.on:
            return Evolved(reg)
        col = replace(col, triggers={**col.triggers, tid: replace(t, on=on, cause=Cause.of(env))})
        return _changed(reg, {col.key: col}, post=(post_id, replace(ref, last_on=on)))
    if ref.last_on is not None and on <= ref.last_on:
        return Evolved(reg)
    # The information changed after it went online: the change is due online in its turn.
    ref = replace(ref, triggers=ref.triggers + 1, last_on=on, published=False)
    tid = f"post:{post_id}:{ref.triggers}"
    col = replace(
        col,
        triggers={**col.triggers, tid: Trigger(tid, "post", on, post_id, cause=Cause.of(env))},
    )
    return _changed(reg, {col.key: col}, post=(post_id, ref))


def _post_withdrawn(reg: Register, env: Envelope[Any], seq: int) -> Evolved:
    post_id = env.aggregate_id
    ref = reg.posts.get(post_id)
    if ref is None or ref.withdrawn:
        return Evolved(reg)
    col = reg.column(ref.unit, ref.column)
    by = Cause.of(env)
    triggers = {
        tid: replace(t, withdrawn=True, settled_by=by)
        if t.post_id == post_id and t.met_on is None
        else t
        for tid, t in col.triggers.items()
    }
    col = settle(replace(col, triggers=triggers), reg.units.get(ref.unit), reg.book)
    return _changed(reg, {col.key: col}, post=(post_id, replace(ref, withdrawn=True)))


def _post_published(reg: Register, env: Envelope[Any], seq: int) -> Evolved:
    p: iev.PostPublished | iev.PublicationImported = env.payload
    d = local_date(p.online_at)
    by = Cause.of(env)
    post_id = p.post_id if isinstance(p, iev.PostPublished) else None
    ref = reg.posts.get(post_id) if post_id else None
    changed: dict[ColumnKey, ColumnState] = {}
    if p.column in reg.catalog.columns:
        col = reg.column(p.unit, p.column)
        prev = col.live.get(p.publication_id)
        live = _put(col.live, p.publication_id, p.online_at)
        last, last_on = col.last_publication, col.last_publication_on
        basis = by if last is None or p.online_at >= last else col.basis
        if last is None or p.online_at > last:
            last, last_on = p.online_at, d
        elif prev is not None and prev == last and p.online_at < prev:
            last, last_on = _latest(live)
        first = col.first_publication_by_year
        if first.get(d.year) is None or d < first[d.year]:
            first = {**first, d.year: d}
        col = replace(
            col,
            live=live,
            ever_published=True,
            last_publication=last,
            last_publication_on=last_on,
            first_publication_by_year=first,
            basis=basis,
        )
        unit = reg.units.get(p.unit)
        # An emptied column shows again once it has an item.
        col = show_or_hide(col, unit, reg.catalog.columns[p.column], d, by)
        met = [
            tid
            for tid, t in col.triggers.items()
            if t.kind == "leadership" and t.met_on is None and d >= t.on
        ]
        if met:
            exempt = not col.visible
            triggers = dict(col.triggers)
            for tid in met:
                triggers[tid] = replace(triggers[tid], met_on=d, exempt=exempt, settled_by=by)
            col = replace(col, triggers=triggers)
        if ref is not None and (ref.unit, ref.column) == col.key:
            # The post's own obligations live in this column: settled once, below, with
            # them met (a trigger the publication leaves unmet is settled or not the same
            # either way: meeting the post's changes nothing else the check reads).
            changed[col.key] = col
        else:
            changed[col.key] = settle(col, unit, reg.book)
    if ref is None or post_id is None:
        return _changed(reg, changed)
    key = (ref.unit, ref.column)
    pcol = changed.get(key) or reg.column(*key)
    # The post's obligations by id (``post:<id>:<n>``, one per submission or revision after
    # it went online), not a scan of every obligation the column still runs.
    met = [
        tid
        for tid in (f"post:{post_id}:{n}" for n in range(1, ref.triggers + 1))
        if (t := pcol.triggers.get(tid)) is not None and t.met_on is None and not t.withdrawn
    ]
    if met:
        exempt = not pcol.visible
        triggers = dict(pcol.triggers)
        for tid in met:
            triggers[tid] = replace(
                triggers[tid], met_on=d, publication_id=p.publication_id, exempt=exempt,
                settled_by=by,
            )
        pcol = replace(pcol, triggers=triggers)
    changed[key] = settle(pcol, reg.units.get(ref.unit), reg.book)
    return _changed(reg, changed, post=(post_id, replace(ref, published=True)))


def _publication_imported(reg: Register, env: Envelope[Any], seq: int) -> Evolved:
    """An item of the site's history: a publication for due dates, kept apart for the
    history's own episodes (``decide_history``)."""
    p: iev.PublicationImported = env.payload
    evolved = _post_published(reg, env, seq)
    if p.column not in reg.catalog.columns:
        return evolved
    reg = evolved.register
    col = reg.column(p.unit, p.column)
    col = replace(col, imported=_put(col.imported, p.publication_id, p.online_at))
    return _changed(reg, {col.key: col})


def _was_stale(reg: Register, env: Envelope[Any], seq: int) -> Evolved:
    p: fev.ColumnWasStale = env.payload
    col = reg.column(p.unit, p.column)
    history = {**col.history, (p.rule_set, p.rule, p.due_date): p.until}
    col = replace(col, history=history, version=max(col.version, seq))
    return _changed(reg, {col.key: col})


def _publication_removed(reg: Register, env: Envelope[Any], seq: int) -> Evolved:
    p: iev.PublicationRemoved = env.payload
    col = reg.columns.get(p.unit, EMPTY).get(p.column)
    if col is None or p.publication_id not in col.live:
        return Evolved(reg)
    was = col.live[p.publication_id]
    live = _trie(col.live).remove(p.publication_id)
    col = replace(col, live=live)
    by = Cause.of(env)
    if was == col.last_publication and live:
        last, last_on = _latest(live)
        col = replace(col, last_publication=last, last_publication_on=last_on, basis=by)
    unit = reg.units.get(p.unit)
    # The notice's note 2: removing every item of a column hides it on the public site.
    col = show_or_hide(col, unit, reg.catalog.columns[p.column], local_date(p.removed_at), by)
    col = settle(col, unit, reg.book)
    return _changed(reg, {col.key: col})


def _decided(reg: Register, env: Envelope[Any], seq: int) -> Evolved:
    p = env.payload
    meta = reg.catalog.columns.get(p.column)
    if meta is None:
        # A column of another catalog (rule sets are data and change): nothing to keep or
        # hide here.
        return Evolved(reg)
    col = reg.column(p.unit, p.column)
    decision = Decision(
        keep=isinstance(p, fev.ColumnKept),
        reason=p.reason,
        actor=env.actor,
        at=env.business_time,
        event_id=env.event_id,
    )
    col = replace(col, decision=decision, version=max(col.version, seq))
    col = show_or_hide(
        col, reg.units.get(p.unit), meta, local_date(env.business_time), Cause.of(env)
    )
    return _changed(reg, {col.key: col})


def _ledger(reg: Register, env: Envelope[Any], seq: int) -> Evolved:
    p = env.payload
    col = reg.column(p.unit, p.column)
    col = replace(col, version=max(col.version, seq))
    sk = (p.rule_set, p.rule, subject_of(p.rule_kind, p.episode))
    slot = col.slots.get(sk)
    if isinstance(p, fev.ColumnRefreshed):
        if slot is None:
            slot = Slot(p.episode)
        if slot.key == p.episode:
            slot = replace(slot, stale_event=None)
        slot = replace(slot, closed=p.episode)
        col = replace(col, slots={**col.slots, sk: slot})
        col = settle(col, reg.units.get(p.unit), reg.book)
        return _changed(reg, {col.key: col})
    if slot is None:
        slot = Slot(p.episode)
    elif slot.key != p.episode:
        if slot.closed == p.episode:
            return _changed(reg, {col.key: col})  # a late copy of an episode already closed
        slot = replace(slot, key=p.episode, due_soon=False, stale_event=None)
    if isinstance(p, fev.ColumnDueSoon):
        slot = replace(slot, due_soon=True)
    elif slot.closed != p.episode:
        slot = replace(slot, stale_event=env.event_id, due=p.due_date, post_id=p.post_id)
    col = replace(col, slots={**col.slots, sk: slot})
    return _changed(reg, {col.key: col})


_HANDLERS: dict[type[Any], Callable[[Register, Envelope[Any], int], Evolved]] = {
    iev.UnitRegistered: _unit_registered,
    iev.LeadershipDutiesChanged: _leadership_changed,
    iev.PostSubmitted: _post_submitted,
    iev.PostRevised: _post_revised,
    iev.PostWithdrawn: _post_withdrawn,
    iev.PostPublished: _post_published,
    iev.PublicationImported: _publication_imported,
    iev.PublicationRemoved: _publication_removed,
    fev.ColumnHidden: _decided,
    fev.ColumnKept: _decided,
    fev.ColumnDueSoon: _ledger,
    fev.ColumnStale: _ledger,
    fev.ColumnRefreshed: _ledger,
    fev.ColumnWasStale: _was_stale,
}


def _trie(items: Mapping[str, datetime]) -> HashTrieMap[str, datetime]:
    return items if isinstance(items, HashTrieMap) else HashTrieMap(items)


def _put(items: Mapping[str, datetime], key: str, at: datetime) -> HashTrieMap[str, datetime]:
    """``items`` with ``key`` at ``at``, shared with ``items`` but for a path of the trie: a
    column's items online grow with every publication (thousands over the years), and a
    copied mapping made each publication cost as much as the column's whole history."""
    return _trie(items).insert(key, at)


def _latest(live: Mapping[str, datetime]) -> tuple[datetime, date]:
    latest = max(live.values())
    return latest, local_date(latest)


def settle(col: ColumnState, unit: UnitInfo | None, book: RuleBook) -> ColumnState:
    """The column without the obligations nothing more can ever be recorded about (and their
    ledger slots): a register that keeps every post forever would grow without bound."""
    done = {
        tid
        for tid, t in col.triggers.items()
        if trigger_settled(t, col, unit, book.rule_sets, book.deadlines)
    }
    if not done:
        return col
    return replace(
        col,
        triggers={tid: t for tid, t in col.triggers.items() if tid not in done},
        slots={sk: s for sk, s in col.slots.items() if sk[2] not in done},
    )


# ---- decide --------------------------------------------------------------------------------


def decide_column(
    reg: Register, col: ColumnState, as_of: date, schedules: Schedules | None = None
) -> list[Transition]:
    """The transitions one column owes as of ``as_of`` that its ledger has not recorded."""
    unit = reg.units.get(col.unit)
    if unit is None:
        return []
    return _owed(reg, col, unit, as_of, schedules or reg.book.schedule)


def _owed(
    reg: Register, col: ColumnState, unit: UnitInfo, as_of: date, schedules: Schedules
) -> list[Transition]:
    if not col.visible and not any(s.stale_event for s in col.slots.values()):
        return []
    sched = schedules(col, unit, as_of.year)
    return decide(col, sched, as_of, reg.book.rules, reg.book.deadlines)


def decide_columns(
    reg: Register, keys: Iterable[ColumnKey], as_of: date, schedules: Schedules | None = None
) -> list[Transition]:
    """What the columns an event touched owe now (the register as it stands after it)."""
    out: list[Transition] = []
    for unit, column in keys:
        out.extend(decide_column(reg, reg.column(unit, column), as_of, schedules))
    return out


def decide_all(
    reg: Register, as_of: date, schedules: Schedules | None = None
) -> list[Transition]:
    """Every transition owed by every column as of ``as_of`` (the clock tick)."""
    sched = schedules or reg.book.schedule
    out: list[Transition] = []
    # Unit by unit: one look-up in the trie per unit, not per column.
    for code, cols in reg.columns.items():
        unit = reg.units.get(code)
        if unit is None:
            continue
        for col in cols.values():
            out.extend(_owed(reg, col, unit, as_of, sched))
            if col.imported:
                out.extend(decide_history(col, unit, reg.book.rule_sets))
    return out
