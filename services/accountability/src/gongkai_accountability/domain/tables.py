"""The read model's tables and their typed rows.

Each typed row is a frozen dataclass: the fold builds a new one (``dataclasses.replace``)
where it changed a dict in place, so a row handed out is never changed under its reader (the
kept days hold rows without copying them). How a row is stored is read off its fields
(``domain.codec``): the JSON object is exactly what the untyped rows were (the same keys in the
same order, absent where they were absent), so stored rows, the projection's digest and HTTP
bodies stay byte for byte what they were. A field's place in its class is its key's place in
the object; ``ADDED`` marks a key older rows lack.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from gongkai.calendar import local_date
from gongkai_accountability.domain.codec import (
    ADDED,
    REST,
    Stored,
    also,
    codec,
    is_array,
    same_as,
)
from gongkai_accountability.domain.responsibility import Person
from gongkai_accountability.domain.rows import NAMES, MemoryRows, R, Row, Table


@dataclass(frozen=True, slots=True)
class Alert(Stored):
    """An event in the log that failed a trust check and was never applied (``IntegrityAlert``)."""

    #: The stream sequence of the event refused.
    sequence: int
    subject: str
    #: Which check failed (unsigned, unknown_key, ..., authority); stored as ``kind`` too,
    #: the tag column lists filter on.
    check: str = field(metadata=also("kind"))
    detail: str
    claimed_event_id: str | None
    claimed_type: str | None
    #: The IntegrityAlert's own event.
    event_id: str
    recorded_at: str


@dataclass(frozen=True, slots=True)
class Resolution(Stored):
    """A finding the unit resolved (``FindingResolved``): ``how``, with the revision or
    removal as ``evidence``."""

    how: str
    evidence: tuple[str, ...]
    event_id: str


@dataclass(frozen=True, slots=True)
class Confirmation(Stored):
    """A finding the office confirmed (``FindingConfirmed``): ``by`` whom, with its ``note``."""

    note: str | None
    event_id: str
    by: Person


#: How a finding was answered (a stored answer with ``by`` is a confirmation).
FindingAnswer = Resolution | Confirmation


@dataclass(frozen=True, slots=True)
class Finding(Stored):
    """读网纠错: an error the office found reading the site, and its answer."""

    finding_id: str
    unit: str
    #: What was wrong (typo, false, privacy_leak, ...).
    kind: str
    post_id: str | None
    publication_id: str | None
    column: str | None
    description: str
    evidence: tuple[str, ...]
    #: ISO date (Asia/Shanghai).
    reported_on: str
    reported_by: Person
    #: The FindingReported.
    event_id: str
    #: reported, resolved or confirmed.
    status: str = "reported"
    answer: FindingAnswer | None = None


@dataclass(frozen=True, slots=True)
class Notice(Stored):
    """The supervision notice (督办通知) a case got: its deadline in working days."""

    #: The SupervisionIssued.
    event_id: str
    #: ISO dates (Asia/Shanghai).
    issued_on: str
    deadline: str
    working_days: int
    provisional: bool
    automatic: bool
    #: Absent from notices kept before they were recorded.
    correlation_id: str | None = field(default=None, metadata=ADDED)
    by: Person | None = field(default=None, metadata=ADDED)


@dataclass(frozen=True, slots=True)
class Closed(Stored):
    """How a case ended (``SupervisionClosed``)."""

    event_id: str
    #: before_notice, within_deadline or after_deadline.
    outcome: str
    #: ISO date (Asia/Shanghai).
    closed_on: str


@dataclass(frozen=True, slots=True)
class Case(Stored):
    """督办: a supervision case, opened when a column went stale."""

    case_id: str
    unit: str
    column: str
    #: open, issued or closed.
    status: str
    #: ISO date (Asia/Shanghai).
    opened_on: str
    #: The ColumnStale events of the case, in log order.
    stale_event_ids: tuple[str, ...]
    notice: Notice | None = None
    #: The violation recorded for it (stale after supervision): a case is breached once.
    breach: str | None = None
    closed: Closed | None = None
    #: The latest ColumnStale's (event id, correlation id): the automatic notice's cause.
    #: None in rows written before causes were kept.
    cause: tuple[str, str] | None = field(default=None, metadata=ADDED)
    #: The ColumnRefreshed events seen while it was open (None: none yet).
    refreshed: tuple[str, ...] | None = field(default=None, metadata=ADDED)
    #: Every episode refreshed: the day the column was put right, its SupervisionClosed still
    #: to be recorded (None: not yet).
    closing: str | None = field(default=None, metadata=ADDED)


@dataclass(frozen=True, slots=True)
class Rectified(Stored):
    """整改: how and when the lapse was put right (``ViolationRectified``)."""

    how: str
    #: ISO timestamp, as the event gave it.
    at: str
    event_id: str


@dataclass(frozen=True, slots=True)
class Violation(Stored):
    """A lapse of section 5 on record (``ViolationRecorded``), with its rectification."""

    kind: str
    unit: str
    responsible: tuple[Person, ...]
    evidence: tuple[str, ...]
    #: minor or serious.
    severity: str
    #: ISO timestamps: the lapse's business time as the event's JSON gives it, and when
    #: accountability recorded it.
    occurred_at: str
    summary: str
    column: str | None
    post_id: str | None
    publication_id: str | None
    case_id: str | None
    finding_id: str | None
    violation_id: str
    #: The ViolationRecorded.
    event_id: str
    recorded_at: str
    rectified: Rectified | None = None

    @property
    def occurred(self) -> datetime:
        """``occurred_at`` as an instant: what lists are ordered by. The string is as each
        rule wrote it (UTC, or +08:00 for the end of a day in China, or a publisher's own
        offset), so two of them do not compare as text."""
        return datetime.fromisoformat(self.occurred_at)

    @property
    def day(self) -> str:
        """The ISO date (Asia/Shanghai) the lapse occurred on: the day a period or a filter
        counts it in, whatever offset ``occurred_at`` was written with."""
        return day_of(self.occurred_at)


def day_of(timestamp: str) -> str:
    """The ISO date in China (Asia/Shanghai) of an ISO timestamp with any offset."""
    return local_date(datetime.fromisoformat(timestamp)).isoformat()


@dataclass(frozen=True, slots=True)
class Todo(Stored):
    """An obligation (``pending.Pending``) as the ``todo`` table keeps it, under the command
    id that will discharge it: the event owed, its payload as plain JSON (dates and times in
    ISO form with their offsets)."""

    #: The unit it concerns ("" for an integrity alert): the row's filter column.
    unit: str
    #: The event type owed.
    event: str
    aggregate_id: str
    payload: Row
    #: The (event id, correlation id) whose fold found it; None in rows written before
    #: causes were kept.
    cause: tuple[str, str] | None = field(default=None, metadata=ADDED)


@dataclass(frozen=True, slots=True)
class Episode(Stored):
    """A stale episode of a column still open (``ColumnStale`` not yet refreshed)."""

    event_id: str
    #: ISO dates (Asia/Shanghai): the due date missed, the day it went stale.
    due_date: str
    rule_kind: str
    rule: str
    rule_set: str
    post_id: str | None
    since: str


@dataclass(frozen=True, slots=True)
class PastEpisode(Stored):
    """A stale episode before the unit joined (``ColumnWasStale``, imported history): stale
    from the day after ``due_date`` until, not including, ``until`` (ISO dates)."""

    due_date: str
    until: str
    rule_set: str
    rule: str


@dataclass(frozen=True, slots=True)
class Decision(Stored):
    """Attachment 2's tick for the column: kept (✓) or hidden (×), by whom, when, why."""

    keep: bool
    by: Person
    #: ISO timestamp.
    at: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class Column(Stored):
    """A column of a unit's section: its open stale episodes, its supervision case, whether
    it is hidden. The mappings are never changed in place: the fold builds new ones."""

    unit: str
    column: str
    #: "rule_set/rule/episode" -> the episode.
    open: Mapping[str, Episode]
    #: The open supervision case (None: none).
    case: str | None
    #: How many cases the column has had: the next case's number.
    cases: int
    hidden: bool
    #: Kept as the rows always had it (empty).
    late: Row
    #: "rule_set/rule/due date" -> an episode of imported history (None: none).
    history: Mapping[str, PastEpisode] | None = field(default=None, metadata=ADDED)
    decision: Decision | None = field(default=None, metadata=ADDED)

#: A role granted or revoked, by business time: (ISO time, role, person, granted).
Grant = tuple[str, str, str, bool]


@dataclass(frozen=True, slots=True)
class Unit(Stored):
    """A unit of the directory (维护单位): who holds which role now and since when, its kind and
    disclosure contact (Attachment 2's header)."""

    code: str
    name: str
    #: role -> the people holding it now, sorted.
    roles: Mapping[str, tuple[str, ...]]
    #: Kept as the rows always had it (empty).
    names: Row
    #: ISO timestamp of its first UnitRegistered (None: not registered, known by its roles or
    #: its history only).
    registered_at: str | None = field(default=None, metadata=ADDED)
    kind: str | None = field(default=None, metadata=ADDED)
    #: {"name": ..., "mobile": ...}.
    contact: Mapping[str, str] | None = field(default=None, metadata=ADDED)
    #: Every grant and revocation in log order (None: none yet).
    history: tuple[Grant, ...] | None = field(default=None, metadata=ADDED)
    #: ISO date of its earliest imported publication (None: no history imported).
    history_from: str | None = field(default=None, metadata=ADDED)

    @classmethod
    def unknown(cls, code: str) -> Unit:
        """A unit no event has named yet."""
        return cls(code=code, name=code, roles={}, names={})


class _Said:
    """What a step says besides, by key: each key of ``Step.detail`` a reader uses, read as an
    attribute named as the key (None where the step does not say). The annotations give mypy
    each key's type; one property a key, installed below, reads it."""

    __slots__ = ()

    #: The content's digest it was about.
    digest: str | None
    #: A signature's decision: agree or disagree.
    decision: str | None
    #: A signature's opinion.
    opinion: str | None
    #: The review chain of a signature or conclusion.
    chain: int | None
    #: Who signed (a signature).
    signer: str | None
    #: The publication it was about.
    publication_id: str | None
    #: Where the item is online.
    url: str | None
    #: When the item went online (ISO timestamp).
    online_at: str | None
    #: Screening asked for the secrecy body's review (a submission).
    needs_secrecy_review: bool | None
    #: Why (a withdrawal, a rejection, a removal).
    reason: str | None
    #: The finding it was about.
    finding_id: str | None
    #: The violation it was about.
    violation_id: str | None
    #: A finding's or violation's kind.
    kind: str | None


def _reads(key: str) -> property:
    return property(lambda step: step.detail.get(key))


for _key in _Said.__annotations__:
    setattr(_Said, _key, _reads(_key))


@dataclass(frozen=True, slots=True)
class Step(Stored, _Said):
    """One line of a chain of custody (谁制作谁审核谁公开谁负责): who did what, when, on which
    content. What a step says besides is its ``detail``, flattened into the stored object after
    its own keys in the order the step was written with (a submission's digest, version,
    title, ...; a signature's digest, decision, opinion, chain, signer, ...; a removal's
    publication_id, reason, removed_at), absent where it says nothing: each kind of step keeps
    its keys and their order whatever other kinds there are. The details readers use are
    attributes named as their keys (None where the step does not say).
    """

    #: The event's stream sequence.
    seq: int
    event_id: str
    #: submitted, revised, withdrawn, signed:<stage>, review:<outcome>, published, imported,
    #: removed, finding, violation.
    what: str
    #: ISO timestamps: business time, and when it was recorded (SQL keeps null for the
    #: business time again: most steps were recorded as they happened).
    at: str
    recorded_at: str = field(metadata=same_as("at"))
    person: str
    role: str
    unit: str
    #: What the step says besides (never None values), read only: the fold builds a new one.
    detail: Mapping[str, Any] = field(metadata=REST)

    #: SQL keeps a step as an array (``codec``): a post's trail repeats its keys.
    ARRAY: ClassVar[bool] = True

    @property
    def actor(self) -> Person:
        """Who took the step, as a verdict names them."""
        return Person(self.person, self.role, self.unit)


@dataclass(frozen=True, slots=True)
class Form(Stored):
    """Attachment 1's boxes as the maker ticked them (the printed form shows them)."""

    #: produced or reprinted, and the source of a reprint.
    origin: str
    source: str | None
    #: website, on_request or other.
    channel: str
    maker_unsure: bool
    #: ISO date.
    information_date: str

    #: SQL keeps it as an array (``codec``), as a step.
    ARRAY: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class Post(Stored):
    """A post and its chain of custody: its current content, the approvals that stand for
    it, its publications and every step of its trail.

    The keys a post gains on the way (``makers`` ... ``findings``) are absent until then; they
    are written in this order whatever order its history gave them (rows are stored with
    their keys sorted, so only a folded row's printed order can differ from before).
    """

    post_id: str
    unit: str
    column: str
    #: As the read model may show it: screened personal data masked.
    title: str
    important_kind: str | None
    form: Form
    maker: Person
    #: The current content's digest and version.
    digest: str
    version: int
    #: The digests screening flagged (secrets, personal data).
    flagged_digests: tuple[str, ...]
    #: chain -> the digest its approval stands for.
    approved: Mapping[str, str]
    #: The principal leaders who agreed to it, in order.
    leader_signers: tuple[str, ...]
    publications: tuple[str, ...]
    withdrawn: bool
    trail: tuple[Step, ...]
    #: Everyone who made a version of it (None: only its maker, no revision yet).
    makers: tuple[str, ...] | None = field(default=None, metadata=ADDED)
    #: The chains a signature without authority claimed to belong to: they approve nothing.
    tainted_chains: tuple[int, ...] | None = field(default=None, metadata=ADDED)
    #: chain -> the digest a believed leader agreed to: what an approval may stand on.
    agreed: Mapping[str, str] | None = field(default=None, metadata=ADDED)
    #: Who answered for it when it first went online (None: not online yet).
    published_responsible: tuple[Person, ...] | None = field(default=None, metadata=ADDED)
    #: The findings reported about it.
    findings: tuple[str, ...] | None = field(default=None, metadata=ADDED)

    def made_by(self) -> tuple[str, ...]:
        """Everyone who made a version of it: none of them may approve it."""
        return self.makers if self.makers is not None else (self.maker.person,)


@dataclass(frozen=True, slots=True)
class Publication(Stored):
    """An item online (``PostPublished``) or of the site's history (``PublicationImported``),
    with its trail: online, findings, removal."""

    publication_id: str
    #: The post it publishes (None: an item with no post, or imported history).
    post_id: str | None
    unit: str
    column: str
    #: The content's digest (None: history imported without one).
    digest: str | None
    #: ISO timestamp, as the event gave it.
    online_at: str
    #: Imported history only: its title, address, and that it was imported.
    title: str | None = field(default=None, metadata=ADDED)
    url: str | None = field(default=None, metadata=ADDED)
    imported: bool | None = field(default=None, metadata=ADDED)
    _: KW_ONLY
    removed: bool
    #: Its PostPublished or PublicationImported.
    event_id: str
    trail: tuple[Step, ...]
    #: The violation recorded for publishing it without review.
    unreviewed_violation: str | None = field(default=None, metadata=ADDED)
    #: The findings reported about it.
    findings: tuple[str, ...] | None = field(default=None, metadata=ADDED)


def typed(name: str, row: type[R]) -> Table[R]:
    """A table whose rows are ``row`` objects, read and stored by the row class's codec (a
    row is an object in SQL too: its unit and tag columns are read off its keys)."""
    c = codec(row)
    if is_array(row):
        raise TypeError(f"{row.__name__}: a table's rows are objects")
    return Table(name, c.encode, c.decode, c.store, c.load)


POST = typed("post", Post)
PUBLICATION = typed("publication", Publication)
UNIT = typed("unit", Unit)
COLUMN = typed("column", Column)
CASE = typed("case", Case)
FINDING = typed("finding", Finding)
VIOLATION = typed("violation", Violation)
TODO = typed("todo", Todo)
ALERT = typed("alert", Alert)

#: Every table of the read model, in ``rows.NAMES``' order.
ALL: tuple[Table[Any], ...] = (
    POST, PUBLICATION, UNIT, COLUMN, CASE, FINDING, VIOLATION, TODO, ALERT
)
assert tuple(ALL) == NAMES
#: A table by its name (a caller may name it with a plain string).
BY_NAME: dict[str, Table[Any]] = {str(t): t for t in ALL}


def as_json(rows: MemoryRows) -> dict[str, dict[str, Row]]:
    """Every table's rows as the JSON objects SQL keeps (``Table.encode_row``): what a digest
    or a comparison of two folds reads."""
    return {
        name: {k: BY_NAME[name].encode_row(r) for k, r in found.items()}
        for name, found in rows.tables.items()
    }
