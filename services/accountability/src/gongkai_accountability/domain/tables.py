"""The read model's tables and their typed rows.

Each typed row is a frozen dataclass: the fold builds a new one (``dataclasses.replace``)
where it changed a dict in place, so a row handed out is never changed under its reader (the
kept days hold rows without copying them). ``encode`` writes exactly the JSON object the
untyped rows were (the same keys, absent where they were absent), so stored rows, the
projection's digest and HTTP bodies stay byte for byte what they were.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gongkai_accountability.domain.responsibility import Person
from gongkai_accountability.domain.rows import NAMES, MemoryRows, Row, Table, plain


@dataclass(frozen=True, slots=True)
class Alert:
    """An event in the log that failed a trust check and was never applied (``IntegrityAlert``)."""

    #: The stream sequence of the event refused.
    sequence: int
    subject: str
    #: Which check failed (unsigned, unknown_key, ..., authority).
    check: str
    detail: str
    claimed_event_id: str | None
    claimed_type: str | None
    #: The IntegrityAlert's own event.
    event_id: str
    recorded_at: str

    def encode(self) -> Row:
        return {
            "sequence": self.sequence,
            "subject": self.subject,
            "check": self.check,
            # The tag column lists filter on (``kind``): the check.
            "kind": self.check,
            "detail": self.detail,
            "claimed_event_id": self.claimed_event_id,
            "claimed_type": self.claimed_type,
            "event_id": self.event_id,
            "recorded_at": self.recorded_at,
        }

    @classmethod
    def decode(cls, row: Row) -> Alert:
        return cls(
            row["sequence"], row["subject"], row["check"], row["detail"],
            row.get("claimed_event_id"), row.get("claimed_type"), row["event_id"],
            row["recorded_at"],
        )


@dataclass(frozen=True, slots=True)
class FindingAnswer:
    """How a finding was answered: resolved by the unit (``how``, with the revision or
    removal as ``evidence``) or confirmed by the office (``by``, with its ``note``)."""

    #: The FindingResolved or FindingConfirmed.
    event_id: str
    how: str | None = None
    evidence: tuple[str, ...] = ()
    note: str | None = None
    by: Person | None = None

    def encode(self) -> Row:
        if self.by is None:
            return {"how": self.how, "evidence": list(self.evidence), "event_id": self.event_id}
        return {"note": self.note, "event_id": self.event_id, "by": self.by.as_row()}

    @classmethod
    def decode(cls, row: Row) -> FindingAnswer:
        if "by" in row:
            return cls(row["event_id"], note=row.get("note"), by=Person.of(row["by"]))
        return cls(row["event_id"], how=row["how"], evidence=tuple(row["evidence"]))


@dataclass(frozen=True, slots=True)
class Finding:
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

    def encode(self) -> Row:
        return {
            "finding_id": self.finding_id,
            "unit": self.unit,
            "kind": self.kind,
            "post_id": self.post_id,
            "publication_id": self.publication_id,
            "column": self.column,
            "description": self.description,
            "evidence": list(self.evidence),
            "reported_on": self.reported_on,
            "reported_by": self.reported_by.as_row(),
            "event_id": self.event_id,
            "status": self.status,
            "answer": self.answer.encode() if self.answer is not None else None,
        }

    @classmethod
    def decode(cls, row: Row) -> Finding:
        answer = row["answer"]
        return cls(
            finding_id=row["finding_id"],
            unit=row["unit"],
            kind=row["kind"],
            post_id=row["post_id"],
            publication_id=row["publication_id"],
            column=row["column"],
            description=row["description"],
            evidence=tuple(row["evidence"]),
            reported_on=row["reported_on"],
            reported_by=Person.of(row["reported_by"]),
            event_id=row["event_id"],
            status=row["status"],
            answer=FindingAnswer.decode(answer) if answer is not None else None,
        )


@dataclass(frozen=True, slots=True)
class Notice:
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
    correlation_id: str | None = None
    by: Person | None = None

    def encode(self) -> Row:
        out: Row = {
            "event_id": self.event_id,
            "issued_on": self.issued_on,
            "deadline": self.deadline,
            "working_days": self.working_days,
            "provisional": self.provisional,
            "automatic": self.automatic,
        }
        if self.correlation_id is not None:
            out["correlation_id"] = self.correlation_id
        if self.by is not None:
            out["by"] = self.by.as_row()
        return out

    @classmethod
    def decode(cls, row: Row) -> Notice:
        by = row.get("by")
        return cls(
            row["event_id"], row["issued_on"], row["deadline"], row["working_days"],
            row["provisional"], row["automatic"], row.get("correlation_id"),
            Person.of(by) if by is not None else None,
        )


@dataclass(frozen=True, slots=True)
class Closed:
    """How a case ended (``SupervisionClosed``)."""

    event_id: str
    #: before_notice, within_deadline or after_deadline.
    outcome: str
    #: ISO date (Asia/Shanghai).
    closed_on: str

    def encode(self) -> Row:
        return {"event_id": self.event_id, "outcome": self.outcome, "closed_on": self.closed_on}

    @classmethod
    def decode(cls, row: Row) -> Closed:
        return cls(row["event_id"], row["outcome"], row["closed_on"])


@dataclass(frozen=True, slots=True)
class Case:
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
    #: The latest ColumnStale's (event id, correlation id): the automatic notice's cause.
    #: None in rows written before causes were kept.
    cause: tuple[str, str] | None = None
    notice: Notice | None = None
    #: The violation recorded for it (stale after supervision): a case is breached once.
    breach: str | None = None
    closed: Closed | None = None
    #: The ColumnRefreshed events seen while it was open (None: none yet).
    refreshed: tuple[str, ...] | None = None
    #: Every episode refreshed: the day the column was put right, its SupervisionClosed still
    #: to be recorded (None: not yet).
    closing: str | None = None

    def encode(self) -> Row:
        out: Row = {
            "case_id": self.case_id,
            "unit": self.unit,
            "column": self.column,
            "status": self.status,
            "opened_on": self.opened_on,
            "stale_event_ids": list(self.stale_event_ids),
            "notice": self.notice.encode() if self.notice is not None else None,
            "breach": self.breach,
            "closed": self.closed.encode() if self.closed is not None else None,
        }
        if self.cause is not None:
            out["cause"] = list(self.cause)
        if self.refreshed is not None:
            out["refreshed"] = list(self.refreshed)
        if self.closing is not None:
            out["closing"] = self.closing
        return out

    @classmethod
    def decode(cls, row: Row) -> Case:
        notice, closed = row["notice"], row["closed"]
        cause, refreshed = row.get("cause"), row.get("refreshed")
        return cls(
            case_id=row["case_id"],
            unit=row["unit"],
            column=row["column"],
            status=row["status"],
            opened_on=row["opened_on"],
            stale_event_ids=tuple(row["stale_event_ids"]),
            cause=(cause[0], cause[1]) if cause else None,
            notice=Notice.decode(notice) if notice is not None else None,
            breach=row.get("breach"),
            closed=Closed.decode(closed) if closed is not None else None,
            refreshed=tuple(refreshed) if refreshed is not None else None,
            closing=row.get("closing"),
        )


@dataclass(frozen=True, slots=True)
class Rectified:
    """整改: how and when the lapse was put right (``ViolationRectified``)."""

    how: str
    #: ISO timestamp, as the event gave it.
    at: str
    event_id: str

    def encode(self) -> Row:
        return {"how": self.how, "at": self.at, "event_id": self.event_id}

    @classmethod
    def decode(cls, row: Row) -> Rectified:
        return cls(row["how"], row["at"], row["event_id"])


@dataclass(frozen=True, slots=True)
class Violation:
    """A lapse of section 5 on record (``ViolationRecorded``), with its rectification."""

    violation_id: str
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
    #: The ViolationRecorded.
    event_id: str
    recorded_at: str
    rectified: Rectified | None = None

    def encode(self) -> Row:
        return {
            "kind": self.kind,
            "unit": self.unit,
            "responsible": [p.as_row() for p in self.responsible],
            "evidence": list(self.evidence),
            "severity": self.severity,
            "occurred_at": self.occurred_at,
            "summary": self.summary,
            "column": self.column,
            "post_id": self.post_id,
            "publication_id": self.publication_id,
            "case_id": self.case_id,
            "finding_id": self.finding_id,
            "violation_id": self.violation_id,
            "event_id": self.event_id,
            "recorded_at": self.recorded_at,
            "rectified": self.rectified.encode() if self.rectified is not None else None,
        }

    @classmethod
    def decode(cls, row: Row) -> Violation:
        rectified = row["rectified"]
        return cls(
            violation_id=row["violation_id"],
            kind=row["kind"],
            unit=row["unit"],
            responsible=tuple(Person.of(r) for r in row["responsible"]),
            evidence=tuple(row["evidence"]),
            severity=row["severity"],
            occurred_at=row["occurred_at"],
            summary=row["summary"],
            column=row["column"],
            post_id=row["post_id"],
            publication_id=row["publication_id"],
            case_id=row["case_id"],
            finding_id=row["finding_id"],
            event_id=row["event_id"],
            recorded_at=row["recorded_at"],
            rectified=Rectified.decode(rectified) if rectified is not None else None,
        )


@dataclass(frozen=True, slots=True)
class Todo:
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
    cause: tuple[str, str] | None = None

    def encode(self) -> Row:
        out: Row = {
            "unit": self.unit,
            "event": self.event,
            "aggregate_id": self.aggregate_id,
            "payload": self.payload,
        }
        if self.cause is not None:
            out["cause"] = list(self.cause)
        return out

    @classmethod
    def decode(cls, row: Row) -> Todo:
        cause = row.get("cause")
        return cls(
            row["unit"], row["event"], row["aggregate_id"], row["payload"],
            (cause[0], cause[1]) if cause else None,
        )


@dataclass(frozen=True, slots=True)
class Episode:
    """A stale episode of a column still open (``ColumnStale`` not yet refreshed)."""

    event_id: str
    #: ISO dates (Asia/Shanghai): the due date missed, the day it went stale.
    due_date: str
    rule_kind: str
    rule: str
    rule_set: str
    post_id: str | None
    since: str

    def encode(self) -> Row:
        return {
            "event_id": self.event_id,
            "due_date": self.due_date,
            "rule_kind": self.rule_kind,
            "rule": self.rule,
            "rule_set": self.rule_set,
            "post_id": self.post_id,
            "since": self.since,
        }

    @classmethod
    def decode(cls, row: Row) -> Episode:
        return cls(
            row["event_id"], row["due_date"], row["rule_kind"], row["rule"], row["rule_set"],
            row["post_id"], row["since"],
        )


@dataclass(frozen=True, slots=True)
class PastEpisode:
    """A stale episode before the unit joined (``ColumnWasStale``, imported history): stale
    from the day after ``due_date`` until, not including, ``until`` (ISO dates)."""

    due_date: str
    until: str
    rule_set: str
    rule: str

    def encode(self) -> Row:
        return {
            "due_date": self.due_date, "until": self.until, "rule_set": self.rule_set,
            "rule": self.rule,
        }

    @classmethod
    def decode(cls, row: Row) -> PastEpisode:
        return cls(row["due_date"], row["until"], row["rule_set"], row["rule"])


@dataclass(frozen=True, slots=True)
class Decision:
    """Attachment 2's tick for the column: kept (✓) or hidden (×), by whom, when, why."""

    keep: bool
    by: Person
    #: ISO timestamp.
    at: str
    reason: str | None

    def encode(self) -> Row:
        return {"keep": self.keep, "by": self.by.as_row(), "at": self.at, "reason": self.reason}

    @classmethod
    def decode(cls, row: Row) -> Decision:
        return cls(row["keep"], Person.of(row["by"]), row["at"], row["reason"])


@dataclass(frozen=True, slots=True)
class Column:
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
    history: Mapping[str, PastEpisode] | None = None
    decision: Decision | None = None

    def encode(self) -> Row:
        out: Row = {
            "unit": self.unit,
            "column": self.column,
            "open": {k: e.encode() for k, e in self.open.items()},
            "case": self.case,
            "cases": self.cases,
            "hidden": self.hidden,
            "late": self.late,
        }
        if self.history is not None:
            out["history"] = {k: e.encode() for k, e in self.history.items()}
        if self.decision is not None:
            out["decision"] = self.decision.encode()
        return out

    @classmethod
    def decode(cls, row: Row) -> Column:
        history, decision = row.get("history"), row.get("decision")
        return cls(
            unit=row["unit"],
            column=row["column"],
            open={k: Episode.decode(e) for k, e in row["open"].items()},
            case=row["case"],
            cases=row["cases"],
            hidden=row["hidden"],
            late=row["late"],
            history=None
            if history is None
            else {k: PastEpisode.decode(e) for k, e in history.items()},
            decision=Decision.decode(decision) if decision is not None else None,
        )


#: A role granted or revoked, by business time: (ISO time, role, person, granted).
Grant = tuple[str, str, str, bool]


@dataclass(frozen=True, slots=True)
class Unit:
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
    registered_at: str | None = None
    kind: str | None = None
    #: {"name": ..., "mobile": ...}.
    contact: Mapping[str, str] | None = None
    #: Every grant and revocation in log order (None: none yet).
    history: tuple[Grant, ...] | None = None
    #: ISO date of its earliest imported publication (None: no history imported).
    history_from: str | None = None

    def encode(self) -> Row:
        out: Row = {
            "code": self.code,
            "name": self.name,
            "roles": {r: list(people) for r, people in self.roles.items()},
            "names": self.names,
        }
        if self.registered_at is not None:
            out["registered_at"] = self.registered_at
        if self.kind is not None:
            out["kind"] = self.kind
        if self.contact is not None:
            out["contact"] = dict(self.contact)
        if self.history is not None:
            out["history"] = [list(g) for g in self.history]
        if self.history_from is not None:
            out["history_from"] = self.history_from
        return out

    @classmethod
    def decode(cls, row: Row) -> Unit:
        history = row.get("history")
        return cls(
            code=row["code"],
            name=row["name"],
            roles={r: tuple(people) for r, people in row["roles"].items()},
            names=row["names"],
            registered_at=row.get("registered_at"),
            kind=row.get("kind"),
            contact=row.get("contact"),
            history=None if history is None else tuple((a, r, p, g) for a, r, p, g in history),
            history_from=row.get("history_from"),
        )

    @classmethod
    def unknown(cls, code: str) -> Unit:
        """A unit no event has named yet."""
        return cls(code=code, name=code, roles={}, names={})


POST = plain("post")
PUBLICATION = plain("publication")
UNIT: Table[Unit] = Table("unit", Unit.encode, Unit.decode)
COLUMN: Table[Column] = Table("column", Column.encode, Column.decode)
CASE: Table[Case] = Table("case", Case.encode, Case.decode)
FINDING: Table[Finding] = Table("finding", Finding.encode, Finding.decode)
VIOLATION: Table[Violation] = Table("violation", Violation.encode, Violation.decode)
TODO: Table[Todo] = Table("todo", Todo.encode, Todo.decode)
ALERT: Table[Alert] = Table("alert", Alert.encode, Alert.decode)

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
