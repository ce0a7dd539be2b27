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
from typing import Any, cast

from rpds import HashTrieMap

from gongkai.calendar import WorkingCalendar, local_date
from gongkai.events import Envelope
from gongkai.events.contracts import freshness as fev
from gongkai.events.contracts import intake as iev
from gongkai.rules import Catalog, Column, Rule, RuleSet
from gongkai_freshness.domain.evaluation import (
    Deadline,
    Deadlines,
    Transition,
    decide,
    schedule,
    subject_of,
    trigger_settled,
)
from gongkai_freshness.domain.state import (
    EMPTY,
    ColumnKey,
    ColumnState,
    Decision,
    HiddenBy,
    PostRef,
    Slot,
    SlotKey,
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
        "PublicationRemoved",
        "ColumnHidden",
        "ColumnKept",
        "ColumnDueSoon",
        "ColumnStale",
        "ColumnRefreshed",
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


# ---- evolve --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Evolved:
    """A register after one event or a batch of them, and the columns whose deadlines they may
    have moved (each once, in the order first touched)."""

    register: Register
    touched: tuple[ColumnKey, ...] = ()


def evolve(reg: Register, env: Envelope[Any], seq: int = 0) -> Evolved:
    """Fold one event (at stream sequence ``seq``) into ``reg``; ``reg`` itself is unchanged."""
    handler = _HANDLERS.get(type(env.payload))
    if handler is None:
        return Evolved(reg)
    batch = _Batch(reg)
    handler(batch, env, seq)
    return batch.done()


def fold_batch(reg: Register, events: Iterable[tuple[Envelope[Any], int]]) -> Evolved:
    """Fold every (event, sequence) of ``events`` into ``reg``, in order; ``reg`` is unchanged.

    The same register (and the same touched columns) as folding the events one at a time
    through ``evolve``, however they are split into batches; it only costs less: the columns
    an event changes are written in place on private copies, and the new register is put
    together once at the end instead of after every event.
    """
    batch = _Batch(reg)
    handlers = _HANDLERS
    for env, seq in events:
        handler = handlers.get(type(env.payload))
        if handler is not None:
            handler(batch, env, seq)
    return batch.done()


def fold(reg: Register, history: Iterable[tuple[Envelope[Any], int]]) -> Register:
    """``reg`` after every (event, sequence) of ``history``, in order."""
    return fold_batch(reg, history).register


class _Draft(ColumnState):
    """A column being changed inside one batch: the same record, but writable.

    Replacing a 15-field frozen record costs ~2 µs and an event used to replace its column up to
    five times (the item, visibility, obligations met, settling, twice for a post's own column):
    most of the cost of a replay. A draft is a private copy, made the first time a batch changes
    the column; the handlers write its fields in place and ``_Batch.done`` turns it into a plain
    frozen ``ColumnState`` by swapping its class back (the layouts are the same: no copy). It
    never leaves this module, and nothing else holds it while it is written: the register given
    to the batch keeps the record the draft was copied from, unchanged. Its mappings are never
    written in place either (each change makes a new one), so a draft shares them freely.
    """

    __slots__ = ()
    # The frozen record's __setattr__ raises; the draft's is the plain one.
    __setattr__ = object.__setattr__

    # Redeclared so that the type checker lets the handlers write them.
    decision: Decision | None
    live: Mapping[str, datetime]
    ever_published: bool
    last_publication: datetime | None
    last_publication_on: date | None
    first_publication_by_year: Mapping[int, date]
    triggers: Mapping[str, Trigger]
    visible: bool
    hidden_by: HiddenBy | None
    epoch: int
    visible_since: date | None
    slots: Mapping[SlotKey, Slot]
    version: int


def _thaw(col: ColumnState) -> _Draft:
    """A writable copy of ``col`` (``replace`` copies it; the copy is nobody else's)."""
    draft = replace(col)
    object.__setattr__(draft, "__class__", _Draft)
    return cast(_Draft, draft)  # its class is _Draft now


class _Batch:
    """What a batch of events has changed so far, over the register it started from.

    Transient and private to ``fold_batch``/``evolve``: changed units and posts in plain dicts,
    changed columns as drafts; ``done`` builds the new register from them once.
    """

    __slots__ = ("book", "drafts", "posts", "reg", "touched", "units")

    def __init__(self, reg: Register) -> None:
        self.reg = reg
        self.book = reg.book
        self.units: dict[str, UnitInfo] = {}
        self.posts: dict[str, PostRef] = {}
        #: unit -> column -> draft.
        self.drafts: dict[str, dict[str, _Draft]] = {}
        self.touched: dict[ColumnKey, None] = {}

    def unit(self, code: str) -> UnitInfo | None:
        unit = self.units.get(code)
        return unit if unit is not None else self.reg.units.get(code)

    def post(self, post_id: str) -> PostRef | None:
        ref = self.posts.get(post_id)
        return ref if ref is not None else self.reg.posts.get(post_id)

    def peek(self, unit: str, column: str) -> ColumnState | None:
        """The column as it stands, to read only; None when no event has mentioned it."""
        drafts = self.drafts.get(unit)
        if drafts is not None:
            draft = drafts.get(column)
            if draft is not None:
                return draft
        return self.reg.columns.get(unit, EMPTY).get(column)

    def column(self, unit: str, column: str) -> _Draft:
        """The column to change (a column never mentioned starts empty); counts as touched."""
        self.touched[(unit, column)] = None
        drafts = self.drafts.get(unit)
        if drafts is None:
            drafts = self.drafts[unit] = {}
        else:
            draft = drafts.get(column)
            if draft is not None:
                return draft
        col = self.reg.columns.get(unit, EMPTY).get(column)
        draft = _Draft(unit, column) if col is None else _thaw(col)
        drafts[column] = draft
        return draft

    def done(self) -> Evolved:
        """The register with everything this batch changed; the batch is spent."""
        reg = self.reg
        if not self.touched and not self.units and not self.posts:
            return Evolved(reg)
        tries = reg.columns
        for unit, drafts in self.drafts.items():
            for draft in drafts.values():
                object.__setattr__(draft, "__class__", ColumnState)  # frozen from here on
            tries = tries.insert(unit, {**tries.get(unit, EMPTY), **drafts})
        units = reg.units.update(self.units) if self.units else reg.units
        posts = reg.posts.update(self.posts) if self.posts else reg.posts
        return Evolved(Register(self.book, units, tries, posts), tuple(self.touched))


def _show_or_hide(col: _Draft, unit: UnitInfo | None, meta: Column, on: date) -> None:
    """``visibility.show_or_hide`` on a draft: the rule stays there, its result is written in."""
    shown = show_or_hide(col, unit, meta, on)
    if shown is not col:
        # The fields show_or_hide decides (a new epoch when the column shows again).
        col.visible, col.hidden_by = shown.visible, shown.hidden_by
        col.epoch, col.visible_since = shown.epoch, shown.visible_since


def _settle(col: _Draft, unit: UnitInfo | None, book: RuleBook) -> None:
    """Forget the obligations nothing more can ever be recorded about (and their ledger
    slots): a register that keeps every post forever would grow without bound."""
    triggers = col.triggers
    if not triggers:
        return
    done = {
        tid
        for tid, t in triggers.items()
        if trigger_settled(t, col, unit, book.rule_sets, book.deadlines)
    }
    if done:
        col.triggers = {tid: t for tid, t in triggers.items() if tid not in done}
        col.slots = {sk: s for sk, s in col.slots.items() if sk[2] not in done}


def _unit_registered(b: _Batch, env: Envelope[Any], seq: int) -> None:
    p: iev.UnitRegistered = env.payload
    on = local_date(env.business_time)
    known = b.unit(p.code)
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
    b.units[p.code] = unit
    for code, meta in b.book.catalog.columns.items():
        _show_or_hide(b.column(p.code, code), unit, meta, on)


def _leadership_changed(b: _Batch, env: Envelope[Any], seq: int) -> None:
    p: iev.LeadershipDutiesChanged = env.payload
    unit = b.unit(p.unit)
    tid = f"leadership:{p.changed_on.isoformat()}:{env.event_id[:8]}"
    for code in b.book.leadership_columns:
        known = b.peek(p.unit, code)
        if known is not None and tid in known.triggers:
            continue
        col = b.column(p.unit, code)
        last = col.last_publication_on
        # Updated the same day the change was recorded: met at once.
        met = last if last is not None and last >= p.changed_on else None
        col.triggers = {**col.triggers, tid: Trigger(tid, "leadership", p.changed_on, met_on=met)}
        _settle(col, unit, b.book)


def _post_submitted(b: _Batch, env: Envelope[Any], seq: int) -> None:
    p: iev.PostSubmitted = env.payload
    post_id = env.aggregate_id
    if p.column not in b.book.catalog.columns or b.post(post_id) is not None:
        return
    col = b.column(p.unit, p.column)
    tid = f"post:{post_id}:1"
    col.triggers = {**col.triggers, tid: Trigger(tid, "post", p.information_date, post_id)}
    b.posts[post_id] = PostRef(p.unit, p.column, triggers=1, last_on=p.information_date)


def _post_revised(b: _Batch, env: Envelope[Any], seq: int) -> None:
    p: iev.PostRevised = env.payload
    post_id = env.aggregate_id
    ref = b.post(post_id)
    if ref is None or ref.withdrawn:
        return
    on = p.information_date
    if not ref.published:
        # Editing before publication buys no time: the deadline runs from the earliest date.
        tid = f"post:{post_id}:{ref.triggers}"
        known = b.peek(ref.unit, ref.column)
        t = known.triggers.get(tid) if known is not None else None
        if t is None or t.met_on is not None or on >= t.on:
            return
        col = b.column(ref.unit, ref.column)
        col.triggers = {**col.triggers, tid: replace(t, on=on)}
        b.posts[post_id] = replace(ref, last_on=on)
        return
    if ref.last_on is not None and on <= ref.last_on:
        return
    # The information changed after it went online: the change is due online in its turn.
    ref = replace(ref, triggers=ref.triggers + 1, last_on=on, published=False)
    tid = f"post:{post_id}:{ref.triggers}"
    col = b.column(ref.unit, ref.column)
    col.triggers = {**col.triggers, tid: Trigger(tid, "post", on, post_id)}
    b.posts[post_id] = ref


def _post_withdrawn(b: _Batch, env: Envelope[Any], seq: int) -> None:
    post_id = env.aggregate_id
    ref = b.post(post_id)
    if ref is None or ref.withdrawn:
        return
    col = b.column(ref.unit, ref.column)
    col.triggers = {
        tid: replace(t, withdrawn=True) if t.post_id == post_id and t.met_on is None else t
        for tid, t in col.triggers.items()
    }
    _settle(col, b.unit(ref.unit), b.book)
    b.posts[post_id] = replace(ref, withdrawn=True)


def _post_published(b: _Batch, env: Envelope[Any], seq: int) -> None:
    p: iev.PostPublished = env.payload
    d = local_date(p.online_at)
    catalog = b.book.catalog.columns
    col: _Draft | None = None
    unit = b.unit(p.unit)
    if p.column in catalog:
        col = b.column(p.unit, p.column)
        prev = col.live.get(p.publication_id)
        live = {**col.live, p.publication_id: p.online_at}
        col.live = live
        col.ever_published = True
        last = col.last_publication
        if last is None or p.online_at > last:
            col.last_publication, col.last_publication_on = p.online_at, d
        elif prev is not None and prev == last and p.online_at < prev:
            col.last_publication, col.last_publication_on = _latest(live)
        first = col.first_publication_by_year
        known = first.get(d.year)
        if known is None or d < known:
            col.first_publication_by_year = {**first, d.year: d}
        # An emptied column shows again once it has an item.
        _show_or_hide(col, unit, catalog[p.column], d)
        met = [
            tid
            for tid, t in col.triggers.items()
            if t.kind == "leadership" and t.met_on is None and d >= t.on
        ]
        if met:
            exempt = not col.visible
            triggers = dict(col.triggers)
            for tid in met:
                triggers[tid] = replace(triggers[tid], met_on=d, exempt=exempt)
            col.triggers = triggers
    ref = b.post(p.post_id) if p.post_id else None
    if ref is None or p.post_id is None:
        if col is not None:
            _settle(col, unit, b.book)
        return
    pcol = b.column(ref.unit, ref.column)
    met = [
        tid
        for tid, t in pcol.triggers.items()
        if t.post_id == p.post_id and t.met_on is None and not t.withdrawn
    ]
    if met:
        exempt = not pcol.visible
        triggers = dict(pcol.triggers)
        for tid in met:
            triggers[tid] = replace(
                triggers[tid], met_on=d, publication_id=p.publication_id, exempt=exempt
            )
        pcol.triggers = triggers
    # Settled once per column, after both: an obligation settling would have settled already
    # is met or withdrawn, so marking the post's obligations met never looks at it.
    if col is not None and col is not pcol:
        _settle(col, unit, b.book)
    _settle(pcol, b.unit(ref.unit), b.book)
    b.posts[p.post_id] = replace(ref, published=True)


def _publication_removed(b: _Batch, env: Envelope[Any], seq: int) -> None:
    p: iev.PublicationRemoved = env.payload
    known = b.peek(p.unit, p.column)
    if known is None or p.publication_id not in known.live:
        return
    col = b.column(p.unit, p.column)
    was = col.live[p.publication_id]
    live = {k: v for k, v in col.live.items() if k != p.publication_id}
    col.live = live
    if was == col.last_publication and live:
        col.last_publication, col.last_publication_on = _latest(live)
    unit = b.unit(p.unit)
    # The notice's note 2: removing every item of a column hides it on the public site.
    _show_or_hide(col, unit, b.book.catalog.columns[p.column], local_date(p.removed_at))
    _settle(col, unit, b.book)


def _decided(b: _Batch, env: Envelope[Any], seq: int) -> None:
    p = env.payload
    meta = b.book.catalog.columns.get(p.column)
    if meta is None:
        # A column of another catalog (rule sets are data and change): nothing to keep or
        # hide here.
        return
    col = b.column(p.unit, p.column)
    col.decision = Decision(
        keep=isinstance(p, fev.ColumnKept),
        reason=p.reason,
        actor=env.actor,
        at=env.business_time,
        event_id=env.event_id,
    )
    col.version = max(col.version, seq)
    _show_or_hide(col, b.unit(p.unit), meta, local_date(env.business_time))


def _ledger(b: _Batch, env: Envelope[Any], seq: int) -> None:
    p = env.payload
    col = b.column(p.unit, p.column)
    col.version = max(col.version, seq)
    sk = (p.rule_set, p.rule, subject_of(p.rule_kind, p.episode))
    slot = col.slots.get(sk)
    if isinstance(p, fev.ColumnRefreshed):
        if slot is None:
            slot = Slot(p.episode)
        if slot.key == p.episode:
            slot = replace(slot, stale_event=None, closed=p.episode)
        else:
            slot = replace(slot, closed=p.episode)
        col.slots = {**col.slots, sk: slot}
        _settle(col, b.unit(p.unit), b.book)
        return
    if slot is None:
        slot = Slot(p.episode)
    elif slot.key != p.episode:
        if slot.closed == p.episode:
            return  # a late copy of an episode already closed
        slot = replace(slot, key=p.episode, due_soon=False, stale_event=None)
    if isinstance(p, fev.ColumnDueSoon):
        slot = replace(slot, due_soon=True)
    elif slot.closed != p.episode:
        slot = replace(slot, stale_event=env.event_id, due=p.due_date, post_id=p.post_id)
    col.slots = {**col.slots, sk: slot}


_HANDLERS: dict[type[Any], Callable[[_Batch, Envelope[Any], int], None]] = {
    iev.UnitRegistered: _unit_registered,
    iev.LeadershipDutiesChanged: _leadership_changed,
    iev.PostSubmitted: _post_submitted,
    iev.PostRevised: _post_revised,
    iev.PostWithdrawn: _post_withdrawn,
    iev.PostPublished: _post_published,
    iev.PublicationRemoved: _publication_removed,
    fev.ColumnHidden: _decided,
    fev.ColumnKept: _decided,
    fev.ColumnDueSoon: _ledger,
    fev.ColumnStale: _ledger,
    fev.ColumnRefreshed: _ledger,
}


def _latest(live: Mapping[str, datetime]) -> tuple[datetime, date]:
    latest = max(live.values())
    return latest, local_date(latest)


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
    return out
