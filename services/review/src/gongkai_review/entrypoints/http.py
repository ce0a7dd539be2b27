"""HTTP routes of the review service: thin adapters around the decider.

    POST /posts/{id}/signatures        sign a stage (Idempotency-Key honoured)
    GET  /posts/{id}/review            the chain, from the log
    GET  /posts/{id}/review-form       Attachment 1 as printable HTML, from the log
    GET  /people/{id}/queue            what awaits this person's signature
    GET  /units/{unit}/review-policy   the unit's staff-stage setting
    PUT  /units/{unit}/review-policy   change it (the unit's principal leader)

Every refusal is an RFC 9457 problem naming the field; nothing is recorded then.

Reads are scoped like writes (``gongkai.access``): a post's review, form and signature route
answer its unit's people and the county office only, checked right after the post is found and
before anything else, so a refusal reveals nothing (not the digest a wrong signature sent, not
the stage). Screened personal data is masked in every answer but to the people the chain awaits
for the secrecy review or the leader's opinion (``gongkai_review.domain.reading``); the queue is
a read model and holds it masked for everyone.
"""

# No `from __future__ import annotations`: FastAPI must evaluate the route signatures, whose
# `Caller` alias is local to make_router.
import asyncio
from typing import Annotated, Any, Protocol

import structlog
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from gongkai import access
from gongkai.calendar import WorkingCalendar, local_date
from gongkai.decider import handle
from gongkai.directory import Directory, Principal, bearer_auth
from gongkai.events import Actor, is_token
from gongkai.events.contracts.review import (
    Decision,
    ReviewSigned,
    StaffStagePolicy,
    Stage,
)
from gongkai.runtime.clock import Clock
from gongkai.runtime.direct import direct_route_class
from gongkai.runtime.http import PathId, Problem, invalid_identifier
from gongkai.runtime.idempotency import IdempotencyStore, request_digest
from gongkai_review.adapters.repository import Loaded, ReviewRepository
from gongkai_review.domain import policy
from gongkai_review.domain.chain import (
    MAX_OPINION,
    Chain,
    Meta,
    ReviewState,
    Sign,
    awaiting,
    current_chain,
    fold,
    pending_void,
    permitted_stages,
    required_stages,
    status,
    waiting_since,
)
from gongkai_review.domain.form import build_form, pick_chain
from gongkai_review.domain.reading import as_read_by
from gongkai_review.entrypoints.form_html import render
from gongkai_review.service import ReviewConfig

log = structlog.get_logger("gongkai.review")

class Ports(Protocol):
    """What the routes need from the composition root."""

    config: ReviewConfig

    @property
    def clock(self) -> Clock: ...

    @property
    def calendar(self) -> WorkingCalendar: ...

    def repository(self) -> ReviewRepository: ...

    def directory(self) -> Directory: ...

    def idempotency(self) -> IdempotencyStore: ...

    def waiting_for(
        self, person_id: str, roles: frozenset[tuple[str, str]]
    ) -> list[ReviewState]: ...


class SignatureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: Stage
    decision: Decision
    opinion: str | None = Field(default=None, max_length=MAX_OPINION)
    #: The digest of the content the signer read; it must be the post's current one.
    content_digest: str = Field(pattern=r"^[0-9a-f]{64}$")


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    staff_stage: StaffStagePolicy


# ---- views -------------------------------------------------------------------------------


def _signature_view(s: Any) -> dict[str, Any]:
    return {
        "stage": s.stage,
        "decision": s.decision,
        "opinion": s.opinion,
        "signer": s.signer.model_dump(),
        "content_digest": s.content_digest,
        "signed_at": s.signed_at.isoformat(),
        "event_id": s.event_id,
    }


def _chain_view(chain: Chain, void_pending: bool) -> dict[str, Any]:
    return {
        "chain": chain.number,
        "content_digest": chain.content_digest,
        "content_version": chain.content_version,
        "outcome": chain.outcome,
        "void_pending": void_pending,
        "signatures": [_signature_view(s) for s in chain.signatures],
        "conclusions": [
            {
                "outcome": c.outcome,
                "at": c.at.isoformat(),
                "reason": c.reason,
                "event_id": c.event_id,
            }
            for c in chain.conclusions
        ],
    }


def review_view(state: ReviewState) -> dict[str, Any]:
    post = state.post
    assert post is not None
    stale = pending_void(state)
    chain = current_chain(state)
    since = waiting_since(state)
    last = state.chains[-1] if state.chains else None
    approved = last if last is not None and last.outcome == "approved" and stale is None else None
    return {
        "post_id": post.post_id,
        "unit": post.unit,
        "column": post.column,
        "title": post.title,
        "important_kind": post.important_kind,
        "content_version": post.content_version,
        "content_digest": post.content_digest,
        "status": status(state),
        "staff_stage_policy": state.staff_stage,
        "required_stages": list(required_stages(post, state.staff_stage)),
        "permitted_stages": list(permitted_stages(post, state.staff_stage)),
        "current_chain": chain.number if chain else None,
        "awaiting": awaiting(state),
        "waiting_since": since.isoformat() if since else None,
        "approved": (
            {
                "chain": approved.number,
                "content_digest": approved.content_digest,
                "content_version": approved.content_version,
            }
            if approved
            else None
        ),
        "chains": [_chain_view(c, c is stale) for c in state.chains],
    }


# ---- routes ------------------------------------------------------------------------------


def _post_id(post_id: str) -> str:
    if not is_token(post_id):
        raise invalid_identifier("post_id", post_id)
    return post_id


async def _load_post(ports: Ports, post_id: str, principal: Principal) -> Loaded:
    """The post's review state, if this person may read it: else 404 (no such post) or 403."""
    loaded = await ports.repository().load(_post_id(post_id))
    post = loaded.state.post
    if post is None:
        raise Problem(404, "Unknown post", f"there is no post {post_id}", field="id")
    access.require_read(principal, post.unit, f"post {post_id}", field="id")
    return loaded


def _signature_answer(
    state: ReviewState, signed_event_id: str, principal: Principal
) -> dict[str, Any]:
    for chain in state.chains:
        for s in chain.signatures:
            if s.event_id == signed_event_id:
                return {
                    "post_id": state.post.post_id if state.post else None,
                    "chain": chain.number,
                    "signature": _signature_view(s),
                    "concluded": chain.outcome,
                    "review": review_view(
                        as_read_by(state, principal.person_id, principal.roles)
                    ),
                }
    raise LookupError(signed_event_id)


def make_router(ports: Ports) -> APIRouter:
    router = APIRouter(tags=["review"])

    authenticate = bearer_auth(ports.directory)
    Caller = Annotated[Principal, Depends(authenticate)]

    async def signed(
        path: str, principal: Principal, idempotency_key: str | None, post_id: str,
        body: SignatureIn,
    ) -> JSONResponse:
        """What ``sign`` does, for both ways in: FastAPI's route and the direct one."""
        _post_id(post_id)
        IdempotencyStore.check_key(idempotency_key)
        # The unit check before the stored answer and before the decider's checks: someone
        # who may not read the post learns nothing from a refusal, nor from a replay.
        loaded = await _load_post(ports, post_id, principal)
        idem = ports.idempotency()
        req_sha = request_digest("POST", path, body.model_dump(mode="json"))
        stored = await asyncio.to_thread(idem.lookup, principal.person_id, idempotency_key, req_sha)
        if stored is not None:
            return JSONResponse(stored.body, status_code=stored.status)
        command_id = IdempotencyStore.command_id(
            principal.person_id, idempotency_key, f"POST /posts/{post_id}/signatures"
        )
        cmd = Sign(
            post_id=post_id,
            stage=body.stage,
            decision=body.decision,
            opinion=body.opinion,
            content_digest=body.content_digest,
            signer_id=principal.person_id,
            signer_roles=principal.roles,
            meta=Meta(command_id=command_id, at=ports.clock.now()),
        )
        repo = ports.repository()
        # Decided on the view just read for the unit check; a race reads afresh and decides
        # again (a Refusal becomes its problem in runtime.http).
        h = await handle(
            repo.evlog,
            repo.decider(),
            post_id,
            cmd,
            command_id=command_id,
            now=ports.clock.now,
            loaded=loaded.view(),
        )
        if not h.replayed:
            for e in h.events:  # counted by the log itself, once per event
                log.info(
                    "review_recorded",
                    type=e.type,
                    post_id=post_id,
                    event_id=e.event_id,
                    correlation_id=e.correlation_id,
                )
        # A retry whose first attempt was recorded but whose answer was not stored finds its
        # events in the view already.
        state = h.before if h.replayed else fold(h.events, h.before)
        signed = next(e for e in h.events if isinstance(e.payload, ReviewSigned))
        answer = _signature_answer(state, signed.event_id, principal)
        await asyncio.to_thread(
            idem.save,
            principal.person_id,
            idempotency_key,
            req_sha,
            201,
            answer,
            ports.clock.now(),
        )
        return JSONResponse(
            answer, status_code=201, headers={"Location": f"/posts/{post_id}/review"}
        )

    async def sign_directly(
        request: Request, principal: Principal, key: str | None, ids: dict[str, str],
        body: BaseModel,
    ) -> JSONResponse:
        assert isinstance(body, SignatureIn)
        return await signed(request.url.path, principal, key, ids["post_id"], body)

    async def sign(
        post_id: PathId,
        body: SignatureIn,
        request: Request,
        principal: Caller,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> JSONResponse:
        """Sign one stage of the post's chain, bound to the content digest the signer read."""
        return await signed(request.url.path, principal, idempotency_key, post_id, body)

    router.add_api_route(
        "/posts/{post_id}/signatures",
        sign,
        methods=["POST"],
        status_code=201,
        # A well-formed request skips FastAPI's dependency solving (a twentieth of a
        # signature's CPU under py-spy); anything else is FastAPI's, refusals included.
        route_class_override=direct_route_class(
            ["post_id"], SignatureIn, authenticate, sign_directly
        ),
    )

    @router.get("/posts/{post_id}/review")
    async def get_review(
        post_id: PathId,
        principal: Caller,
    ) -> dict[str, Any]:
        """The post's review: chains, signatures, what is awaited, the approval in force."""
        loaded = await _load_post(ports, post_id, principal)
        return review_view(as_read_by(loaded.state, principal.person_id, principal.roles))

    @router.get("/posts/{post_id}/review-form", response_class=HTMLResponse)
    async def get_review_form(
        post_id: PathId,
        principal: Caller,
        chain: Annotated[int | None, Query(ge=1)] = None,
    ) -> HTMLResponse:
        """Attachment 1 filled in from the log: printable A4 HTML."""
        loaded = await _load_post(ports, post_id, principal)
        state = as_read_by(loaded.state, principal.person_id, principal.roles)
        picked = pick_chain(state, chain)
        if picked is None:
            detail = (
                f"post {post_id} has no chain {chain}"
                if chain is not None
                else f"post {post_id} was withdrawn before any signature: there is no form"
            )
            raise Problem(404, "Unknown chain", detail, field="chain")
        assert state.post is not None
        people = {state.post.current.author, *(v.author for v in state.post.versions)}
        people |= {s.signer.person for s in picked.signatures}
        directory = ports.directory()

        def lookup() -> tuple[dict[str, str], str | None]:
            names = {}
            for pid in people:
                p = directory.principal(pid)
                if p is not None:
                    names[pid] = p.name
            unit = directory.unit(state.post.unit) if state.post else None
            return names, (str(unit["name"]) if unit else None)

        names, unit_name = await asyncio.to_thread(lookup)
        # The archive serial is the log sequence of the chain's first conclusion: unique,
        # increasing, and checkable against the log by anyone.
        seq = loaded.conclusion_seq(picked.conclusions[0].event_id) if picked.conclusions else None
        form = build_form(
            state,
            picked,
            names=names,
            unit_name=unit_name,
            serial=f"{seq:06d}" if seq else None,
        )
        return HTMLResponse(render(form))

    @router.get("/people/{person_id}/queue")
    async def get_queue(
        person_id: PathId,
        principal: Caller,
    ) -> dict[str, Any]:
        """What awaits this person's signature, with working days waited and an overdue mark."""
        is_office = any(r == "office" for _, r in principal.roles)
        if principal.person_id != person_id and not is_office:
            raise Problem(
                403,
                "Not your queue",
                "a work queue is visible to its owner and to the county office",
                field="id",
            )
        directory = ports.directory()
        person = await asyncio.to_thread(directory.principal, person_id)
        if person is None:
            raise Problem(404, "Unknown person", f"there is no person {person_id}", field="id")
        states = await asyncio.to_thread(ports.waiting_for, person.person_id, person.roles)
        now = ports.clock.now()
        today = local_date(now)
        limit = ports.config.overdue_after_working_days
        items = []
        for s in states:
            since = waiting_since(s)
            chain = current_chain(s)
            if s.post is None or since is None or chain is None:
                continue
            waited = ports.calendar.working_days_between(local_date(since), today)
            items.append(
                {
                    "post_id": s.post.post_id,
                    "unit": s.post.unit,
                    "column": s.post.column,
                    "title": s.post.title,
                    "important_kind": s.post.important_kind,
                    "stage": awaiting(s),
                    "chain": chain.number,
                    "content_version": s.post.content_version,
                    "content_digest": s.post.content_digest,
                    "waiting_since": since.isoformat(),
                    "working_days_waited": waited.value,
                    "provisional": waited.provisional,
                    "overdue": waited.value > limit,
                }
            )
        items.sort(key=lambda i: (i["waiting_since"], i["post_id"]))
        return {
            "person_id": person_id,
            "as_of": now.isoformat(),
            "today": today.isoformat(),
            "overdue_after_working_days": limit,
            "items": items,
        }

    @router.get("/units/{unit}/review-policy")
    async def get_policy(
        unit: PathId,
        principal: Caller,
    ) -> dict[str, Any]:
        """The unit's staff-stage setting (``important_only`` unless it chose otherwise)."""
        history, _ = await ports.repository().load_policy(_unit(unit))
        return {"unit": unit, "staff_stage": policy.policy_of(history)}

    @router.put("/units/{unit}/review-policy")
    async def put_policy(
        unit: PathId,
        body: PolicyIn,
        principal: Caller,
        response: Response,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> dict[str, Any]:
        """Whether ordinary posts also need the staff opinion; set by the unit's leader."""
        _unit(unit)
        if not principal.has(unit, "leader"):
            raise Problem(
                403,
                "Not allowed",
                f"the review policy of unit {unit} is set by its principal leader",
                field="unit",
            )

        async def record() -> dict[str, Any]:
            repo = ports.repository()
            h = await handle(
                repo.evlog,
                policy.POLICY,
                unit,
                policy.SetPolicy(unit, body.staff_stage),
                command_id=IdempotencyStore.command_id(
                    principal.person_id, idempotency_key, f"PUT /units/{unit}/review-policy"
                ),
                actor=Actor(person=principal.person_id, role="leader", unit=unit),
                now=ports.clock.now,
            )
            changed = bool(h.events) and not h.replayed
            return {"unit": unit, "staff_stage": body.staff_stage, "changed": changed}

        # As on POST: a retry with the same Idempotency-Key gets the first answer, even if the
        # policy changed since; the same key with another body is refused.
        return await ports.idempotency().answer_once(
            response,
            principal.person_id,
            idempotency_key,
            ("PUT", f"/units/{unit}/review-policy", body.model_dump(mode="json")),
            record,
            ports.clock.now,
        )

    return router


def _unit(unit: str) -> str:
    if not is_token(unit):
        raise invalid_identifier("unit", unit)
    return unit


__all__ = ["Ports", "make_router", "review_view"]
