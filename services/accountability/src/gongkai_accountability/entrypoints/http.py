"""HTTP routes: read the chain of custody, cases, findings and violations; the office's
commands (a supervision notice by hand, a finding, its confirmation, a violation rectified by
hand).

What can carry a post's text (its trail, findings, violations) is read as it is written: by the
unit's people and the county office only (``gongkai.access``). A record of another unit is
refused with 403 before anything of it is shown; a list names only the caller's units' records,
and a filter on another unit is refused. The read model keeps screened personal data masked.
"""

# No `from __future__ import annotations`: FastAPI must resolve the route-local aliases.
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Header, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gongkai import access
from gongkai.calendar import local_date
from gongkai.decider import Refusal, handle
from gongkai.directory import Principal, bearer_auth
from gongkai.eventlog import RecordedEvent
from gongkai.events import Actor, Envelope, Id
from gongkai.events.contracts.accountability import (
    FindingKind,
    FindingReported,
    ViolationKind,
)
from gongkai.identifiers import is_token
from gongkai.runtime.http import PathId, Problem, QueryId, invalid_identifier
from gongkai.runtime.idempotency import IdempotencyStore
from gongkai_accountability.domain import finding as finding_rules
from gongkai_accountability.domain import supervision as supervision_rules
from gongkai_accountability.domain import tables
from gongkai_accountability.domain import violation as violation_rules
from gongkai_accountability.domain.decide import case_cause, supervision_notice
from gongkai_accountability.domain.fold import short_id
from gongkai_accountability.domain.report import as_of_view, unit_reports
from gongkai_accountability.domain.rows import R, Table

if TYPE_CHECKING:
    from gongkai_accountability.service import AccountabilityService


class IssueSupervision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit: Id
    column: Id
    working_days: int | None = Field(None, ge=1, le=60)
    note: str | None = Field(None, max_length=2000)


class ReportFinding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    post_id: Id | None = None
    publication_id: Id | None = None
    kind: FindingKind
    description: str = Field(min_length=1, max_length=2000)
    evidence: list[str] = Field(default_factory=list, max_length=20)


class ConfirmFinding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=2000)


class RectifyViolation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: Why the office holds the lapse put right: recorded as the event's ``note``.
    reason: str = Field(min_length=1, max_length=2000)
    #: What shows it (a URL, a document number, an event id); free text, as for findings.
    evidence: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("a reason is required")
        return v

    @field_validator("evidence")
    @classmethod
    def _evidence_items(cls, v: list[str]) -> list[str]:
        if any(not e.strip() or len(e) > 500 for e in v):
            raise ValueError("each item is 1-500 characters")
        return v


class TrailStep(BaseModel):
    """One line of a chain of custody; a step has the fields of what it records besides
    (``decision``, ``opinion``, ``digest``, ``publication_id``, ``reason``, ...)."""

    model_config = ConfigDict(extra="allow")

    seq: int = Field(description="the event's stream sequence")
    event_id: str
    what: str = Field(description="submitted, revised, withdrawn, signed:<stage>, "
                      "review:<outcome>, published, removed, finding, violation")
    at: str = Field(description="business time (UTC, ISO 8601)")
    recorded_at: str
    person: str
    role: str
    unit: str


class PostTrail(BaseModel):
    """A post as the fold keeps it: what ``gongkai audit trail POST --json`` prints."""

    model_config = ConfigDict(extra="allow")

    post_id: str
    unit: str
    column: str
    title: str
    maker: dict[str, str]
    digest: str
    withdrawn: bool
    publications: list[str]
    trail: list[TrailStep]


class VerifyProblem(BaseModel):
    sequence: int
    problem: str


class VerifyReport(BaseModel):
    """What ``gongkai audit verify`` reports, as data."""

    events: int = Field(description="the log's length when it was read")
    root: str = Field(description="the Merkle root of the whole log (RFC 9162, base64)")
    checkpoints: int = Field(description="signed checkpoints found and checked")
    covered: int = Field(description="events 1..covered checked against the checkpoints")
    signed: int = Field(description="events after the last checkpoint checked by signature")
    rejected: list[int] = Field(description="sequences a trust check refused (never applied)")
    problems: list[VerifyProblem]
    first_difference: int | None = Field(description="the first sequence that differs")
    verified: bool


def _office(caller: Principal) -> Actor:
    """The county office supervises and reads the site; nobody else may."""
    for unit, role in sorted(caller.roles):
        if role == "office":
            return Actor(person=caller.person_id, role="office", unit=unit)
    raise Problem(403, "Forbidden", "only the county office may do this")


def build_router(svc: "AccountabilityService") -> APIRouter:
    router = APIRouter(tags=["accountability"])
    Caller = Annotated[Principal, Depends(bearer_auth(lambda: svc.directory))]
    KeyHeader = Annotated[str | None, Header(alias="Idempotency-Key")]

    def known(table: Table[R], key: str, what: str) -> R:
        row = svc.model.get(table, key)
        if row is None:
            raise Problem(404, "Not found", f"no {what} {key!r}")
        return row

    # Routes answer with the rows' stored JSON (``Table.encode``): the same body whichever
    # table is typed.
    def found(table: Table[Any], key: str, what: str) -> dict[str, Any]:
        return table.encode_row(known(table, key, what))

    def readable(caller: Principal, table: Table[Any], key: str, what: str) -> dict[str, Any]:
        """The row if the caller may read it: 404 when there is none, else 403 for strangers."""
        row = found(table, key, what)
        access.require_read(caller, row["unit"], f"{what} {key}")
        return row

    def readable_post(caller: Principal, post_id: str) -> dict[str, Any]:
        """The post's row as SQL keeps it, keys sorted (its trail's steps too): what the live
        post routes have always answered, a step's keys in one order whatever its kind."""
        row = readable(caller, tables.POST, post_id, "post")
        stored: dict[str, Any] = orjson.loads(orjson.dumps(row, option=orjson.OPT_SORT_KEYS))
        return stored

    def listed(
        caller: Principal, table: Table[R], unit: str | None, tag: str | None, what: str
    ) -> list[R]:
        """A list of the caller's units' rows (every unit's for the office)."""
        units = access.readable_units(caller)
        if units is not None and (not units or (unit is not None and unit not in units)):
            raise access.refusal(what, "unit" if unit is not None else None)
        rows = svc.model.list(table, unit=unit, tag=tag)
        return rows if units is None else [r for r in rows if getattr(r, "unit", None) in units]

    @router.get(
        "/integrity-alerts",
        summary="Events in the log that failed a trust check (office only)",
    )
    async def integrity_alerts(
        caller: Caller,
        check: Literal[
            "unsigned", "unknown_key", "wrong_service", "bad_signature", "retired_key",
            "authority",
        ] | None = None,
    ) -> list[dict[str, Any]]:
        # The whole log's integrity is the office's to watch: an alert names no unit.
        _office(caller)
        rows = svc.model.list(tables.ALERT, tag=check)
        return [a.encode() for a in sorted(rows, key=lambda a: a.sequence)]

    def known_unit(caller: Principal, unit: str | None, rows: Any) -> None:
        """A unit the caller may read and the log knows: a typo must not read as a clean
        record (an empty answer for a unit that does not exist)."""
        if unit is None:
            return
        units = access.readable_units(caller)
        if units is not None and unit not in units:
            raise access.refusal("unit", "unit")
        if rows.get(tables.UNIT, unit) is None:
            raise Problem(404, "Unknown unit", f"no unit {unit!r} in the log", field="unit")

    @router.get(
        "/as-of",
        summary="Stale columns, open supervision cases and violations as they stood on a day",
        description="What `gongkai audit as-of` prints, from the log as it stood at the end "
        "of `date` (Asia/Shanghai). A unit's people see their unit; the office the county.",
    )
    async def as_of(
        caller: Caller,
        day: Annotated[date, Query(alias="date")],
        unit: QueryId | None = None,
    ) -> dict[str, Any]:
        units = access.readable_units(caller)
        if units is not None and unit is None:
            if len(units) != 1:
                raise Problem(422, "Unit needed", "name the unit to answer for", field="unit")
            unit = next(iter(units))
        rows = await svc.as_of(min(day, local_date(svc.ctx.clock.now())))
        known_unit(caller, unit, rows)
        view = as_of_view(rows, day, unit)
        view["date"] = view.pop("as_of")
        return view

    @router.get(
        "/report",
        summary="Each unit's figures and compliance score over a period, ranked (office only)",
        description="What `gongkai audit report --format json` prints.",
    )
    async def county_report(
        caller: Caller,
        start: Annotated[date, Query(alias="from")],
        end: Annotated[date, Query(alias="to")],
        unit: QueryId | None = None,
    ) -> dict[str, Any]:
        _office(caller)
        if start > end:
            raise Problem(422, "Period reversed", "from is after to", field="from")
        today = local_date(svc.ctx.clock.now())
        last = max(start, min(end, today))
        rows = await svc.as_of(last)
        known_unit(caller, unit, rows)
        reps = [r.as_dict() for r in unit_reports(rows, start, last, unit)]
        return {"from": start.isoformat(), "to": end.isoformat(), "units": reps}

    @router.get("/posts/{post_id}/trail", summary="A post's chain of custody")
    async def trail(post_id: PathId, caller: Caller) -> dict[str, Any]:
        post = readable_post(caller, post_id)
        return {k: post[k] for k in ("post_id", "unit", "column", "title", "trail")}

    @router.get(
        "/trail/{post_id}",
        summary="A post's chain of custody, as `gongkai audit trail POST --json` prints it",
        description="The post as the fold keeps it: who made it, each review stage with its "
        "opinion, each publication and removal, findings and violations, times in UTC. With "
        "`date`, as the log stood at the end of that day (Asia/Shanghai), read from the log by "
        "the post's own subjects. The post's unit's people and the county office only.",
        response_model=PostTrail,
    )
    async def post_trail(
        post_id: PathId,
        caller: Caller,
        day: Annotated[date | None, Query(alias="date")] = None,
    ) -> dict[str, Any]:
        post = readable_post(caller, post_id)
        if day is None:
            return post
        then: tables.Post | None = await svc.post(post_id, day)
        if then is None:
            raise Problem(404, "Not found", f"no post {post_id!r} on {day}")
        # As folded from the log: as ``gongkai audit trail --json`` prints it.
        return tables.POST.encode_row(then)

    @router.get(
        "/verify",
        summary="The log verified as `gongkai audit verify` does it (office only; costly)",
        description="Recomputes the Merkle tree from every event of the log and holds every "
        "signed checkpoint against it; events after the last checkpoint are checked by "
        "signature. It reads and hashes the whole log (about a minute per million events, "
        "in a thread of its own): one run at a time, and the answer of the last run is "
        "given again while the log has not grown. 503 without trust anchors.",
        response_model=VerifyReport,
    )
    async def verify(caller: Caller) -> dict[str, Any]:
        _office(caller)
        if svc.evlog.keys is None:
            raise Problem(503, "No trust anchors", "nothing to check signatures against")
        res = await svc.verify()
        return {
            "events": res.last_seq,
            "root": res.root,
            "checkpoints": res.checkpoints,
            "covered": res.covered,
            "signed": res.signed,
            "rejected": res.rejected,
            "problems": [{"sequence": q, "problem": p} for q, p in res.problems],
            "first_difference": res.first_difference,
            "verified": res.first_difference is None,
        }

    @router.get("/violations", summary="Violations, filtered")
    async def violations(
        caller: Caller,
        unit: QueryId = None,
        kind: ViolationKind | None = None,
        severity: Literal["minor", "serious"] | None = None,
        since: Annotated[date | None, Query(alias="from")] = None,
        until: Annotated[date | None, Query(alias="to")] = None,
        rectified: bool | None = None,
    ) -> list[dict[str, Any]]:
        rows = listed(caller, tables.VIOLATION, unit, kind, "a unit's violations")
        out = []
        for v in rows:
            day = v.day
            if severity and v.severity != severity:
                continue
            if (since and day < since.isoformat()) or (until and day > until.isoformat()):
                continue
            if rectified is not None and (v.rectified is not None) != rectified:
                continue
            out.append(v)
        return [v.encode() for v in sorted(out, key=lambda v: (v.occurred, v.violation_id))]

    @router.get("/violations/{violation_id}")
    async def violation(violation_id: PathId, caller: Caller) -> dict[str, Any]:
        v = dict(readable(caller, tables.VIOLATION, violation_id, "violation"))
        if v.get("rectified"):
            # The read model keeps how and when; who and why are in the event itself.
            history, _ = await svc.evlog.load("violation", violation_id)
            done = _rectification(history)
            if done is not None:
                v["rectified"] = {**v["rectified"], **_rectified_view(done.envelope)}
        return v

    @router.post(
        "/violations/{violation_id}/rectification",
        status_code=201,
        summary="Record by hand that the office holds a violation rectified",
    )
    async def rectify(
        violation_id: PathId,
        body: RectifyViolation,
        caller: Caller,
        key: KeyHeader = None,
    ) -> dict[str, Any]:
        actor = _office(caller)
        # The key is checked like everywhere else but needs no answer store here: the command
        # id is the violation's, so a repeated request finds its own event and gets the same
        # answer, and any other request on a rectified violation is refused.
        IdempotencyStore.check_key(key)
        if not is_token(violation_id):
            raise invalid_identifier("violation_id", violation_id)
        # Decided on the log, not the read model: a violation recorded a moment ago may not
        # be folded yet, and "already rectified" must see an automatic rectification racing
        # this request (same command id: it is found as this command's own event).
        try:
            h = await handle(
                svc.evlog,
                violation_rules.VIOLATION,
                violation_id,
                violation_rules.Rectify(tuple(body.evidence), body.reason, svc.ctx.clock.now()),
                command_id=violation_rules.rectify_command_id(violation_id),
                actor=actor,
                now=svc.ctx.clock.now,
            )
        except Refusal as r:
            if r.kind == "not_found":
                raise
            # Rectified already, or by the automatic rule between our read and our append
            # (its event has this command's id, so the log took ours as its duplicate).
            history, _ = await svc.evlog.load("violation", violation_id)
            found = _rectification(history)
            raise _already(found.envelope if found is not None else None) from None
        done = h.events[0]
        if not _same_request(done, actor, body):
            raise _already(done)
        # Here the rectification is this request's: just recorded, or recorded by an earlier
        # attempt of the same request (a retry), which gets the same answer.
        return {
            "violation_id": violation_id,
            "unit": h.before.unit,
            "kind": h.before.kind,
            "sequence": h.sequences[0],
            **_rectified_view(done),
        }

    @router.get("/supervisions", summary="Supervision cases")
    async def supervisions(
        caller: Caller, unit: QueryId = None, status: QueryId = None
    ) -> list[dict[str, Any]]:
        return [c.encode() for c in svc.model.list(tables.CASE, unit=unit, tag=status)]

    @router.get("/supervisions/{case_id}")
    async def supervision(case_id: PathId, caller: Caller) -> dict[str, Any]:
        return found(tables.CASE, case_id, "supervision case")

    @router.post("/supervisions", status_code=201, summary="Issue a supervision notice by hand")
    async def issue(
        body: IssueSupervision, caller: Caller, key: KeyHeader = None
    ) -> dict[str, Any]:
        actor = _office(caller)
        col = svc.model.get(tables.COLUMN, f"{body.unit}--{body.column}")
        if col is None or col.case is None:
            raise Problem(
                409, "Column not stale", "no open case: the column is not stale", field="column"
            )
        case = svc.model.get(tables.CASE, col.case)
        if case is None:
            raise Problem(404, "Not found", f"no supervision case {col.case!r}")
        if case.notice is not None:
            raise Problem(
                409, "Already issued", f"case {case.case_id} has a notice",
                extra={"case": case.encode()},
            )
        now = svc.ctx.clock.now()
        notice = supervision_notice(
            case,
            local_date(now),
            svc.ctx.calendar,
            svc.policy,
            automatic=False,
            note=body.note,
            deadline_days=body.working_days,
        )
        h = await handle(
            svc.evlog,
            supervision_rules.SUPERVISION,
            case.case_id,
            supervision_rules.Issue(notice),
            command_id=IdempotencyStore.command_id(caller.person_id, key, "supervisions"),
            actor=actor,
            now=svc.ctx.clock.now,
            # A notice by hand answers the stale column, as the automatic one does.
            cause=case_cause(case),
        )
        env = h.events[0]
        return {
            "case_id": case.case_id,
            "event_id": env.event_id,
            **env.payload.model_dump(mode="json"),
        }

    @router.get("/findings")
    async def findings(
        caller: Caller, unit: QueryId = None, status: QueryId = None
    ) -> list[dict[str, Any]]:
        rows = listed(caller, tables.FINDING, unit, status, "a unit's findings")
        return [f.encode() for f in rows]

    @router.get("/findings/{finding_id}")
    async def finding(finding_id: PathId, caller: Caller) -> dict[str, Any]:
        return readable(caller, tables.FINDING, finding_id, "finding")

    @router.post("/findings", status_code=201, summary="Report an error found on the site")
    async def report(body: ReportFinding, caller: Caller, key: KeyHeader = None) -> dict[str, Any]:
        actor = _office(caller)
        IdempotencyStore.check_key(key)
        finding_rules.check_target(body.post_id, body.publication_id)
        unit = column = None
        if body.publication_id:
            pub = known(tables.PUBLICATION, body.publication_id, "publication")
            unit, column = pub.unit, pub.column
        if body.post_id:
            post = known(tables.POST, body.post_id, "post")
            unit, column = post.unit, post.column
        assert unit is not None
        command_id = IdempotencyStore.command_id(caller.person_id, key, "findings")
        fid = short_id("F", command_id)
        now = svc.ctx.clock.now()
        reported = FindingReported(
            finding_id=fid,
            unit=unit,
            kind=body.kind,
            post_id=body.post_id,
            publication_id=body.publication_id,
            column=column,
            description=body.description,
            evidence=tuple(body.evidence),
            reported_on=local_date(now),
        )
        h = await handle(
            svc.evlog,
            finding_rules.FINDING,
            fid,
            finding_rules.Report(reported),
            command_id=command_id,
            actor=actor,
            now=svc.ctx.clock.now,
            new=True,
        )
        return {
            "finding_id": fid,
            "event_id": h.events[0].event_id,
            "sequence": h.sequences[-1],
            "unit": unit,
            "duplicate": h.replayed,
        }

    @router.post("/findings/{finding_id}/confirmation", summary="Confirm a finding stands")
    async def confirm(
        finding_id: PathId, body: ConfirmFinding, caller: Caller, key: KeyHeader = None
    ) -> dict[str, Any]:
        actor = _office(caller)
        h = await handle(
            svc.evlog, finding_rules.FINDING, finding_id, finding_rules.Confirm(body.note),
            command_id=finding_rules.confirm_command_id(finding_id), actor=actor,
            now=svc.ctx.clock.now,
        )
        env = h.events[0]
        if h.replayed and env.actor.person != actor.person:
            raise Problem(409, "Finding already answered", "the finding is confirmed")
        return {"finding_id": finding_id, "event_id": env.event_id, "sequence": h.sequences[-1]}

    return router


def _rectification(history: list[RecordedEvent]) -> RecordedEvent | None:
    return next((r for r in history if r.envelope.type == "ViolationRectified"), None)


def _rectified_view(r: Envelope[Any]) -> dict[str, Any]:
    p = r.payload
    return {
        "how": p.how,
        "at": p.rectified_at.isoformat(),
        "event_id": r.event_id,
        "note": p.note,
        "evidence": list(p.evidence),
        "by": r.actor.model_dump(),
    }


def _already(r: Envelope[Any] | None) -> Problem:
    extra = {"rectified": _rectified_view(r)} if r is not None else {}
    return Problem(409, "Already rectified", "the violation is already rectified", extra=extra)


def _same_request(r: Envelope[Any], actor: Actor, body: RectifyViolation) -> bool:
    p = r.payload
    return (
        p.how == "by_office"
        and r.actor == actor
        and p.note == body.reason
        and list(p.evidence) == body.evidence
    )
